"""Fill-mask: the model card's ``unmasker("Hello I'm a [MASK] model.")``, with Hugging Face's output.

Each candidate is ``{"score", "token", "token_str", "sequence"}``. One mask gives a list of
candidates; several masks give one list per mask (each mask scored on its own, as HF does). The
MLM head runs only at the mask positions (``masked_lm_positions``), not over the whole sequence.

    >>> unmasker = pipeline("fill-mask", model="albert-base-v2")  # doctest: +SKIP
    >>> unmasker("Hello I'm a [MASK] model.")[0]["token_str"]  # doctest: +SKIP
    'modeling'
"""

from __future__ import annotations

import logging
from typing import Any

import torch
from torch import Tensor

from albertkit.pipelines.base import Feature, Pipeline, PipelineInputError, describe_input

__all__ = ["FillMaskPipeline"]

logger = logging.getLogger(__name__)


class FillMaskPipeline(Pipeline):
    """Predict the token behind each ``[MASK]``; ``top_k`` (default 5) and ``targets`` as in HF.

        >>> unmasker(["Paris is the [MASK] of France.", "A [MASK] barks."], top_k=2)  # doctest: +SKIP
    """

    task = "fill-mask"
    forward_params = ("top_k", "target_ids")

    def _sanitize(self, top_k: int | None = None, targets: str | list[str] | None = None, **rest: Any) -> dict[str, Any]:
        super()._sanitize(**rest)
        if self.tokenizer.mask_token_id is None:
            raise ValueError("the tokenizer defines no mask token, so fill-mask cannot run")
        out: dict[str, Any] = {}
        if top_k is not None:
            if isinstance(top_k, bool) or not isinstance(top_k, int) or top_k < 1:
                raise ValueError(f"top_k must be a positive integer, got {top_k!r}")
            if top_k > self.config.vocab_size:  # transformers caps it silently; a typo deserves a word
                raise ValueError(f"top_k {top_k} exceeds the vocabulary ({self.config.vocab_size} tokens)")
            out["top_k"] = top_k
        if targets is not None:
            out["target_ids"] = self._target_ids(targets)
        return out

    def _target_ids(self, targets: str | list[str]) -> list[int]:
        """Vocabulary ids of ``targets``; a word outside the vocab stands for its first piece (warned)."""
        if isinstance(targets, str):
            targets = [targets]
        if not isinstance(targets, (list, tuple)) or not all(isinstance(t, str) for t in targets):
            raise ValueError(f"targets must be a string or a list of strings, got {targets!r}")
        vocab = self.tokenizer.get_vocab()
        ids: list[int] = []
        for target in targets:
            id_ = vocab.get(target)
            if id_ is None:
                pieces = self.tokenizer(target, add_special_tokens=False)["input_ids"]
                if not pieces:
                    logger.warning("target %r is not in the model vocabulary and has no pieces; ignoring it", target)
                    continue
                id_ = pieces[0]
                # The HF rule: an out-of-vocab word stands for its first piece, which is often not what
                # the user meant ("modeling" -> "▁modeling" is fine, "runways" -> "▁runway" is not).
                logger.warning(
                    "target %r is not in the model vocabulary; using its first piece %r instead",
                    target,
                    self.tokenizer.convert_ids_to_tokens(id_),
                )
            ids.append(int(id_))
        ids = sorted(set(ids))
        if not ids:
            raise ValueError(f"none of the targets {list(targets)!r} maps to a vocabulary entry")
        return ids

    # -- steps ------------------------------------------------------------------------------------
    def preprocess(self, item: str, index: int | None) -> list[Feature]:
        enc = self._encode(item, None, index)
        ids = list(enc["input_ids"])
        mask_id = self.tokenizer.mask_token_id
        positions = [i for i, t in enumerate(ids) if t == mask_id]
        if not positions:
            raise PipelineInputError(
                f"{describe_input(index, item)}: no mask token ({self.tokenizer.mask_token}) found"
                + (" (it was cut off by truncation)" if self.tokenizer.mask_token in item else "")
            )
        types = list(enc.get("token_type_ids") or [0] * len(ids))
        return [Feature(index=0, input_ids=ids, token_type_ids=types, extra={"mask_positions": positions})]

    def _forward(
        self, batch: dict[str, Tensor], features: list[Feature], top_k: int = 5, target_ids: list[int] | None = None
    ) -> dict[str, Tensor]:
        # Mask positions [B, P]; rows with fewer masks repeat position 0, whose scores are never read.
        most = max(len(f.extra["mask_positions"]) for f in features)
        positions = torch.zeros((len(features), most), dtype=torch.long)
        for row, f in enumerate(features):
            pos = f.extra["mask_positions"]
            positions[row, : len(pos)] = torch.tensor(pos)
        logits = self.model(**batch, masked_lm_positions=positions.to(self.device)).logits  # [B, P, V]
        probs = logits.float().softmax(dim=-1)
        k = min(top_k, probs.shape[-1])
        if target_ids is not None:
            candidates = torch.tensor(target_ids, device=probs.device)
            probs = probs.index_select(-1, candidates)
            k = min(k, len(target_ids))
            scores, picked = probs.topk(k, dim=-1)
            ids = candidates[picked]
        else:
            scores, ids = probs.topk(k, dim=-1)
        return {"scores": scores, "ids": ids}  # [B, P, k] each

    def postprocess(self, item: str, features: list[Feature]) -> list[dict[str, Any]] | list[list[dict[str, Any]]]:
        (f,) = features
        positions = f.extra["mask_positions"]
        single_mask = len(positions) == 1
        pad = self.tokenizer.pad_token_id
        results = []
        for m, pos in enumerate(positions):
            row = []
            for score, token in zip(f.outputs["scores"][m].tolist(), f.outputs["ids"][m].tolist()):
                tokens = list(f.input_ids)
                tokens[pos] = token
                tokens = [t for t in tokens if t != pad]
                # With several masks the other [MASK]s stay visible, so special tokens are kept (as HF).
                sequence = self.tokenizer.decode(tokens, skip_special_tokens=single_mask)
                row.append(
                    {"score": score, "token": token, "token_str": self.tokenizer.decode([token]), "sequence": sequence}
                )
            results.append(row)
        return results[0] if single_mask else results

    def __call__(self, inputs: str | list[str], **params: Any) -> Any:
        """One text -> its candidates; a list -> one result per text (HF: a 1-element list unwraps)."""
        out = super().__call__(inputs, **params)
        if isinstance(inputs, (list, tuple)) and len(inputs) == 1:
            return out[0]
        return out
