"""Facts of the Hugging Face checkpoint folder that every loader shares (PyTorch and Keras).

No torch or keras import here: :mod:`albertkit.checkpoint` and :mod:`albertkit.keras` both read
these names, and neither framework needs the other to know them.

    >>> SAFE_WEIGHTS_NAME, WEIGHTS_NAME
    ('model.safetensors', 'pytorch_model.bin')
"""

from __future__ import annotations

__all__ = ["CheckpointError", "SAFE_WEIGHTS_NAME", "WEIGHTS_NAME", "TIED_KEYS", "HEAD_PREFIXES_ALL", "TASK_TO_CLASS"]

SAFE_WEIGHTS_NAME = "model.safetensors"
WEIGHTS_NAME = "pytorch_model.bin"
# The MLM decoder is the word embedding matrix and predictions.bias (key policy 3 of albertkit.checkpoint).
TIED_KEYS = ("predictions.decoder.weight", "predictions.decoder.bias")
# Every head's key prefix in a checkpoint (key policy 4).
HEAD_PREFIXES_ALL = ("predictions.", "sop_classifier.", "classifier.", "qa_outputs.")
# `albertkit export --task` names -> model class name (ONNX export and the Keras SavedModel export).
TASK_TO_CLASS = {
    "base": "AlbertModel",
    "features": "AlbertModel",
    "pretraining": "AlbertForPreTraining",
    "fill-mask": "AlbertForMaskedLM",
    "text-classification": "AlbertForSequenceClassification",
    "token-classification": "AlbertForTokenClassification",
    "question-answering": "AlbertForQuestionAnswering",
    "multiple-choice": "AlbertForMultipleChoice",
}


class CheckpointError(ValueError, RuntimeError):
    """A checkpoint that cannot be read or does not fit the model: the message names the file and
    lists the offending keys. A ValueError (bad input, reported by the CLI as one line) and, as
    before, a RuntimeError."""
