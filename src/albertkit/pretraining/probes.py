"""Cheap held-out probes that show whether an MLM has left the frequency plateau (issue #14).

An MLM on the plateau predicts frequent words whatever the context: its accuracy at [MASK] stays
near always-"the" (about 5.6%), shuffling the visible words barely changes its loss, and its
attention heads ignore their neighbours. Three numbers watch for the escape:

* ``mask_only_accuracy`` / ``mask_only_loss``: over positions that hold [MASK] in the input, so
  the 10% of targets left unchanged (which a model learns to copy) do not inflate it;
* ``shuffle_gap``: [MASK]-only loss with the unmasked pieces of each segment shuffled among their
  positions, minus the loss on the real order (nats; near 0 means word order is unused);
* ``neighbour_attention``: the largest, over layers and heads, mean attention probability that a
  piece puts on each of its two neighbours (``(p[i, i-1] + p[i, i+1]) / 2``), beside
  ``uniform_attention`` (mean ``1 / length``) which a head that ignores position gets.

    >>> probes = LanguageProbes(model_tok, heldout_instances, max_instances=128)       # doctest: +SKIP
    >>> probes(model)                                                                 # doctest: +SKIP
    {'mask_only_accuracy': 0.21, 'mask_only_loss': 4.9, 'shuffle_gap': 1.3, 'neighbour_attention': 0.41, ...}
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import Tensor, nn
from torch.utils.data import DataLoader, Dataset

__all__ = ["mask_only_scores", "shuffle_context", "neighbour_attention", "LanguageProbes"]


def mask_only_scores(logits: Tensor, labels: Tensor, input_ids: Tensor, positions: Tensor, mask_id: int) -> tuple[Tensor, Tensor]:
    """Per-prediction cross-entropy and correctness at positions whose input is [MASK].

    ``logits`` [B, P, V] at ``positions`` [B, P]; ``labels`` [B, P] (-100 = padding). Returns two
    1-D tensors (loss, correct) over the predictions whose input token is ``mask_id``.
    """
    shown = torch.gather(input_ids, 1, positions)
    keep = (labels != -100) & (shown == mask_id)
    ce = nn.functional.cross_entropy(logits.float().transpose(1, 2), labels.clamp(min=0), reduction="none")
    return ce[keep], (logits.argmax(-1) == labels)[keep].float()


def shuffle_context(input_ids: Tensor, token_type_ids: Tensor, attention_mask: Tensor, positions: Tensor,
                    labels: Tensor, special: Tensor, generator: torch.Generator) -> Tensor:
    """``input_ids`` with the unmasked, non-special pieces of each segment permuted among themselves.

    Predicted positions, [CLS]/[SEP]/padding stay where they are, so only word order changes.
    ``special`` is a boolean lookup over the vocabulary.
    """
    out = input_ids.clone()
    fixed = special[input_ids] | (attention_mask == 0)
    for row in range(input_ids.shape[0]):
        predicted = positions[row][labels[row] != -100]
        movable = ~fixed[row]
        movable[predicted] = False
        for segment in (0, 1):
            idx = torch.nonzero(movable & (token_type_ids[row] == segment)).flatten()
            if len(idx) > 1:
                out[row, idx] = input_ids[row, idx[torch.randperm(len(idx), generator=generator)]]
    return out


def neighbour_attention(attentions: tuple[Tensor, ...] | list[Tensor], attention_mask: Tensor) -> tuple[float, float]:
    """(largest per-head mean of ``(p[i, i-1] + p[i, i+1]) / 2`` over layers and heads, mean ``1/length``).

    Only real (non-padding) query pieces with both neighbours real are counted.
    """
    mask = attention_mask.bool()  # [B, T]
    inner = mask[:, 1:-1] & mask[:, :-2] & mask[:, 2:]  # [B, T-2]: query i = 1..T-2
    best = 0.0
    for probs in attentions:  # [B, A, T, T]
        p = probs.float()
        left = torch.diagonal(p, offset=-1, dim1=-2, dim2=-1)[..., :-1]  # p[i, i-1], i = 1..T-2
        right = torch.diagonal(p, offset=1, dim1=-2, dim2=-1)[..., 1:]  # p[i, i+1], i = 1..T-2
        pair = (left + right) / 2  # [B, A, T-2]
        per_head = (pair * inner[:, None]).sum(dim=(0, 2)) / inner.sum().clamp(min=1)
        best = max(best, float(per_head.max()))
    lengths = mask.sum(-1).float()
    return best, float((1.0 / lengths).mean())


class LanguageProbes:
    """The three plateau probes on a fixed held-out set (fixed masking, fixed shuffles).

    ``collator`` masks the instances (use single pieces, ``MaskingCollator(whole_word=False)``, for
    numbers comparable to the issue's); batches are made once, so every call sees the same inputs.
    """

    def __init__(self, collator: Any, dataset: Dataset, max_instances: int = 128, batch_size: int = 32, seed: int = 0) -> None:
        n = min(max_instances, len(dataset))  # type: ignore[arg-type]
        if n == 0:
            raise ValueError("LanguageProbes: the held-out dataset is empty")
        loader = DataLoader(torch.utils.data.Subset(dataset, range(n)), batch_size=batch_size, collate_fn=collator)
        self.batches = list(loader)
        self.mask_id = int(collator.mask_id)
        special = torch.zeros(len(collator.never_mask), dtype=torch.bool)
        special[torch.from_numpy(np.flatnonzero(collator.never_mask))] = True
        gen = torch.Generator().manual_seed(seed)
        self.shuffled = [
            shuffle_context(b["input_ids"], b["token_type_ids"], b["attention_mask"], b["masked_lm_positions"],
                            b["masked_lm_labels"], special, gen)
            for b in self.batches
        ]

    @torch.no_grad()
    def __call__(self, model: nn.Module) -> dict[str, float]:
        device = next(model.parameters()).device
        was_training = model.training
        model.eval()
        losses, correct, shuffled_losses = [], [], []
        best, uniform, weight = 0.0, 0.0, 0
        try:
            for batch, shuffled_ids in zip(self.batches, self.shuffled):
                b = {k: v.to(device) for k, v in batch.items()}
                inputs = {k: b[k] for k in ("input_ids", "attention_mask", "token_type_ids", "masked_lm_positions")}
                out = model(**inputs, output_attentions=True)
                ce, ok = mask_only_scores(out.prediction_logits, b["masked_lm_labels"], b["input_ids"], b["masked_lm_positions"], self.mask_id)
                losses.append(ce)
                correct.append(ok)
                nb, un = neighbour_attention(out.attentions, b["attention_mask"])
                best = max(best, nb)
                uniform += un * len(b["input_ids"])
                weight += len(b["input_ids"])
                out_s = model(**{**inputs, "input_ids": shuffled_ids.to(device)})
                ce_s, _ = mask_only_scores(out_s.prediction_logits, b["masked_lm_labels"], b["input_ids"], b["masked_lm_positions"], self.mask_id)
                shuffled_losses.append(ce_s)
        finally:
            model.train(was_training)
        loss = torch.cat(losses)
        return {
            "mask_only_loss": float(loss.mean()),
            "mask_only_accuracy": float(torch.cat(correct).mean()),
            "shuffle_gap": float(torch.cat(shuffled_losses).mean() - loss.mean()),
            "neighbour_attention": best,
            "uniform_attention": uniform / max(weight, 1),
            "mask_only_tokens": float(len(loss)),
        }
