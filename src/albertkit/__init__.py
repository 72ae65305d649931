"""albertkit: ALBERT (A Lite BERT) end to end in PyTorch.

    >>> from albertkit import AlbertConfig, AlbertModel
    >>> model = AlbertModel(AlbertConfig.from_name("tiny"))
"""

from __future__ import annotations

from typing import Any

from albertkit.config import AlbertConfig, ConfigError
from albertkit.hub import ModelNotFoundError

__version__ = "0.1.0"

# Heavy modules (torch, sentencepiece) load on first use, so `import albertkit` stays cheap.
_LAZY = {
    "AlbertModel": "albertkit.modeling",
    "AlbertPreTrainedModel": "albertkit.modeling",
    "AlbertForPreTraining": "albertkit.modeling",
    "AlbertForMaskedLM": "albertkit.modeling",
    "AlbertForSequenceClassification": "albertkit.modeling",
    "AlbertForTokenClassification": "albertkit.modeling",
    "AlbertForQuestionAnswering": "albertkit.modeling",
    "AlbertForMultipleChoice": "albertkit.modeling",
    "CheckpointError": "albertkit.checkpoint",
    "AlbertTokenizer": "albertkit.tokenization",
    "train_tokenizer": "albertkit.tokenization",
    "pipeline": "albertkit.pipelines",
}

__all__ = ["AlbertConfig", "ConfigError", "ModelNotFoundError", "__version__", *_LAZY]


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'albertkit' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
