"""Inference pipelines: text in, JSON-ready results out.

    >>> from albertkit import pipeline
    >>> unmasker = pipeline("fill-mask", model="albert-base-v2")  # doctest: +SKIP
    >>> unmasker("Hello I'm a [MASK] model.")  # doctest: +SKIP
    [{'score': 0.058, 'token': 12807, 'token_str': 'modeling', 'sequence': "hello i'm a modeling model."}, ...]

Tasks: fill-mask, feature-extraction, sentence-embedding, text-classification (alias
sentiment-analysis), token-classification (alias ner), question-answering, multiple-choice.
"""

from __future__ import annotations

import importlib
import os
from typing import TYPE_CHECKING, Any

from albertkit.layout import TASKS as _TASKS

if TYPE_CHECKING:
    from albertkit.pipelines.base import Pipeline, PipelineInputError

__all__ = ["pipeline", "Pipeline", "PipelineInputError", "TASKS", "ALIASES"]

# task -> "module:Class", from the one task table (albertkit.layout.TASKS); modules load on first use.
TASKS = {name: task.pipeline for name, task in _TASKS.items() if task.pipeline}
ALIASES = {
    "sentiment-analysis": "text-classification",
    "ner": "token-classification",
    "qa": "question-answering",
    "embed": "sentence-embedding",
    "sentence-embeddings": "sentence-embedding",
    "embeddings": "sentence-embedding",
    "features": "feature-extraction",
}


def pipeline_class(task: str) -> type[Pipeline]:
    name = ALIASES.get(task, task)
    if name not in TASKS:
        known = ", ".join(sorted([*TASKS, *ALIASES]))
        raise ValueError(f"unknown task {task!r}; known tasks: {known}")
    module, cls = TASKS[name].split(":")
    return getattr(importlib.import_module(module), cls)


def pipeline(
    task: str,
    model: str | os.PathLike | Any = None,
    tokenizer: str | os.PathLike | Any = None,
    *,
    device: str = "cpu",
    dtype: Any = None,
    batch_size: int = 32,
    truncation: str = "error",
    progress: bool | None = None,
    fast: str | None = None,
    calibration: list[str] | None = None,
    **defaults: Any,
) -> Pipeline:
    """Build the pipeline for ``task``.

    ``model``: a folder, a hub name (through the Hugging Face cache), or a model object; None means
    albert-base-v2, or the model albertkit ships when albert-base-v2 is not available (warned).
    ``tokenizer``: defaults to the model's. ``truncation``: "error" (default) rejects texts longer than
    the model's window, "warn" cuts them with a warning. ``fast``: None (plain fp32), or one of
    ``albertkit.fast.MODES`` ("bf16", "int8", "onnx", "onnx-int8", "fp32"). ``calibration``: texts like
    the inputs to come, on which ``fast="int8"`` (or ``"auto"`` where it picks int8) calibrates its
    smoothing (default: random token ids). Extra keywords become per-call defaults
    (``top_k=3``, ``aggregation_strategy="simple"``, ``pooling="cls"``...).

        >>> ner = pipeline("ner", model="runs/conll", aggregation_strategy="first")  # doctest: +SKIP
    """
    cls = pipeline_class(task)
    return cls(
        model,
        tokenizer,
        device=device,
        dtype=dtype,
        batch_size=batch_size,
        truncation=truncation,
        progress=progress,
        fast=fast,
        calibration=calibration,
        **defaults,
    )


def __getattr__(name: str) -> Any:
    # base imports torch; loading it lazily keeps `albertkit --help` (which imports .commands) fast.
    if name in ("Pipeline", "PipelineInputError"):
        from albertkit.pipelines import base

        return getattr(base, name)
    raise AttributeError(f"module 'albertkit.pipelines' has no attribute {name!r}")
