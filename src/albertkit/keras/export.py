"""TensorFlow SavedModel export for TF Serving and ``tf.saved_model.load``.

The ``serving_default`` signature takes ``input_ids``, ``attention_mask`` and ``token_type_ids``
([B, T] int32, the dtype of ``AlbertTokenizer(..., return_tensors="tf")``) and returns the model's
output dict (``logits``, ``last_hidden_state``...). ALBERT's shared block is one set of variables
in Keras, so the SavedModel stores it once: the variables file is the size of the unique weights.

    >>> export_savedmodel(AlbertForSequenceClassification.from_pretrained("out/sst2"), "serving/sst2/1")  # doctest: +SKIP
    >>> serve = tf.saved_model.load("serving/sst2/1").signatures["serving_default"]  # doctest: +SKIP
    >>> serve(**tokenizer(["great film"], return_tensors="tf"))["logits"]  # doctest: +SKIP
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import keras

from albertkit.keras.models import INPUT_NAMES
from albertkit.utils import atomic_folder

__all__ = ["export_savedmodel"]


def export_savedmodel(model: Any, folder: str | os.PathLike, *, dtype: str = "int32") -> Path:
    """Write ``model`` as a SavedModel folder (replaced as a whole, atomically) and return its path."""
    if keras.backend.backend() != "tensorflow":
        raise RuntimeError(f"SavedModel export needs the TensorFlow backend of Keras (KERAS_BACKEND=tensorflow), not {keras.backend.backend()!r}")
    import tensorflow as tf

    if dtype not in ("int32", "int64"):
        raise ValueError(f"dtype must be 'int32' or 'int64', got {dtype!r}")
    if not model.built:
        model.build_weights()
    specs = [tf.TensorSpec([None, None], dtype, name=name) for name in INPUT_NAMES]

    def serve(input_ids: Any, attention_mask: Any, token_type_ids: Any) -> dict[str, Any]:
        return model({"input_ids": input_ids, "attention_mask": attention_mask, "token_type_ids": token_type_ids}, training=False)

    # A plain tf.Module that tracks the TensorFlow variables under the Keras ones, each once. Keras'
    # ExportArchive tracks both the Keras variables and the tf.Variables its endpoint captures, and
    # so writes every weight twice.
    module = tf.Module()
    module.weights = [variable.value for variable in model.weights]
    # Only the concrete function is saved (as the signature): tracing the model once is the slow part.
    signature = tf.function(serve, input_signature=specs, autograph=False).get_concrete_function()
    folder = Path(folder)
    old = {p.name for p in folder.iterdir()} if folder.is_dir() else set()
    with atomic_folder(folder, exclude=old) as tmp:  # nothing of an older export survives
        tf.saved_model.save(module, str(tmp), signatures={"serving_default": signature})
    return folder
