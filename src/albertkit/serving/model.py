"""The model a server holds: one checkpoint loaded once, and the pipelines that share it.

The checkpoint's weights decide the routes: an MLM head (``predictions.*``) serves ``/fill-mask``, a
sequence-classification head serves ``/predict`` (and ``/rerank`` when it has one label, as a
cross-encoder); every ALBERT serves ``/embed``, ``/embed_all`` and ``/v1/embeddings`` from its
backbone (``model.albert``: the same tensors, not a copy) and ``/tokenize`` / ``/decode``.

    >>> served = ServedModel.load("src/albertkit/models/albert-mini-en", fast="fp32")  # doctest: +SKIP
    >>> served.pipeline("fill-mask")("Paris is the [MASK] of France.")              # doctest: +SKIP
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field
from typing import Any

import torch

from albertkit.checkpoint import ResolvedCheckpoint
from albertkit.layout import MODEL_CLASSES as CLASS_FACTS
from albertkit.pipelines.base import Pipeline, resolve_model
from albertkit.serving.options import FAST_CHOICES

__all__ = ["ServedModel", "resolve_fast"]

logger = logging.getLogger(__name__)


# route task -> pipeline task (albertkit.pipelines.TASKS)
_PIPELINE_TASKS = {
    "fill-mask": "fill-mask",
    "embed": "sentence-embedding",
    "embed_all": "feature-extraction",
    "predict": "text-classification",
}


def resolve_fast(fast: str, device: str = "cpu") -> str:
    """``auto`` -> ``bf16`` where the device runs bf16 natively (AVX512-BF16, AMX, bf16 GPUs), else ``fp32``."""
    if fast not in FAST_CHOICES:
        raise ValueError(f"--fast must be one of {', '.join(FAST_CHOICES)}, got {fast!r}")
    if fast != "auto":
        return fast
    from albertkit.fast import bf16_supported

    return "bf16" if bf16_supported(device) else "fp32"


def _head_class(checkpoint: ResolvedCheckpoint) -> str:
    """The model class whose head the checkpoint carries (by its weights, then its architectures)."""

    def carries(class_name: str) -> bool:
        return any(k.startswith(CLASS_FACTS[class_name].head_prefixes) for k in checkpoint.keys)

    if carries("AlbertForMaskedLM"):
        return "AlbertForMaskedLM"
    architectures = checkpoint.config.architectures or []
    if carries("AlbertForSequenceClassification") and any(a.endswith("SequenceClassification") for a in architectures):
        return "AlbertForSequenceClassification"
    return "AlbertModel"


@dataclass
class ServedModel:
    """One loaded checkpoint and its pipelines, keyed by (route task, truncate)."""

    name: str
    head_class: str
    fast: str
    pooling: str
    tokenizer: Any
    config: Any
    max_input_length: int
    _pipes: dict[tuple[str, bool], Pipeline] = field(default_factory=dict)

    @classmethod
    def load(
        cls,
        model: str | os.PathLike | None,
        *,
        fast: str = "fp32",
        pooling: str = "mean",
        device: str = "cpu",
        calibration: list[str] | None = None,
    ) -> "ServedModel":
        """Load ``model`` with every route's pipeline on one copy of the weights, on the fast path
        ``fast`` (``calibration``: texts for int8's smoothing, see ``quantization.calibration_from_texts``).

            >>> served = ServedModel.load("src/albertkit/models/albert-mini-en", fast="int8", calibration=texts)  # doctest: +SKIP
        """
        from albertkit.checkpoint import resolve_checkpoint
        from albertkit.fast import optimize
        from albertkit.modeling import MODEL_CLASSES
        from albertkit.pipelines import pipeline_class
        from albertkit.pipelines.features import POOLING_MODES
        from albertkit.tokenization import AlbertTokenizer

        if pooling not in POOLING_MODES:
            raise ValueError(f"--pooling must be one of {', '.join(POOLING_MODES)}, got {pooling!r}")
        fast = resolve_fast(fast, device)
        if calibration is not None and fast != "int8":
            raise ValueError(f"calibration applies to the int8 path only, not {fast!r}")
        checkpoint = resolve_checkpoint(resolve_model(model))  # one lookup for the weights and the tokenizer
        name = checkpoint.name
        head = _head_class(checkpoint)
        torch_model = MODEL_CLASSES[head].from_pretrained(checkpoint, device=device).eval()
        tokenizer = AlbertTokenizer.from_pretrained(checkpoint.tokenizer_source)
        tasks = ["embed", "embed_all"]
        if head == "AlbertForMaskedLM":
            tasks.append("fill-mask")
        if head == "AlbertForSequenceClassification":
            tasks.append("predict")
        # Build every pipeline on the fp32 torch model, then put the shared model on the fast path
        # once: bf16 casts in place and int8 quantizes one copy, so the backbone of the head model
        # *is* the model the embedding pipelines run (one copy of the weights in memory).
        pipes: dict[tuple[str, bool], Pipeline] = {}
        for task in tasks:
            module = torch_model if task in ("fill-mask", "predict") or head == "AlbertModel" else torch_model.albert
            defaults = {"pooling": pooling} if task == "embed" else {}
            for truncate in (False, True):
                pipes[task, truncate] = pipeline_class(_PIPELINE_TASKS[task])(
                    module, tokenizer, device=device, truncation="warn" if truncate else "error", **defaults
                )
        if fast != "fp32":
            batches = None
            if calibration is not None:
                from albertkit.quantization import calibration_from_texts

                batches = calibration_from_texts(tokenizer, calibration, max_length=int(torch_model.config.max_position_embeddings))
            head_fast = optimize(torch_model, fast, calibration=batches)
            if fast in ("onnx", "onnx-int8"):
                # An ONNX graph has no submodules: the backbone gets its own export (two sessions).
                backbone_fast = head_fast if head == "AlbertModel" else optimize(torch_model.albert, fast)
            else:
                backbone_fast = getattr(head_fast, "albert", head_fast)
            for (task, _), pipe in pipes.items():
                pipe.model = head_fast if task in ("fill-mask", "predict") else backbone_fast
        any_pipe = next(iter(pipes.values()))
        return cls(name, head, fast, pooling, tokenizer, torch_model.config, any_pipe.max_length, pipes)

    @property
    def device(self) -> torch.device:
        return next(iter(self._pipes.values())).device

    def default_batch_tokens(self) -> int:
        """``--max-batch-tokens`` when none is given: padded tokens per forward pass.

        TEI's 16384 on accelerators. On CPU, the tokens whose widest activation (the FFN's
        [tokens, intermediate_size] in float32) takes 4 MiB: 1024 for albert-mini-en, 341 for
        albert-base-v2. Larger batches save no work on CPU and leave the caches: measured on Zen 4
        with one thread, albert-mini-en cost 9.3 ms of CPU per request of the load test's mix at 1024
        tokens and 18.6 ms at 16384; an albert-base-v2-sized model 196 ms at 512 and 708 ms at 16384.
        """
        if self.device.type != "cpu":
            return 16384
        widest = max(int(self.config.intermediate_size), int(self.config.hidden_size))
        return max(128, (4 << 20) // (4 * widest))

    def model_threads(self, cores: int, requested: int | None = None) -> tuple[int, int | None]:
        """(threads that run forward passes side by side, torch intra-op threads of each).

        On CPU: ``requested`` threads (default one per core, at most 4) sharing the ``cores``;
        elsewhere one thread, torch's threads left as they are (the device runs one batch at a time).
        """
        if self.device.type != "cpu":
            return requested or 1, None
        workers = requested or max(1, min(4, cores))
        return workers, max(1, cores // workers)

    @property
    def tasks(self) -> list[str]:
        return sorted({task for task, _ in self._pipes})

    def pipeline(self, task: str, truncate: bool = False) -> Pipeline:
        return self._pipes[task, truncate]

    def supports(self, task: str) -> bool:
        if task == "rerank":
            return ("predict", False) in self._pipes and int(self.config.num_labels) == 1
        return (task, False) in self._pipes

    @property
    def dtype(self) -> str:
        return {"fp32": "float32", "bf16": "bfloat16", "int8": "int8", "onnx": "float32 (onnx)", "onnx-int8": "int8 (onnx)"}[self.fast]

    def id2label(self) -> dict[str, str]:
        labels = self.config.id2label or {i: f"LABEL_{i}" for i in range(int(self.config.num_labels))}
        return {str(k): v for k, v in labels.items()}

    @property
    def model_type(self) -> dict[str, Any]:
        """TEI's ``model_type`` of ``/info``: classifier / reranker (with labels) or embedding (pooling)."""
        if self.head_class == "AlbertForSequenceClassification":
            labels = self.id2label()
            kind = "reranker" if len(labels) == 1 else "classifier"
            return {kind: {"id2label": labels, "label2id": {v: int(k) for k, v in labels.items()}}}
        return {"embedding": {"pooling": self.pooling}}
