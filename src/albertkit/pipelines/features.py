"""Token vectors (feature-extraction, as Hugging Face returns them) and pooled sentence embeddings.

    >>> extractor = pipeline("feature-extraction", model="albert-base-v2")  # doctest: +SKIP
    >>> len(extractor("Hello world")[0])  # [1, T, H] nested lists: T tokens  # doctest: +SKIP
    4
    >>> embed = pipeline("sentence-embedding", model="albert-base-v2", pooling="mean", normalize=True)  # doctest: +SKIP
    >>> embed.encode(["a cat", "a dog"]).shape  # doctest: +SKIP
    torch.Size([2, 768])
"""

from __future__ import annotations

from typing import Any, Sequence

import torch
from torch import Tensor

from albertkit.pipelines.base import Feature, Pipeline

__all__ = ["FeatureExtractionPipeline", "SentenceEmbeddingPipeline", "POOLING_MODES", "pool"]

POOLING_MODES = ("cls", "mean", "max")


def pool(hidden: Tensor, attention_mask: Tensor, mode: str) -> Tensor:
    """Pool token vectors [B, T, H] over the real tokens of ``attention_mask`` [B, T] -> [B, H].

    ``mean`` and ``max`` include ``[CLS]``/``[SEP]`` and skip padding (sentence-transformers' definition).
    """
    if mode == "cls":
        return hidden[:, 0]
    mask = attention_mask.unsqueeze(-1).to(hidden.dtype)  # [B, T, 1]
    if mode == "mean":
        return (hidden * mask).sum(dim=1) / mask.sum(dim=1).clamp(min=1e-9)
    if mode == "max":
        return hidden.masked_fill(mask == 0, float("-inf")).max(dim=1).values
    raise ValueError(f"pooling must be one of {', '.join(POOLING_MODES)}, got {mode!r}")


class _TextPipeline(Pipeline):
    model_class = "AlbertModel"

    def preprocess(self, item: str, index: int | None) -> list[Feature]:
        enc = self._encode(item, None, index)
        ids = list(enc["input_ids"])
        types = list(enc.get("token_type_ids") or [0] * len(ids))
        return [Feature(index=0, input_ids=ids, token_type_ids=types)]


class FeatureExtractionPipeline(_TextPipeline):
    """Last hidden states per input: nested lists [1, T, H] (HF's shape), or tensors with return_tensors."""

    task = "feature-extraction"

    def _sanitize(self, return_tensors: bool | None = None, **rest: Any) -> dict[str, Any]:
        super()._sanitize(**rest)
        return {} if return_tensors is None else {"return_tensors": bool(return_tensors)}

    def _forward(self, batch: dict[str, Tensor], features: list[Feature]) -> dict[str, Tensor]:
        return {"last_hidden_state": self.model(**batch).last_hidden_state}

    def postprocess(self, item: str, features: list[Feature], return_tensors: bool = False) -> Any:
        (f,) = features
        hidden = f.outputs["last_hidden_state"][: len(f)].unsqueeze(0)  # [1, T, H], padding cut off
        return hidden if return_tensors else hidden.tolist()


class SentenceEmbeddingPipeline(_TextPipeline):
    """One vector per text: ``pooling`` cls / mean (default) / max, optional L2 ``normalize``."""

    task = "sentence-embedding"
    forward_params = ("pooling", "normalize")

    def _sanitize(
        self,
        pooling: str | None = None,
        normalize: bool | None = None,
        return_tensors: bool | None = None,
        **rest: Any,
    ) -> dict[str, Any]:
        super()._sanitize(**rest)
        out: dict[str, Any] = {}
        if pooling is not None:
            if pooling not in POOLING_MODES:
                raise ValueError(f"pooling must be one of {', '.join(POOLING_MODES)}, got {pooling!r}")
            out["pooling"] = pooling
        if normalize is not None:
            out["normalize"] = bool(normalize)
        if return_tensors is not None:
            out["return_tensors"] = bool(return_tensors)
        return out

    def _forward(
        self, batch: dict[str, Tensor], features: list[Feature], pooling: str = "mean", normalize: bool = False
    ) -> dict[str, Tensor]:
        hidden = self.model(**batch).last_hidden_state.float()
        vectors = pool(hidden, batch["attention_mask"], pooling)
        if normalize:
            vectors = torch.nn.functional.normalize(vectors, p=2.0, dim=-1)
        return {"embedding": vectors}

    def postprocess(self, item: str, features: list[Feature], return_tensors: bool = False) -> Any:
        (f,) = features
        vector = f.outputs["embedding"]
        return vector if return_tensors else vector.tolist()

    def encode(self, texts: Sequence[str], **params: Any) -> Tensor:
        """Embeddings of ``texts`` as one tensor [N, H] (sentence-transformers' ``encode``)."""
        params["return_tensors"] = True
        return torch.stack(self.run_many(list(texts), **params))
