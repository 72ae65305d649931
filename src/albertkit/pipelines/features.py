"""Token vectors (feature-extraction, as Hugging Face returns them) and pooled sentence embeddings.

    >>> extractor = pipeline("feature-extraction", model="albert-base-v2")  # doctest: +SKIP
    >>> len(extractor("Hello world")[0])  # [1, T, H] nested lists: T tokens  # doctest: +SKIP
    4
    >>> embed = pipeline("sentence-embedding", model="albert-base-v2", pooling="mean", normalize=True)  # doctest: +SKIP
    >>> embed.encode(["a cat", "a dog"]).shape  # doctest: +SKIP
    torch.Size([2, 768])
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Sequence

import torch
from torch import Tensor

from albertkit.formats.sentence_transformers import POOLING_MODES
from albertkit.pipelines.base import Feature, Pipeline

__all__ = ["FeatureExtractionPipeline", "SentenceEmbeddingPipeline", "POOLING_MODES", "check_pooling", "pool"]

def check_pooling(pooling: str) -> str:
    """``pooling`` itself if it is one of POOLING_MODES (sentence-transformers' modes) or several
    joined by "+" (their vectors concatenated in that order); else ValueError."""
    modes = pooling.split("+") if isinstance(pooling, str) else [pooling]
    for m in modes:
        if m not in POOLING_MODES:
            raise ValueError(f"pooling must be one of {', '.join(POOLING_MODES)} or several joined by '+', got {pooling!r}")
    return pooling


def pool(hidden: Tensor, attention_mask: Tensor, mode: str) -> Tensor:
    """Pool token vectors [B, T, H] over the real tokens of ``attention_mask`` [B, T] -> [B, H]
    (or [B, k*H] for k modes joined by "+").

    Definitions are sentence-transformers' (its Pooling module): ``mean`` and ``max`` include
    ``[CLS]``/``[SEP]`` and skip padding; ``mean_sqrt_len_tokens`` divides the sum by sqrt(length);
    ``weightedmean`` weighs position t by t+1; ``lasttoken`` is the last real token.
    """
    check_pooling(mode)
    mask = attention_mask.unsqueeze(-1).to(hidden.dtype)  # [B, T, 1]
    out = []
    for m in mode.split("+"):
        if m == "cls":
            out.append(hidden[:, 0])
        elif m == "max":
            out.append(hidden.masked_fill(mask == 0, float("-inf")).max(dim=1).values)
        elif m in ("mean", "mean_sqrt_len_tokens"):
            total, n = (hidden * mask).sum(dim=1), mask.sum(dim=1).clamp(min=1e-9)
            out.append(total / (n if m == "mean" else n.sqrt()))
        elif m == "weightedmean":
            weights = mask * torch.arange(1, hidden.shape[1] + 1, device=hidden.device, dtype=hidden.dtype).view(1, -1, 1)
            out.append((hidden * weights).sum(dim=1) / weights.sum(dim=1).clamp(min=1e-9))
        else:  # lasttoken (right padding: the last real token is at length - 1)
            last = (attention_mask.sum(dim=1) - 1).clamp(min=0)  # [B]
            out.append(hidden[torch.arange(hidden.shape[0], device=hidden.device), last])
    return out[0] if len(out) == 1 else torch.cat(out, dim=-1)


class _TextPipeline(Pipeline):
    """One window per text, run through the backbone (AlbertModel)."""

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
    """One vector per text: ``pooling`` cls / mean (default) / max / ..., optional L2 ``normalize``.

    ``model`` may be a sentence-transformers folder (``modules.json``): the pooling, the
    normalisation, the lowercasing and the maximum length then come from it (explicit ``pooling=`` /
    ``normalize=`` still win), and longer texts are cut to ``max_seq_length`` without complaint, as
    sentence-transformers cuts them. ``save_pretrained(folder)`` writes such a folder.

        >>> embed = pipeline("sentence-embedding", model="paraphrase-albert-small-v2")  # doctest: +SKIP
        >>> embed.save_pretrained("copy")  # sentence-transformers loads it  # doctest: +SKIP
    """

    task = "sentence-embedding"
    forward_params = ("pooling", "normalize")

    def __init__(self, model: Any = None, tokenizer: Any = None, **kwargs: Any) -> None:
        from albertkit.formats.sentence_transformers import SentenceTransformersError, read_sentence_transformers

        self.sentence_transformers = None
        if isinstance(model, (str, os.PathLike)) and Path(model).is_dir():
            try:
                self.sentence_transformers = read_sentence_transformers(model)
            except SentenceTransformersError as exc:
                raise ValueError(str(exc)) from None
        spec = self.sentence_transformers
        if spec is not None:
            model = spec.transformer_path
            kwargs.setdefault("pooling", spec.pooling)
            kwargs.setdefault("normalize", spec.normalize)
        super().__init__(model, tokenizer, **kwargs)
        if spec is not None and spec.max_seq_length is not None:
            self.max_length = min(self.max_length, spec.max_seq_length)

    def preprocess(self, item: str, index: int | None) -> list[Feature]:
        spec = self.sentence_transformers
        if spec is None:
            return super().preprocess(item, index)
        text = item.lower() if spec.do_lower_case else item
        enc = self.tokenizer(text, truncation=True, max_length=self.max_length)  # as sentence-transformers cuts
        ids = list(enc["input_ids"])
        return [Feature(index=0, input_ids=ids, token_type_ids=list(enc.get("token_type_ids") or [0] * len(ids)))]

    def save_pretrained(self, folder: str | os.PathLike) -> None:
        """Write a sentence-transformers folder (model, tokenizer, modules.json, pooling, normalize)."""
        from albertkit.formats.sentence_transformers import write_sentence_transformers

        if not hasattr(self.model, "save_pretrained"):
            raise TypeError(f"this pipeline's model ({type(self.model).__name__}) cannot be saved; build it without fast=")
        self.model.save_pretrained(str(folder))
        self.tokenizer.save_pretrained(folder)
        spec = self.sentence_transformers
        write_sentence_transformers(
            folder,
            hidden_size=int(self.config.hidden_size),
            pooling=self.defaults.get("pooling", "mean"),
            normalize=bool(self.defaults.get("normalize", False)),
            max_seq_length=self.max_length,
            do_lower_case=spec.do_lower_case if spec is not None else False,
        )

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
            out["pooling"] = check_pooling(pooling)
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
