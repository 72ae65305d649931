"""Facts every layer shares, torch-free: the Hugging Face folder, each model class, each task.

No torch or keras import here: :mod:`albertkit.checkpoint` and :mod:`albertkit.keras` both read
these facts, the model classes of both frameworks take their class attributes from
:data:`MODEL_CLASSES`, and the command line builds its choices from :data:`TASKS` without loading
torch.

    >>> SAFE_WEIGHTS_NAME, WEIGHTS_NAME
    ('model.safetensors', 'pytorch_model.bin')
    >>> TASKS["fill-mask"].model_class, MODEL_CLASSES["AlbertForMaskedLM"].head_prefixes
    ('AlbertForMaskedLM', ('predictions.',))
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable, Mapping, TypeVar

__all__ = [
    "CheckpointError",
    "SAFE_WEIGHTS_NAME",
    "WEIGHTS_NAME",
    "TOKENIZER_FILES",
    "TIED_KEYS",
    "ModelClass",
    "MODEL_CLASSES",
    "HEAD_PREFIXES_ALL",
    "Task",
    "TASKS",
    "TASK_TO_CLASS",
    "EXPORT_TASKS",
    "FAST_MODES",
    "adapt_keys",
    "is_head_key",
    "fit_error",
]

SAFE_WEIGHTS_NAME = "model.safetensors"
WEIGHTS_NAME = "pytorch_model.bin"
# A folder holds a tokenizer when it has one of these (the SentencePiece model, or transformers 5's file).
TOKENIZER_FILES = ("spiece.model", "tokenizer.json")
# The MLM decoder is the word embedding matrix and predictions.bias (key policy 3 of albertkit.checkpoint).
TIED_KEYS = ("predictions.decoder.weight", "predictions.decoder.bias")
# The fast paths of albertkit.fast.optimize (`--fast` of the pipeline commands).
FAST_MODES = ("fp32", "bf16", "int8", "onnx", "onnx-int8", "auto")


class CheckpointError(ValueError, RuntimeError):
    """A checkpoint that cannot be read or does not fit the model: the message names the file and
    lists the offending keys. A ValueError (bad input, reported by the CLI as one line) and, as
    before, a RuntimeError."""


# ------------------------------------------------------------------------------ model classes
@dataclass(frozen=True)
class ModelClass:
    """What the rest of albertkit needs to know about one model class, PyTorch and Keras alike.

    ``head_prefixes``: checkpoint keys of its head (key policy 4); ``head_description``: the head in
    words, for error messages. ``export_inputs``: graph inputs beyond input_ids / attention_mask /
    token_type_ids; ``export_outputs``: the output fields an exported graph returns, in order.
    """

    head_prefixes: tuple[str, ...]
    head_description: str
    export_outputs: tuple[str, ...]
    export_inputs: tuple[str, ...] = ()


MODEL_CLASSES: dict[str, ModelClass] = {
    "AlbertModel": ModelClass((), "", ("last_hidden_state", "pooler_output")),
    "AlbertForPreTraining": ModelClass(
        ("predictions.", "sop_classifier."), "masked-LM and sentence-order heads", ("prediction_logits", "sop_logits"), ("masked_lm_positions",)
    ),
    "AlbertForMaskedLM": ModelClass(("predictions.",), "masked-language-model head", ("logits",), ("masked_lm_positions",)),
    "AlbertForSequenceClassification": ModelClass(("classifier.",), "sequence-classification head", ("logits",)),
    "AlbertForTokenClassification": ModelClass(("classifier.",), "token-classification head", ("logits",)),
    "AlbertForQuestionAnswering": ModelClass(("qa_outputs.",), "question-answering head", ("start_logits", "end_logits")),
    "AlbertForMultipleChoice": ModelClass(("classifier.",), "multiple-choice head", ("logits",)),
}
# Every head's key prefix in a checkpoint (key policy 4).
HEAD_PREFIXES_ALL: tuple[str, ...] = tuple(dict.fromkeys(p for c in MODEL_CLASSES.values() for p in c.head_prefixes))


# ---------------------------------------------------------------------------------------- tasks
@dataclass(frozen=True)
class Task:
    """One task name: the model class that runs it, its pipeline (``"module:Class"``, loaded on first
    use) and whether ``albertkit export --task`` takes it."""

    model_class: str
    pipeline: str | None = None
    export: bool = False


_P = "albertkit.pipelines."
# The one task table: pipelines (albertkit.pipelines.TASKS), ONNX / Keras export (TASK_TO_CLASS).
TASKS: dict[str, Task] = {
    "base": Task("AlbertModel", export=True),
    "features": Task("AlbertModel", export=True),
    "pretraining": Task("AlbertForPreTraining", export=True),
    "fill-mask": Task("AlbertForMaskedLM", _P + "fill_mask:FillMaskPipeline", export=True),
    "feature-extraction": Task("AlbertModel", _P + "features:FeatureExtractionPipeline"),
    "sentence-embedding": Task("AlbertModel", _P + "features:SentenceEmbeddingPipeline"),
    "text-classification": Task("AlbertForSequenceClassification", _P + "text_classification:TextClassificationPipeline", export=True),
    "token-classification": Task("AlbertForTokenClassification", _P + "token_classification:TokenClassificationPipeline", export=True),
    "question-answering": Task("AlbertForQuestionAnswering", _P + "question_answering:QuestionAnsweringPipeline", export=True),
    "multiple-choice": Task("AlbertForMultipleChoice", _P + "multiple_choice:MultipleChoicePipeline", export=True),
}
# `albertkit export --task` names -> model class name (ONNX export and the Keras SavedModel export).
TASK_TO_CLASS: dict[str, str] = {name: task.model_class for name, task in TASKS.items() if task.export}
EXPORT_TASKS = tuple(TASK_TO_CLASS)


# ----------------------------------------------------------------------------------- key policy
V = TypeVar("V")


def adapt_keys(
    state: Mapping[str, V], *, prefix: str, is_base: bool, has_pooler: bool, head_prefixes: tuple[str, ...]
) -> tuple[dict[str, V], list[str]]:
    """Apply policies 1-4 of :mod:`albertkit.checkpoint` to checkpoint keys, for any framework.

    ``prefix``: the backbone's attribute plus a dot (``"albert."``); ``is_base``: the model is the
    backbone itself; ``head_prefixes``: the model class's own heads. Returns the renamed entries and
    the head keys dropped (policy 4).

        >>> adapt_keys({"embeddings.w": 1, "classifier.weight": 2}, prefix="albert.", is_base=False,
        ...            has_pooler=True, head_prefixes=("predictions.",))
        ({'albert.embeddings.w': 1}, ['classifier.weight'])
    """
    has_prefix = any(k.startswith(prefix) for k in state)
    out: dict[str, V] = {}
    dropped: list[str] = []
    for key, value in state.items():
        if key.endswith("embeddings.position_ids") or key in TIED_KEYS:
            continue  # policies 2 and 3
        if not has_pooler and key.startswith(("pooler.", prefix + "pooler.")):
            dropped.append(key)  # policy 4: a class without a pooler
            continue
        if is_base:
            if key.startswith(prefix):
                key = key[len(prefix) :]  # policy 1: a task checkpoint into the base model
            elif has_prefix:  # policy 4: a head of a task checkpoint
                dropped.append(key)
                continue
        elif key.startswith(HEAD_PREFIXES_ALL):
            if not key.startswith(head_prefixes):
                dropped.append(key)  # policy 4: another class's head
                continue
        elif not key.startswith(prefix):
            key = prefix + key  # policy 1: a base checkpoint into a task model
        out[key] = value
    return out, dropped


def is_head_key(key: str, head_prefixes: tuple[str, ...]) -> bool:
    """A weight policy 5 may initialise: the class's head, or a pooler (new when a checkpoint without
    one, AlbertForMaskedLM or QA, loads into a class with one)."""
    return key.startswith(head_prefixes) or key.endswith(("pooler.weight", "pooler.bias"))


def fit_error(weights: object, class_name: str, missing: Iterable[str], unexpected: Iterable[str]) -> CheckpointError | None:
    """The error for keys that no policy explains (None when there are none): both lists, 20 keys each."""
    missing, unexpected = sorted(missing), sorted(unexpected)
    parts = []
    if missing:
        parts.append(f"missing {len(missing)} weight(s): {', '.join(missing[:20])}")
    if unexpected:
        parts.append(f"unexpected {len(unexpected)} weight(s): {', '.join(unexpected[:20])}")
    return CheckpointError(f"{weights} does not fit {class_name}: " + "; ".join(parts)) if parts else None
