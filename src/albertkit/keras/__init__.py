"""ALBERT in Keras 3: the same configs and Hugging Face checkpoint folders as the PyTorch side.

Needs the optional extra ``pip install 'albertkit[tf]'`` (keras + tensorflow-cpu). The layers use
``keras.ops`` only; TensorFlow is the backend that is tested and that SavedModel export needs.

    >>> from albertkit import AlbertTokenizer
    >>> from albertkit.keras import AlbertModel
    >>> tokenizer = AlbertTokenizer.from_pretrained("albert-mini-en")  # doctest: +SKIP
    >>> model = AlbertModel.from_pretrained("albert-mini-en")  # doctest: +SKIP
    >>> output = model(tokenizer("Replace me by any text you'd like.", return_tensors="tf"))  # doctest: +SKIP

Nothing here is imported by ``import albertkit``; the names below load keras on first use.
"""

from __future__ import annotations

from typing import Any

_LAZY = {
    "AlbertPreTrainedModel": "albertkit.keras.models",
    "AlbertModel": "albertkit.keras.models",
    "AlbertForPreTraining": "albertkit.keras.heads",
    "AlbertForMaskedLM": "albertkit.keras.heads",
    "AlbertForSequenceClassification": "albertkit.keras.heads",
    "AlbertForTokenClassification": "albertkit.keras.heads",
    "AlbertForQuestionAnswering": "albertkit.keras.heads",
    "export_savedmodel": "albertkit.keras.export",
}

__all__ = list(_LAZY)

INSTALL_HINT = "albertkit.keras needs Keras 3 and TensorFlow: pip install 'albertkit[tf]'"


def require_keras() -> None:
    """Raise an ImportError with the install hint unless Keras 3 is importable."""
    try:
        import keras
    except ImportError as exc:
        raise ImportError(f"{INSTALL_HINT} ({exc})") from None
    if int(keras.__version__.split(".")[0]) < 3:
        raise ImportError(f"{INSTALL_HINT} (found keras {keras.__version__})")


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'albertkit.keras' has no attribute {name!r}")
    require_keras()
    import importlib

    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
