"""ALBERT configuration: the Hugging Face ``config.json`` keys as a validated dataclass.

No torch import here, so that reading a config is cheap.

    >>> cfg = AlbertConfig.from_name("albert-base-v2")
    >>> cfg.hidden_size, cfg.embedding_size, cfg.num_hidden_layers
    (768, 128, 12)
"""

from __future__ import annotations

import dataclasses
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = ["AlbertConfig", "ConfigError", "PRESETS", "ACTIVATIONS"]

CONFIG_NAME = "config.json"

# Every activation name a Hugging Face ALBERT config.json may carry.
ACTIVATIONS = (
    "gelu_new",
    "gelu_pytorch_tanh",
    "gelu_fast",
    "gelu",
    "gelu_python",
    "relu",
    "silu",
    "swish",
    "tanh",
    "quick_gelu",
    "mish",
    "linear",
)


class ConfigError(ValueError):
    """An invalid configuration value; the message names the field."""


@dataclass
class AlbertConfig:
    """Hyper-parameters of an ALBERT model, named exactly like Hugging Face's ``config.json``.

    Unknown keys read from a file are kept in :attr:`extra` and written back on save.

        >>> AlbertConfig(hidden_size=64, num_attention_heads=4, intermediate_size=128).head_dim
        16
    """

    vocab_size: int = 30000
    embedding_size: int = 128
    hidden_size: int = 4096
    num_hidden_layers: int = 12
    num_hidden_groups: int = 1
    num_attention_heads: int = 64
    intermediate_size: int = 16384
    inner_group_num: int = 1
    hidden_act: str = "gelu_new"
    hidden_dropout_prob: float = 0.0
    attention_probs_dropout_prob: float = 0.0
    max_position_embeddings: int = 512
    type_vocab_size: int = 2
    initializer_range: float = 0.02
    layer_norm_eps: float = 1e-12
    classifier_dropout_prob: float = 0.1
    pad_token_id: int = 0
    bos_token_id: int = 2
    eos_token_id: int = 3
    num_labels: int = 2
    id2label: dict[int, str] | None = None
    label2id: dict[str, int] | None = None
    problem_type: str | None = None
    model_type: str = "albert"
    architectures: list[str] | None = None
    torch_dtype: str | None = None
    extra: dict[str, Any] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        if self.id2label is not None:
            self.id2label = {int(k): str(v) for k, v in self.id2label.items()}
            self.num_labels = len(self.id2label)
        if self.label2id is not None:
            self.label2id = {str(k): int(v) for k, v in self.label2id.items()}
        if self.id2label is not None and self.label2id is None:
            self.label2id = {v: k for k, v in self.id2label.items()}
        self.validate()

    # ------------------------------------------------------------------ checks
    def validate(self) -> None:
        """Raise :class:`ConfigError` naming the first offending field."""
        positive = (
            "vocab_size",
            "embedding_size",
            "hidden_size",
            "num_hidden_layers",
            "num_hidden_groups",
            "num_attention_heads",
            "intermediate_size",
            "inner_group_num",
            "max_position_embeddings",
            "type_vocab_size",
        )
        for name in positive:
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
                raise ConfigError(f"{name} must be a positive integer, got {value!r}")
        for name in ("hidden_dropout_prob", "attention_probs_dropout_prob", "classifier_dropout_prob"):
            value = getattr(self, name)
            if value is None:
                continue
            if not isinstance(value, (int, float)) or not 0.0 <= value < 1.0:
                raise ConfigError(f"{name} must be in [0, 1), got {value!r}")
        if self.hidden_size % self.num_attention_heads:
            raise ConfigError(
                f"hidden_size ({self.hidden_size}) must be divisible by "
                f"num_attention_heads ({self.num_attention_heads})"
            )
        if self.num_hidden_layers % self.num_hidden_groups:
            raise ConfigError(
                f"num_hidden_layers ({self.num_hidden_layers}) must be divisible by "
                f"num_hidden_groups ({self.num_hidden_groups})"
            )
        if self.hidden_act not in ACTIVATIONS:
            raise ConfigError(f"hidden_act {self.hidden_act!r} is not one of {', '.join(ACTIVATIONS)}")
        if not isinstance(self.layer_norm_eps, (int, float)) or self.layer_norm_eps <= 0:
            raise ConfigError(f"layer_norm_eps must be positive, got {self.layer_norm_eps!r}")
        if not isinstance(self.initializer_range, (int, float)) or self.initializer_range < 0:
            raise ConfigError(f"initializer_range must be >= 0, got {self.initializer_range!r}")
        if isinstance(self.num_labels, bool) or not isinstance(self.num_labels, int) or self.num_labels <= 0:
            raise ConfigError(f"num_labels must be a positive integer, got {self.num_labels!r}")
        if self.problem_type not in (None, "regression", "single_label_classification", "multi_label_classification"):
            raise ConfigError(f"problem_type {self.problem_type!r} is not recognised")
        if not 0 <= self.pad_token_id < self.vocab_size:
            raise ConfigError(f"pad_token_id ({self.pad_token_id}) must be in [0, vocab_size)")

    # --------------------------------------------------------------- derived
    @property
    def head_dim(self) -> int:
        return self.hidden_size // self.num_attention_heads

    # ------------------------------------------------------------ (de)serialise
    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "AlbertConfig":
        """Build from a ``config.json`` dictionary; unknown keys go to :attr:`extra`."""
        known = {f.name for f in dataclasses.fields(cls)} - {"extra"}
        kwargs = {k: v for k, v in data.items() if k in known}
        extra = {k: v for k, v in data.items() if k not in known}
        try:
            return cls(**kwargs, extra=extra)
        except TypeError as exc:  # pragma: no cover - defensive
            raise ConfigError(str(exc)) from exc

    def to_dict(self) -> dict[str, Any]:
        """The ``config.json`` dictionary (unknown keys from the source included)."""
        out: dict[str, Any] = dict(self.extra)
        for f in dataclasses.fields(self):
            if f.name == "extra":
                continue
            value = getattr(self, f.name)
            if f.name in ("id2label",) and value is not None:
                value = {str(k): v for k, v in value.items()}
            if value is None and f.name in ("architectures", "torch_dtype", "problem_type", "id2label", "label2id"):
                continue
            out[f.name] = value
        return out

    @classmethod
    def from_json_file(cls, path: str | os.PathLike) -> "AlbertConfig":
        path = Path(path)
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise ConfigError(f"{path}: no such config file") from None
        except json.JSONDecodeError as exc:
            raise ConfigError(f"{path}: invalid JSON at line {exc.lineno} column {exc.colno}: {exc.msg}") from None
        if not isinstance(data, dict):
            raise ConfigError(f"{path}: expected a JSON object")
        try:
            return cls.from_dict(data)
        except ConfigError as exc:
            raise ConfigError(f"{path}: {exc}") from None

    def to_json_string(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=True) + "\n"

    def save_pretrained(self, folder: str | os.PathLike) -> Path:
        """Write ``config.json`` into ``folder`` atomically."""
        from albertkit.utils import atomic_write_text

        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        target = folder / CONFIG_NAME
        atomic_write_text(target, self.to_json_string())
        return target

    @classmethod
    def from_name(cls, name: str, **overrides: Any) -> "AlbertConfig":
        """A preset by name (``albert-base-v2``, ``albert/albert-large-v1``, ``tiny``...)."""
        key = name.split("/")[-1]
        if key not in PRESETS:
            raise ConfigError(f"unknown preset {name!r}; known: {', '.join(sorted(PRESETS))}")
        data = dict(PRESETS[key])
        data.update(overrides)
        return cls.from_dict(data)

    @classmethod
    def from_pretrained(cls, name_or_path: str | os.PathLike, **overrides: Any) -> "AlbertConfig":
        """Read ``config.json`` from a folder, a file, a hub name, or a preset name."""
        p = Path(name_or_path)
        if p.is_file():
            cfg = cls.from_json_file(p)
        elif p.is_dir():
            cfg = cls.from_json_file(p / CONFIG_NAME)
        else:
            from albertkit.hub import resolve_file

            cfg = cls.from_json_file(resolve_file(str(name_or_path), CONFIG_NAME))
        for k, v in overrides.items():
            setattr(cfg, k, v)
        cfg.validate()
        return cfg

    def replace(self, **changes: Any) -> "AlbertConfig":
        """A copy with some fields changed (validated)."""
        return dataclasses.replace(self, **changes)

    def with_overrides(self, overrides: dict[str, Any]) -> "AlbertConfig":
        """The config of a loaded checkpoint with the caller's field overrides, as a model's
        ``from_pretrained(name, num_labels=3)`` applies them: new labels drop the stored label names.

            >>> AlbertConfig.from_name("tiny", num_labels=2).with_overrides({"num_labels": 3}).num_labels
            3
        """
        if not overrides:
            return self
        data = self.to_dict()
        data.update(overrides)
        if "num_labels" in overrides and "id2label" not in overrides:
            data.pop("id2label", None)
            data.pop("label2id", None)
        return AlbertConfig.from_dict(data)


def _preset(
    hidden: int, layers: int, heads: int, inter: int, v2: bool, dropout: float | None = None
) -> dict[str, Any]:
    drop = (0.0 if v2 else 0.1) if dropout is None else dropout
    return {
        "vocab_size": 30000,
        "embedding_size": 128,
        "hidden_size": hidden,
        "num_hidden_layers": layers,
        "num_hidden_groups": 1,
        "num_attention_heads": heads,
        "intermediate_size": inter,
        "inner_group_num": 1,
        "hidden_act": "gelu_new" if v2 else "gelu",
        "hidden_dropout_prob": drop,
        "attention_probs_dropout_prob": drop,
        "max_position_embeddings": 512,
        "type_vocab_size": 2,
        "initializer_range": 0.02,
        "layer_norm_eps": 1e-12,
        "classifier_dropout_prob": 0.1,
        "pad_token_id": 0,
        "bos_token_id": 2,
        "eos_token_id": 3,
    }


# Values of the Hugging Face hub config.json files (ALBERT_REFERENCE.md section 1).
PRESETS: dict[str, dict[str, Any]] = {
    "albert-base-v1": _preset(768, 12, 12, 3072, v2=False),
    "albert-base-v2": _preset(768, 12, 12, 3072, v2=True),
    "albert-large-v1": _preset(1024, 24, 16, 4096, v2=False),
    "albert-large-v2": _preset(1024, 24, 16, 4096, v2=True),
    "albert-xlarge-v1": _preset(2048, 24, 16, 8192, v2=False),
    "albert-xlarge-v2": _preset(2048, 24, 16, 8192, v2=True),
    "albert-xxlarge-v1": _preset(4096, 12, 64, 16384, v2=False, dropout=0.0),
    "albert-xxlarge-v2": _preset(4096, 12, 64, 16384, v2=True),
    # Unit-test size: runs in milliseconds.
    "tiny": {
        "vocab_size": 100,
        "embedding_size": 8,
        "hidden_size": 16,
        "num_hidden_layers": 2,
        "num_hidden_groups": 1,
        "num_attention_heads": 2,
        "intermediate_size": 32,
        "inner_group_num": 1,
        "hidden_act": "gelu_new",
        "hidden_dropout_prob": 0.0,
        "attention_probs_dropout_prob": 0.0,
        "max_position_embeddings": 64,
        "type_vocab_size": 2,
        "initializer_range": 0.02,
        "layer_norm_eps": 1e-12,
        "classifier_dropout_prob": 0.1,
        "pad_token_id": 0,
        "bos_token_id": 2,
        "eos_token_id": 3,
    },
}
