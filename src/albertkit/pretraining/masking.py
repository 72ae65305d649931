"""On-the-fly n-gram masking for ALBERT's masked LM, reproducible per instance.

    >>> collate = MaskingCollator(tokenizer, masked_lm_prob=0.15, max_predictions_per_seq=20, seed=0)  # doctest: +SKIP
    >>> loader = DataLoader(SOPDataset(corpus, 128), batch_size=32, collate_fn=collate)               # doctest: +SKIP
    >>> batch = next(iter(loader))   # input_ids [B, T], masked_lm_positions [B, P], ...               # doctest: +SKIP

Rules (Google's ALBERT create_masked_lm_predictions, ngram variant):

* units are whole words: a piece without a leading ``▁`` joins the unit before it; [CLS], [SEP],
  [PAD] and [MASK] are never units and never masked;
* the budget is ``min(max_predictions_per_seq, max(1, round(len(input_ids) * masked_lm_prob)))``
  tokens (the length counts [CLS]/[SEP], as Google's does);
* unit start positions are visited in random order; at each, a span of n whole words is proposed
  with p(n) proportional to 1/n (n <= max_ngram): 6/11, 3/11, 2/11 for max_ngram 3. When the span
  would overrun the budget, n is shortened (Google's rule; only the last span of a sequence).
  When it overlaps a span already taken or runs into [SEP]/the end, the start is skipped but the
  drawn n is kept for the next start, so the masked lengths follow p(n) instead of being biased
  towards 1 by collisions (a deliberate small departure from Google, whose collision check
  discards the draw; measured 0.594/0.261/0.145 that way on 128-token instances);
* each masked token becomes [MASK] with p 0.8, a random non-special piece with p 0.1, itself with
  p 0.1.

``whole_word=False`` makes every piece its own unit (BERT's original subword masking): a word's
other pieces stay visible, the easiest position-dependent signal an MLM can learn from. The
collator's ``subword_masking_examples`` uses it, single pieces only, for the first examples of the
training stream (issue #14's schedule: subword masking for ~25% of the steps, then n-grams).

All randomness comes from ``np.random.default_rng([seed, epoch, index])`` of the instance, so a batch
does not depend on its neighbours, on worker count, DDP rank, or where a run resumed.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch

from albertkit.pretraining.corpus import special_ids, word_start_mask

__all__ = ["MaskingCollator", "mask_tokens"]


def mask_tokens(
    input_ids: np.ndarray,
    rng: np.random.Generator,
    *,
    is_word_start: np.ndarray,
    never_mask: np.ndarray,
    replacement_ids: np.ndarray,
    mask_id: int,
    masked_lm_prob: float = 0.15,
    max_predictions: int = 20,
    max_ngram: int = 3,
    whole_word: bool = True,
    return_spans: bool = False,
) -> tuple[np.ndarray, np.ndarray, np.ndarray] | tuple[np.ndarray, np.ndarray, np.ndarray, list[tuple[int, int]]]:
    """Mask one sequence. Returns (masked input ids, sorted positions, original ids at them)
    and, with ``return_spans``, ``(words masked, words drawn)`` for every span (diagnostics/tests).

    ``is_word_start`` and ``never_mask`` are boolean lookups over the vocabulary.
    """
    ids = np.asarray(input_ids, dtype=np.int64)
    candidate = ~never_mask[ids]
    if whole_word:
        starts_unit = candidate & (is_word_start[ids] | ~np.concatenate([[False], candidate[:-1]]))
    else:
        starts_unit = candidate
    unit_starts = np.flatnonzero(starts_unit)  # first token of each whole-word unit
    n_units = len(unit_starts)
    budget = min(max_predictions, max(1, int(round(len(ids) * masked_lm_prob))))
    # Unit k covers tokens [unit_starts[k], unit_ends[k]): up to the next unit start or special token.
    boundaries = np.append(np.flatnonzero(starts_unit | ~candidate), len(ids))
    unit_ends = boundaries[np.searchsorted(boundaries, unit_starts, side="right")]

    ngrams = np.arange(1, max_ngram + 1)
    pvals = 1.0 / ngrams
    pvals /= pvals.sum()
    order = rng.permutation(n_units)
    draws = rng.choice(ngrams, size=n_units, p=pvals) if n_units else np.zeros(0, np.int64)

    covered = np.zeros(len(ids), dtype=bool)
    positions: list[int] = []
    spans: list[tuple[int, int]] = []  # (words masked, words drawn)
    # A unit's span of n words must be adjacent units (a [SEP] in between ends it).
    adjacent = np.append(unit_starts[1:] == unit_ends[:-1], False)
    pending = 0  # a drawn n that could not be placed, carried to the next start
    for k, u in enumerate(order.tolist()):
        if len(positions) >= budget:
            break
        n = pending or int(draws[k])
        pending = n
        if u + n > n_units or not adjacent[u : u + n - 1].all():
            continue  # no room for n words here: try the next start with the same n
        lo = int(unit_starts[u])
        if covered[lo : int(unit_ends[u + n - 1])].any():
            continue
        m = n
        while m > 0 and len(positions) + int(unit_ends[u + m - 1]) - lo > budget:
            m -= 1  # shorten to fit the budget, as Google does (happens at most at the end)
        if m == 0:
            continue
        pending = 0
        hi = int(unit_ends[u + m - 1])
        covered[lo:hi] = True
        positions.extend(range(lo, hi))
        spans.append((m, n))
    if len(positions) < budget:
        # Rare: the carried n found no room. Fill the budget with single words, as Google would.
        for u in order.tolist():
            lo, hi = int(unit_starts[u]), int(unit_ends[u])
            if len(positions) >= budget:
                break
            if covered[lo:hi].any() or len(positions) + hi - lo > budget:
                continue
            covered[lo:hi] = True
            positions.extend(range(lo, hi))
            spans.append((1, 1))

    pos = np.asarray(sorted(positions), dtype=np.int64)
    labels = ids[pos]
    masked = ids.copy()
    if len(pos):
        u = rng.random(len(pos))
        to_mask = u < 0.8
        to_random = u >= 0.9
        masked[pos[to_mask]] = mask_id
        masked[pos[to_random]] = replacement_ids[rng.integers(0, len(replacement_ids), int(to_random.sum()))]
    if return_spans:
        return masked, pos, labels, spans
    return masked, pos, labels


class MaskingCollator:
    """Pads SOP instances into a batch and applies n-gram masking.

    Accepts a list of instance dicts carrying ``index`` (and optionally ``epoch``), or a list of
    ``(index, instance)`` pairs. Returns int64 tensors: ``input_ids``, ``attention_mask``,
    ``token_type_ids`` [B, T]; ``masked_lm_positions``, ``masked_lm_labels`` [B, P] (P = most
    predictions in the batch; padding positions 0 with label -100); ``sentence_order_label`` [B].
    T is the longest instance, rounded up to ``pad_to_multiple_of`` when given. ``static_shapes=N``
    pads every batch to T = N and P = ``max_predictions_per_seq`` instead, so that a compiled model
    (``torch.compile``) sees one shape and is not recompiled for dynamic sizes.

    Instances whose ``stream_index`` (their place in the training stream, which the Trainer adds
    with ``index_key="stream_index"``) is below ``subword_masking_examples`` are masked as single pieces
    (``whole_word=False``, n = 1); later ones with whole-word n-grams. ``whole_word=False`` masks
    single pieces throughout (e.g. an evaluation set).

        >>> c = MaskingCollator(tok, subword_masking_examples=25_000 * 32)   # doctest: +SKIP
    """

    def __init__(
        self,
        tokenizer: Any,
        masked_lm_prob: float = 0.15,
        max_predictions_per_seq: int = 20,
        max_ngram: int = 3,
        seed: int = 0,
        pad_to_multiple_of: int | None = None,
        static_shapes: int | None = None,
        whole_word: bool = True,
        subword_masking_examples: int = 0,
    ) -> None:
        if not 0.0 < masked_lm_prob < 1.0:
            raise ValueError(f"masked_lm_prob must be in (0, 1), got {masked_lm_prob}")
        if max_predictions_per_seq < 1 or max_ngram < 1:
            raise ValueError("max_predictions_per_seq and max_ngram must be positive")
        self.masked_lm_prob = masked_lm_prob
        self.max_predictions_per_seq = max_predictions_per_seq
        self.max_ngram = max_ngram
        self.seed = seed
        self.pad_to_multiple_of = pad_to_multiple_of
        self.static_shapes = static_shapes
        self.whole_word = whole_word
        self.subword_masking_examples = int(subword_masking_examples)
        ids = special_ids(tokenizer)
        self.mask_id, self.pad_id = ids["mask"], ids["pad"]
        vocab_size = int(tokenizer.vocab_size)
        self.is_word_start = word_start_mask(tokenizer)
        if len(self.is_word_start) != vocab_size:
            raise ValueError(f"word_start_mask has {len(self.is_word_start)} entries for a vocab of {vocab_size}")
        self.never_mask = np.zeros(vocab_size, dtype=bool)
        self.never_mask[list(ids.values())] = True  # [CLS] [SEP] [MASK] <pad>
        # Random replacements: any piece that is not a special token (or <unk>).
        excluded = set(ids.values()) | set(getattr(tokenizer, "all_special_ids", []))
        unk = getattr(tokenizer, "unk_token_id", None)
        if unk is not None:
            excluded.add(int(unk))
        self.replacement_ids = np.array([i for i in range(vocab_size) if i not in excluded], dtype=np.int64)

    def mask_one(
        self, input_ids: np.ndarray, index: int, epoch: int = 0, stream_index: int | None = None
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        rng = np.random.default_rng([self.seed, epoch, index])
        early = stream_index is not None and stream_index < self.subword_masking_examples
        subword = not self.whole_word or early
        return mask_tokens(  # type: ignore[return-value]
            input_ids,
            rng,
            is_word_start=self.is_word_start,
            never_mask=self.never_mask,
            replacement_ids=self.replacement_ids,
            mask_id=self.mask_id,
            masked_lm_prob=self.masked_lm_prob,
            max_predictions=self.max_predictions_per_seq,
            max_ngram=1 if subword else self.max_ngram,
            whole_word=not subword,
        )

    def __call__(self, batch: Sequence[Mapping[str, Any] | tuple[int, Mapping[str, Any]]]) -> dict[str, torch.Tensor]:
        items: list[tuple[int, Mapping[str, Any]]] = []
        for entry in batch:
            if isinstance(entry, tuple):
                items.append((int(entry[0]), entry[1]))
            elif "index" in entry:
                items.append((int(entry["index"]), entry))
            else:
                raise ValueError("MaskingCollator needs each instance's index: pass (index, instance) or an 'index' key")
        if not items:
            raise ValueError("empty batch")
        lengths = [len(inst["input_ids"]) for _, inst in items]
        width = max(lengths)
        if self.pad_to_multiple_of:
            width = -(-width // self.pad_to_multiple_of) * self.pad_to_multiple_of
        if self.static_shapes is not None:
            if width > self.static_shapes:
                raise ValueError(f"an instance has {width} tokens, more than static_shapes={self.static_shapes}")
            width = self.static_shapes
        bsz = len(items)
        input_ids = np.full((bsz, width), self.pad_id, dtype=np.int64)
        attention = np.zeros((bsz, width), dtype=np.int64)
        token_types = np.zeros((bsz, width), dtype=np.int64)
        masked = []
        for row, (index, inst) in enumerate(items):
            stream_index = inst.get("stream_index")
            ids, pos, labels = self.mask_one(
                inst["input_ids"], index, int(inst.get("epoch", 0)), None if stream_index is None else int(stream_index)
            )
            n = lengths[row]
            input_ids[row, :n] = ids
            attention[row, :n] = 1
            if "token_type_ids" in inst:
                token_types[row, :n] = inst["token_type_ids"]
            masked.append((pos, labels))
        width_p = max(1, max(len(p) for p, _ in masked))
        if self.static_shapes is not None:
            width_p = max(width_p, self.max_predictions_per_seq)
        positions = np.zeros((bsz, width_p), dtype=np.int64)
        mlm_labels = np.full((bsz, width_p), -100, dtype=np.int64)
        for row, (pos, labels) in enumerate(masked):
            positions[row, : len(pos)] = pos
            mlm_labels[row, : len(pos)] = labels
        out = {
            "input_ids": torch.from_numpy(input_ids),
            "attention_mask": torch.from_numpy(attention),
            "token_type_ids": torch.from_numpy(token_types),
            "masked_lm_positions": torch.from_numpy(positions),
            "masked_lm_labels": torch.from_numpy(mlm_labels),
        }
        if all("sentence_order_label" in inst for _, inst in items):
            out["sentence_order_label"] = torch.tensor([int(inst["sentence_order_label"]) for _, inst in items])
        return out
