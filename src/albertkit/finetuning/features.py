"""Turn task examples into model inputs with an ALBERT tokenizer.

The tokenizer is anything with Hugging Face's fast-tokenizer call (``albertkit.AlbertTokenizer``
or transformers' ``AlbertTokenizerFast``): ``tokenizer(text, text_pair, truncation=...,
max_length=..., stride=..., return_overflowing_tokens=..., return_offsets_mapping=...)`` and
``encoding.sequence_ids(i)``. Features are unpadded dicts of lists; :func:`collate` pads a list
of them into tensors.

    >>> feats = encode_classification(examples, tokenizer, label_list=["0", "1"], max_length=128)  # doctest: +SKIP
    >>> batch = collate(feats[:32])   # input_ids [B, T], attention_mask, token_type_ids, labels [B]
"""

from __future__ import annotations

import logging
from collections import defaultdict
from typing import Any, Sequence

from albertkit.finetuning.readers import RaceExample, SquadExample, TextExample, TokenExample
from albertkit.finetuning.tasks import SQUAD_DOC_STRIDE, SQUAD_MAX_QUERY_LENGTH

__all__ = [
    "encode_classification",
    "encode_token_classification",
    "encode_squad",
    "encode_multiple_choice",
    "race_pair",
    "collate",
]

logger = logging.getLogger(__name__)

IGNORE_INDEX = -100  # label value the losses skip (torch.nn.CrossEntropyLoss default)


def _token_type_ids(encoding: Any, i: int, length: int) -> list[int]:
    # Prefer the tokenizer's own ids; derive them from sequence_ids otherwise
    # ([CLS] A [SEP] -> 0, B [SEP] -> 1).
    if "token_type_ids" in encoding:
        return list(encoding["token_type_ids"][i])
    types, segment = [], 0
    for sid in encoding.sequence_ids(i):
        if sid is not None:
            segment = sid
        types.append(segment)
    return types[:length]


def encode_classification(
    examples: Sequence[TextExample],
    tokenizer: Any,
    *,
    label_list: Sequence[str] | None = None,
    regression: bool = False,
    max_length: int = 128,
) -> list[dict[str, Any]]:
    """``[CLS] A [SEP]`` or ``[CLS] A [SEP] B [SEP]`` per example, truncated longest-first.

    Labels become ids via ``label_list`` (classification) or floats (regression); unlabeled
    examples get no ``labels`` key.
    """
    if not examples:
        return []
    label_ids = None if label_list is None else {str(l): i for i, l in enumerate(label_list)}
    if not regression and label_ids is None and any(ex.label is not None for ex in examples):
        raise ValueError("label_list is required to turn classification labels into ids")
    pairs = [ex.text_b for ex in examples]
    has_pair = any(p is not None for p in pairs)
    if has_pair and any(p is None for p in pairs):
        raise ValueError("either every example has a text pair or none does")
    enc = tokenizer(
        [ex.text_a for ex in examples],
        pairs if has_pair else None,
        truncation=True,
        max_length=max_length,
    )
    features = []
    for i, ex in enumerate(examples):
        ids = list(enc["input_ids"][i])
        feat: dict[str, Any] = {
            "input_ids": ids,
            "token_type_ids": _token_type_ids(enc, i, len(ids)),
            "attention_mask": [1] * len(ids),
        }
        if ex.label is not None:
            if regression:
                feat["labels"] = float(ex.label)
            else:
                assert label_ids is not None
                if str(ex.label) not in label_ids:
                    raise ValueError(f"example {ex.guid} (line {ex.line}): label {ex.label!r} not in {list(label_list or ())}")
                feat["labels"] = label_ids[str(ex.label)]
        features.append(feat)
    return features


def encode_token_classification(
    examples: Sequence[TokenExample],
    tokenizer: Any,
    *,
    label_list: Sequence[str],
    max_length: int = 128,
) -> list[dict[str, Any]]:
    """Label the first piece of each word; every other piece and the special tokens get -100.

    Words are joined with single spaces and matched back to pieces through the character
    offsets, so the tokenizer needs no word-level API. ``word_ids`` (word index of each
    labelled position, else -1) lets predictions be mapped back to words. Words cut off by
    ``max_length`` get no label position; their number is logged.
    """
    label_ids = {l: i for i, l in enumerate(label_list)}
    texts, spans = [], []
    for ex in examples:
        pos, word_spans = 0, []
        for w in ex.words:
            word_spans.append((pos, pos + len(w)))
            pos += len(w) + 1
        texts.append(" ".join(ex.words))
        spans.append(word_spans)
    if not texts:
        return []
    enc = tokenizer(texts, truncation=True, max_length=max_length, return_offsets_mapping=True)
    features, truncated_words = [], 0
    for i, ex in enumerate(examples):
        ids = list(enc["input_ids"][i])
        offsets = enc["offset_mapping"][i]
        seq_ids = enc.sequence_ids(i)
        labels, word_ids = [], []
        word = 0
        for tok, (start, end) in enumerate(offsets):
            if seq_ids[tok] is None or end <= start:
                labels.append(IGNORE_INDEX)
                word_ids.append(-1)
                continue
            # Advance to the word this piece overlaps; the first piece reaching a new word takes its label.
            while word < len(spans[i]) and spans[i][word][1] <= start:
                word += 1
            if word < len(spans[i]) and (not word_ids or word not in word_ids) and start < spans[i][word][1]:
                word_ids.append(word)
                if ex.labels is not None:
                    if ex.labels[word] not in label_ids:
                        raise ValueError(f"sentence {ex.guid} (line {ex.line}): label {ex.labels[word]!r} not in {list(label_list)}")
                    labels.append(label_ids[ex.labels[word]])
                else:
                    labels.append(IGNORE_INDEX)
            else:
                labels.append(IGNORE_INDEX)
                word_ids.append(-1)
        covered = sum(1 for w in word_ids if w >= 0)
        truncated_words += len(ex.words) - covered
        feat: dict[str, Any] = {
            "input_ids": ids,
            "token_type_ids": [0] * len(ids),
            "attention_mask": [1] * len(ids),
            "word_ids": word_ids,
        }
        if ex.labels is not None:
            feat["labels"] = labels
        features.append(feat)
    if truncated_words:
        logger.warning("%d words fall beyond max_length=%d and get no prediction", truncated_words, max_length)
    return features


def _truncate_question(tokenizer: Any, questions: list[str], max_query_length: int) -> list[str]:
    # Google's run_squad keeps the first max_query_length question pieces. Cutting the text at the
    # end offset of the last kept piece does the same through the plain __call__ API.
    enc = tokenizer(questions, truncation=True, max_length=max_query_length + 2, return_offsets_mapping=True)
    out = []
    for i, q in enumerate(questions):
        ends = [e for (s, e), sid in zip(enc["offset_mapping"][i], enc.sequence_ids(i)) if sid is not None]
        out.append(q[: ends[-1]] if ends else q)
    return out


def encode_squad(
    examples: Sequence[SquadExample],
    tokenizer: Any,
    *,
    max_length: int = 384,
    doc_stride: int = SQUAD_DOC_STRIDE,
    max_query_length: int = SQUAD_MAX_QUERY_LENGTH,
    training: bool = True,
) -> list[dict[str, Any]]:
    """Sliding windows ``[CLS] question [SEP] context-window [SEP]`` over each context.

    ``doc_stride`` keeps Google's ``run_squad`` meaning: the distance, in tokens, between the
    starts of consecutive windows (Hugging Face's ``stride`` argument is the *overlap*; it is
    derived per question length as window length - doc_stride).

    Training features carry ``start_positions`` / ``end_positions``: the answer's first and last
    piece, found through the offsets, or the ``[CLS]`` index 0 when the window does not hold the
    whole answer or the question is unanswerable. Every feature carries ``example_id`` and
    ``offset_mapping`` (``None`` outside the context) for :func:`albertkit.finetuning.squad.postprocess`.
    """
    if not examples:
        return []
    questions = _truncate_question(tokenizer, [ex.question.lstrip() for ex in examples], max_query_length)
    q_lengths = tokenizer(questions, truncation=False)["input_ids"]
    # Group by question length so each group needs one tokenizer call with one overlap value.
    groups: dict[int, list[int]] = defaultdict(list)
    for i, ids in enumerate(q_lengths):
        groups[len(ids) - 2].append(i)
    per_example: list[list[dict[str, Any]]] = [[] for _ in examples]
    for q_len, members in groups.items():
        window = max_length - q_len - 3  # [CLS] q [SEP] ... [SEP]
        if window <= 0:
            raise ValueError(f"max_length {max_length} leaves no room for the context after a {q_len}-piece question")
        overlap = max(0, window - doc_stride)
        enc = tokenizer(
            [questions[i] for i in members],
            [examples[i].context for i in members],
            truncation="only_second",
            max_length=max_length,
            stride=overlap,
            return_overflowing_tokens=True,
            return_offsets_mapping=True,
        )
        for f, sample in enumerate(enc["overflow_to_sample_mapping"]):
            ex_index = members[sample]
            ex = examples[ex_index]
            ids = list(enc["input_ids"][f])
            seq_ids = enc.sequence_ids(f)
            offsets = [tuple(o) if s == 1 else None for o, s in zip(enc["offset_mapping"][f], seq_ids)]
            feat: dict[str, Any] = {
                "input_ids": ids,
                "token_type_ids": _token_type_ids(enc, f, len(ids)),
                "attention_mask": [1] * len(ids),
                "example_id": ex.qid,
                "offset_mapping": offsets,
            }
            if training:
                start = end = 0  # [CLS]
                if not ex.is_impossible and ex.answers:
                    answer = ex.answers[0]
                    a_start = answer.answer_start
                    a_end = a_start + len(answer.text)  # exclusive
                    ctx = [t for t, o in enumerate(offsets) if o is not None]
                    if ctx and offsets[ctx[0]][0] <= a_start and offsets[ctx[-1]][1] >= a_end:
                        # first piece ending after the answer start; last piece starting before its end
                        start = next(t for t in ctx if offsets[t][1] > a_start)
                        end = next(t for t in reversed(ctx) if offsets[t][0] < a_end)
                feat["start_positions"] = start
                feat["end_positions"] = end
            per_example[ex_index].append(feat)
    return [feat for feats in per_example for feat in feats]


def race_pair(question: str, option: str) -> str:
    """The second segment for one RACE option: a cloze question (with ``_``) gets the option filled
    in, any other question is followed by the option (ALBERT's ``race_utils`` convention)."""
    if "_" in question:
        return question.replace("_", option)
    return f"{question} {option}"


def encode_multiple_choice(
    examples: Sequence[RaceExample],
    tokenizer: Any,
    *,
    max_length: int = 512,
) -> list[dict[str, Any]]:
    """Four ``[CLS] passage [SEP] question+option [SEP]`` rows per question, truncated longest-first
    (which cuts the passage). Each feature holds lists of 4 rows; ``labels`` is 0..3."""
    if not examples:
        return []
    firsts, seconds = [], []
    for ex in examples:
        for option in ex.options:
            firsts.append(ex.article)
            seconds.append(race_pair(ex.question, option))
    enc = tokenizer(firsts, seconds, truncation="longest_first", max_length=max_length)
    features = []
    for i, ex in enumerate(examples):
        rows = range(4 * i, 4 * i + 4)
        input_ids = [list(enc["input_ids"][r]) for r in rows]
        feat: dict[str, Any] = {
            "input_ids": input_ids,
            "token_type_ids": [_token_type_ids(enc, r, len(input_ids[k])) for k, r in enumerate(rows)],
            "attention_mask": [[1] * len(ids) for ids in input_ids],
        }
        if ex.label is not None:
            feat["labels"] = ex.label
        features.append(feat)
    return features


# Pad value per field (input_ids: the tokenizer's pad id); scalar fields are stacked, not padded.
_PAD_VALUES = {"input_ids": None, "token_type_ids": 0, "attention_mask": 0, "labels": IGNORE_INDEX,
               "start_positions": 0, "end_positions": 0}


def collate(features: Sequence[dict[str, Any]], *, pad_token_id: int = 0) -> dict[str, Any]:
    """Pad a list of features into tensors: ``input_ids``, ``token_type_ids``, ``attention_mask``
    [B, T] (or [B, C, T] for multiple choice), ``labels`` [B] / [B, T], ``start_positions`` /
    ``end_positions`` [B]. Bookkeeping keys (``example_id``, ``offset_mapping``, ``word_ids``)
    are left out; keep them beside the features for postprocessing."""
    from albertkit.batching import pad

    return pad(features, {k: pad_token_id if v is None else v for k, v in _PAD_VALUES.items()})
