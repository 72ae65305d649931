"""What every pipeline shares: model/tokenizer loading, input checks, length-sorted batching.

A pipeline turns each input into one or more *features* (one tokenized window each), runs the
model on batches of features sorted by length (so little compute goes to padding), and hands the
outputs of each input's features back to the task's ``postprocess``:

    input --preprocess--> [Feature, ...] --batched forward--> [outputs, ...] --postprocess--> result

    >>> from albertkit.pipelines.base import Pipeline  # subclasses: FillMaskPipeline, ...
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field
from typing import Any, Sequence

import torch
from torch import Tensor

from albertkit.batching import length_order, pad, predict
from albertkit.layout import MODEL_CLASSES as CLASS_FACTS
from albertkit.layout import TASKS

__all__ = [
    "Feature",
    "Pipeline",
    "PipelineInputError",
    "InputTooLongError",
    "Job",
    "describe_input",
    "resolve_model",
    "DEFAULT_MODEL",
    "SHIPPED_MODEL",
]

logger = logging.getLogger(__name__)

DEFAULT_MODEL = "albert-base-v2"
SHIPPED_MODEL = "albert-mini-en"

# Inputs from this many features on, a progress bar is shown (when progress=None).
PROGRESS_MIN_FEATURES = 128


class PipelineInputError(ValueError):
    """An input a pipeline cannot process; the message names the input (index and text)."""


class InputTooLongError(PipelineInputError):
    """An input longer than the model's window while truncation is off (a server answers 413)."""


def describe_input(index: int | None, text: Any, width: int = 60) -> str:
    """``input #3 "Hello I'm a..."``: how error messages name an input."""
    shown = repr(text) if not isinstance(text, str) else text
    if len(shown) > width:
        shown = shown[: width - 3] + "..."
    where = "input" if index is None else f"input #{index}"
    return f'{where} "{shown}"' if isinstance(text, str) else f"{where} {shown}"


@dataclass
class Feature:
    """One tokenized window of one input: what the model sees, plus what postprocess needs."""

    index: int  # position of the input this feature belongs to
    input_ids: list[int]
    token_type_ids: list[int]
    extra: dict[str, Any] = field(default_factory=dict)
    # Set by Pipeline after the forward pass: this feature's model outputs (CPU, float32).
    outputs: dict[str, Tensor] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.input_ids)


@dataclass
class Job:
    """Checked inputs of one call, preprocessed: what ``Pipeline.plan`` returns and ``finish`` takes."""

    items: list[Any]
    per_input: list[list[Feature]]  # the features of each item, in item order
    forward_params: dict[str, Any]
    postprocess_params: dict[str, Any]

    @property
    def features(self) -> list[Feature]:
        return [f for feats in self.per_input for f in feats]


# ----------------------------------------------------------------------------------- model loading
def resolve_model(model: str | os.PathLike | None) -> str:
    """The folder or hub name to load: ``model`` itself, or the default model when it is None.

    The default is ``albert-base-v2`` from the Hugging Face cache or the hub; when neither has it,
    the model that albertkit ships (``albert-mini-en``), with a warning that says so.
    """
    if model is not None:
        return str(model)
    from albertkit.hub import ModelNotFoundError, resolve_file, shipped_model_path

    try:
        resolve_file(DEFAULT_MODEL, "config.json")
        return DEFAULT_MODEL
    except ModelNotFoundError as exc:
        why = str(exc)
    shipped = shipped_model_path(SHIPPED_MODEL)
    if shipped is None:
        raise ModelNotFoundError(
            f"no model given and the default {DEFAULT_MODEL} is unavailable ({why.split(': ', 1)[-1]}); "
            f"the model albertkit ships ({SHIPPED_MODEL}) is not built into this install either. "
            f"Pass a model folder (--model PATH / model=PATH)."
        )
    logger.warning(
        "%s is not in the Hugging Face cache and the hub cannot be reached; using the model albertkit ships, "
        "%s (%s)",
        DEFAULT_MODEL,
        SHIPPED_MODEL,
        shipped,
    )
    return str(shipped)


# ---------------------------------------------------------------------------------------- Pipeline
class Pipeline:
    """Base class: subclasses define ``task`` (its model class comes from the task table,
    :data:`albertkit.layout.TASKS`) and the three steps.

    Subclass contract:
      * ``_check_inputs(inputs)`` -> (single, items): validates types, says whether one input was given.
      * ``preprocess(item, index, **params)`` -> list[Feature].
      * ``_forward(batch, features, **params)`` -> dict of tensors whose first dim is the batch.
      * ``postprocess(item, features, **params)`` -> the result for one input.
    """

    task: str = ""

    @property
    def model_class(self) -> str:
        """Name of the model class that runs this task (:data:`albertkit.layout.TASKS`)."""
        return TASKS[self.task].model_class

    @property
    def head_prefixes(self) -> tuple[str, ...]:
        """State-dict prefixes of the task head; a checkpoint without them cannot serve this task."""
        return CLASS_FACTS[self.model_class].head_prefixes

    def __init__(
        self,
        model: Any = None,
        tokenizer: Any = None,
        *,
        device: str | torch.device = "cpu",
        dtype: torch.dtype | str | None = None,
        batch_size: int = 32,
        truncation: str = "error",
        progress: bool | None = None,
        fast: str | None = None,
        calibration: list[str] | None = None,
        **defaults: Any,
    ) -> None:
        if not isinstance(batch_size, int) or isinstance(batch_size, bool) or batch_size < 1:
            raise ValueError(f"batch_size must be a positive integer, got {batch_size!r}")
        if truncation not in ("error", "warn"):
            raise ValueError(f"truncation must be 'error' or 'warn', got {truncation!r}")
        from albertkit.checkpoint import resolve_device, resolve_dtype

        self.device = resolve_device(device)
        self.dtype = resolve_dtype(dtype)
        self.batch_size = batch_size
        self.truncation = truncation
        self.progress = progress
        self.model, source = self._load_model(model)
        self.model_name = str(source)
        self.tokenizer = self._load_tokenizer(tokenizer, source)
        # fp32 (default: the fused CPU block) / bf16 / int8 / ONNX Runtime / auto (albertkit.fast);
        # each keeps the model's call signature. int8 calibrates its smoothing on `calibration`.
        from albertkit.fast import optimize
        from albertkit.quantization import calibration_from_texts

        batches = None
        if calibration is not None:
            positions = int(self.model.config.max_position_embeddings)
            batches = calibration_from_texts(self.tokenizer, calibration, max_length=positions, batch_size=batch_size)
        self.model = optimize(self.model, fast or "fp32", calibration=batches)
        self.config = self.model.config
        vocab = getattr(self.tokenizer, "vocab_size", None)
        if isinstance(vocab, int) and vocab != self.config.vocab_size:
            raise ValueError(
                f"the tokenizer has {vocab} pieces but the model's vocabulary has {self.config.vocab_size}: they do not "
                f"belong together (pass the tokenizer the model was trained with, or none to use the model folder's)"
            )
        # Longest window the model accepts: its position table, or the tokenizer's own limit.
        limit = getattr(self.tokenizer, "model_max_length", None)
        positions = int(self.config.max_position_embeddings)
        self.max_length = positions if not isinstance(limit, int) or limit <= 0 else min(positions, limit)
        self.defaults = self._sanitize(**defaults)

    # -- loading ---------------------------------------------------------------------------------
    def _load_model(self, model: Any) -> tuple[torch.nn.Module, Any]:
        """The model, and where its tokenizer is: a name is resolved once for both (the checkpoint)."""
        from albertkit.checkpoint import resolve_checkpoint
        from albertkit.modeling import MODEL_CLASSES

        cls = MODEL_CLASSES[self.model_class]
        if isinstance(model, torch.nn.Module):
            if not isinstance(model, cls):
                raise TypeError(
                    f"the {self.task} pipeline needs a {self.model_class}, got a {type(model).__name__}"
                )
            source = getattr(model, "name_or_path", None) or ""
            if self.dtype is not None or model.device != self.device:
                model = model.to(device=self.device, dtype=self.dtype)
        else:
            if model is not None and not isinstance(model, (str, os.PathLike)):
                raise TypeError(f"model must be a name, a folder or a {self.model_class}, got {type(model).__name__}")
            source = resolve_checkpoint(resolve_model(model))
            # A pipeline needs the task's trained head; the backbone pipelines need none.
            need = bool(self.head_prefixes) and f"running the {self.task} pipeline"
            model = cls.from_pretrained(source, require_head=need, dtype=self.dtype, device=self.device)
        model.eval()
        return model, source

    def _load_tokenizer(self, tokenizer: Any, source: Any) -> Any:
        from albertkit.checkpoint import ResolvedCheckpoint
        from albertkit.tokenization import AlbertTokenizer

        if tokenizer is None:
            if not source:
                raise ValueError("a model object was given without a tokenizer; pass tokenizer=NAME_OR_PATH")
            if isinstance(source, ResolvedCheckpoint):
                return AlbertTokenizer.from_pretrained(source.tokenizer_source)
            return AlbertTokenizer.from_pretrained(source)
        if isinstance(tokenizer, (str, os.PathLike)):
            return AlbertTokenizer.from_pretrained(str(tokenizer))
        return tokenizer

    # -- parameters --------------------------------------------------------------------------------
    def _sanitize(self, **params: Any) -> dict[str, Any]:
        """Validate call parameters; subclasses override. Unknown names are an error."""
        if params:
            raise TypeError(f"the {self.task} pipeline got unexpected parameter(s): {', '.join(sorted(params))}")
        return {}

    # -- the three steps (subclasses) ----------------------------------------------------------------
    def _check_inputs(self, inputs: Any) -> tuple[bool, list[Any]]:
        if isinstance(inputs, str):
            return True, [self._check_text(inputs, None)]
        if isinstance(inputs, (list, tuple)):
            if not inputs:
                raise PipelineInputError(f"the {self.task} pipeline got an empty list of inputs")
            return False, [self._check_text(x, i) for i, x in enumerate(inputs)]
        raise PipelineInputError(
            f"the {self.task} pipeline takes a string or a list of strings, got {type(inputs).__name__}"
        )

    def _check_text(self, text: Any, index: int | None, what: str = "text") -> str:
        if not isinstance(text, str):
            where = "input" if index is None else f"input #{index}"
            raise PipelineInputError(f"{where}: {what} must be a string, got {type(text).__name__} ({text!r:.60})")
        if not text.strip():
            raise PipelineInputError(f"{describe_input(index, text)}: {what} is empty")
        return text

    def preprocess(self, item: Any, index: int, **params: Any) -> list[Feature]:
        raise NotImplementedError

    def _forward(self, batch: dict[str, Tensor], features: list[Feature], **params: Any) -> dict[str, Tensor]:
        raise NotImplementedError

    def postprocess(self, item: Any, features: list[Feature], **params: Any) -> Any:
        raise NotImplementedError

    # -- shared helpers ----------------------------------------------------------------------------
    def _encode(
        self, text: str, text_pair: str | None, index: int | None, *, display: Any = None, **kwargs: Any
    ) -> Any:
        """Tokenize one text (or pair); too long -> error or truncation with a warning, as chosen.

        ``kwargs`` go to the tokenizer (``return_offsets_mapping=True``...).
        """
        enc = self.tokenizer(text, text_pair, **kwargs) if text_pair is not None else self.tokenizer(text, **kwargs)
        n = len(enc["input_ids"])
        if n <= self.max_length:
            return enc
        label = describe_input(index, display if display is not None else text)
        if self.truncation == "error":
            raise InputTooLongError(
                f"{label}: {n} tokens, more than the model's limit of {self.max_length}; "
                f"shorten it or pass truncation='warn' (--truncate) to cut it"
            )
        logger.warning("%s: %d tokens, truncated to %d", label, n, self.max_length)
        kwargs.update(truncation=True, max_length=self.max_length)
        return self.tokenizer(text, text_pair, **kwargs) if text_pair is not None else self.tokenizer(text, **kwargs)

    def _collate(self, features: Sequence[Feature]) -> dict[str, Tensor]:
        """Right-pad a batch: ``input_ids``/``token_type_ids``/``attention_mask`` [B, T]."""
        rows = [{"input_ids": f.input_ids, "token_type_ids": f.token_type_ids, "attention_mask": [1] * len(f)}
                for f in features]
        return pad(rows, {"input_ids": int(self.tokenizer.pad_token_id), "token_type_ids": 0, "attention_mask": 0})

    def _predict(self, features: Sequence[Feature], batch_size: int, progress: bool, sort: bool, **params: Any) -> None:
        """Padded forward passes over ``features`` (longest first with ``sort``); each gets ``feature.outputs``."""
        group = list(features)

        def forward(batch: dict[str, Tensor], indices: list[int]) -> dict[str, Tensor]:
            return self._forward(batch, [group[i] for i in indices], **params)

        def keep(out: dict[str, Tensor], batch: Any, indices: list[int]) -> None:
            # Scores leave the device as float32 (bf16/fp16 models included); ids keep their type.
            out = {k: (v.float() if v.is_floating_point() else v).cpu() for k, v in out.items()}
            for row, i in enumerate(indices):
                group[i].outputs = {k: v[row] for k, v in out.items()}

        order = length_order([len(f) for f in group])[0] if sort else None
        predict(self.model, group, keep, batch_size=batch_size, collate=self._collate, order=order,
                device=self.device, inference_mode=True, progress=progress, desc=self.task, forward=forward)

    def forward_batch(self, group: Sequence[Feature], **params: Any) -> None:
        """One padded forward pass over ``group``; each feature gets its outputs in ``feature.outputs``.

        The unit a server's dynamic batcher calls with features of several requests.
        """
        self._predict(group, max(len(group), 1), False, False, **params)

    def _run(self, features: list[Feature], **params: Any) -> None:
        """Run the model over all features; each gets its outputs in ``feature.outputs``."""
        show = self.progress if self.progress is not None else len(features) >= PROGRESS_MIN_FEATURES
        self._predict(features, self.batch_size, bool(show), True, **params)

    # -- entry point -------------------------------------------------------------------------------
    def __call__(self, inputs: Any, **params: Any) -> Any:
        """Run the pipeline on one input or a list of inputs (results in input order)."""
        single, items = self._check_inputs(inputs)
        results = self._execute(items, single, params)
        return results[0] if single else results

    def run_many(self, inputs: Sequence[Any], **params: Any) -> list[Any]:
        """Like ``__call__`` on a list, but always one result per input (no unwrapping of 1-lists)."""
        if isinstance(inputs, (str, dict)) or not isinstance(inputs, Sequence):
            raise PipelineInputError(f"run_many takes a list of inputs, got {type(inputs).__name__}")
        _, items = self._check_inputs(list(inputs))
        return self._execute(items, False, params)

    def _execute(self, items: list[Any], single: bool, params: dict[str, Any]) -> list[Any]:
        job = self.plan(items, single, params)
        if job.features:
            self._run(job.features, **job.forward_params)
        return self.finish(job)

    def plan(self, items: list[Any], single: bool, params: dict[str, Any]) -> Job:
        """Validate ``params`` and preprocess checked ``items`` into features (no model call yet).

        ``plan`` -> ``forward_batch`` over ``job.features`` (in any grouping) -> ``finish``
        is ``__call__`` split in three, so that a server can batch features of many requests.
        """
        merged = dict(self.defaults)
        merged.update(self._sanitize(**params))
        pre, fwd, post = self._split_params(merged)
        per_input: list[list[Feature]] = []
        for index, item in enumerate(items):
            feats = self.preprocess(item, None if single else index, **pre)
            for f in feats:
                f.index = index
            per_input.append(feats)
        return Job(items, per_input, fwd, post)

    def finish(self, job: Job) -> list[Any]:
        """Postprocess a job whose features all carry their outputs: one result per item."""
        return [self.postprocess(item, feats, **job.postprocess_params) for item, feats in zip(job.items, job.per_input)]

    # Which parameter goes to which step; subclasses list their names.
    preprocess_params: tuple[str, ...] = ()
    forward_params: tuple[str, ...] = ()

    def _split_params(self, params: dict[str, Any]) -> tuple[dict, dict, dict]:
        pre = {k: v for k, v in params.items() if k in self.preprocess_params}
        fwd = {k: v for k, v in params.items() if k in self.forward_params}
        post = {k: v for k, v in params.items() if k not in pre and k not in fwd}
        return pre, fwd, post

    def __repr__(self) -> str:
        return f"{type(self).__name__}(model={self.model_name!r}, device={str(self.device)!r}, batch_size={self.batch_size})"
