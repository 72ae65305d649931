"""ALBERT in Keras 3: the model base class and the backbone (task heads: :mod:`albertkit.keras.heads`).

Each model is called like a Hugging Face TF model, with the tokenizer's output or with tensors, and
returns a dict of tensors named like the PyTorch outputs (so ``model.fit`` and SavedModel
signatures can use them as they are):

    >>> tok = AlbertTokenizer.from_pretrained("albert-mini-en")  # doctest: +SKIP
    >>> model = AlbertModel.from_pretrained("albert-mini-en")  # doctest: +SKIP
    >>> out = model(tok(["Hello world"], return_tensors="tf"))  # doctest: +SKIP
    >>> out["last_hidden_state"].shape, out["pooler_output"].shape  # doctest: +SKIP
    (TensorShape([1, 4, 256]), TensorShape([1, 256]))

Weights load from and save to the Hugging Face folder layout (:mod:`albertkit.keras.checkpoint`).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

import keras
from keras import ops

from albertkit.config import AlbertConfig
from albertkit.keras.layers import AlbertEmbeddings, AlbertTransformer, additive_mask, dense
from albertkit.layout import MODEL_CLASSES

__all__ = ["AlbertPreTrainedModel", "AlbertModel", "INPUT_NAMES"]

INPUT_NAMES = ("input_ids", "attention_mask", "token_type_ids")


def _unpack(inputs: Any, attention_mask: Any, token_type_ids: Any) -> tuple[Any, Any, Any]:
    """A tokenizer dict or an [B, T] id tensor (+ optional mask / types) -> three int tensors."""
    if isinstance(inputs, Mapping):
        unknown = sorted(set(inputs) - set(INPUT_NAMES))
        if unknown:
            raise ValueError(f"unexpected model inputs: {', '.join(unknown)} (expected {', '.join(INPUT_NAMES)})")
        if "input_ids" not in inputs:
            raise ValueError("the inputs dict has no 'input_ids'")
        attention_mask = inputs.get("attention_mask", attention_mask)
        token_type_ids = inputs.get("token_type_ids", token_type_ids)
        inputs = inputs["input_ids"]
    input_ids = ops.convert_to_tensor(inputs)
    if len(input_ids.shape) != 2:
        raise ValueError(f"input_ids must be [B, T], got shape {tuple(input_ids.shape)}")
    attention_mask = ops.ones_like(input_ids) if attention_mask is None else ops.convert_to_tensor(attention_mask)
    token_type_ids = ops.zeros_like(input_ids) if token_type_ids is None else ops.convert_to_tensor(token_type_ids)
    return input_ids, attention_mask, token_type_ids


class AlbertPreTrainedModel(keras.Model):
    """Shared machinery: the config, HF-folder loading/saving, Keras (de)serialisation."""

    base_model_prefix = "albert"
    # Keys of a checkpoint that belong to this class's head: albertkit.layout.MODEL_CLASSES, as for PyTorch.
    head_prefixes: tuple[str, ...] = ()

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        facts = MODEL_CLASSES.get(cls.__name__)
        if facts is not None:
            cls.head_prefixes = facts.head_prefixes

    def __init__(self, config: AlbertConfig, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        if not isinstance(config, AlbertConfig):
            raise TypeError(f"config must be an AlbertConfig, got {type(config).__name__}")
        self.config = config

    def __call__(self, inputs: Any = None, *args: Any, **kwargs: Any) -> Any:
        # Keras flattens only plain dicts; the tokenizer's BatchEncoding is a dict subclass.
        if isinstance(inputs, Mapping) and type(inputs) is not dict:
            inputs = dict(inputs)
        return super().__call__(inputs, *args, **kwargs)

    @property
    def _default_save_signature(self) -> None:
        # Keras' TF backend would trace ``call`` on a float tensor of unknown shape for a default
        # signature when the model is saved; ids need int [B, T], so export_savedmodel writes the signature.
        return None

    @property
    def backbone(self) -> "AlbertModel":
        return self if isinstance(self, AlbertModel) else getattr(self, self.base_model_prefix)

    def build_weights(self) -> "AlbertPreTrainedModel":
        """Build unless built, and return the model (``from_pretrained`` assigns into the built variables)."""
        if not self.built:
            self.build(None)
        return self

    def get_config(self) -> dict[str, Any]:
        return {"name": self.name, "trainable": self.trainable, "config": self.config.to_dict()}

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> "AlbertPreTrainedModel":
        config = dict(config)
        return cls(AlbertConfig.from_dict(config.pop("config")), **config)

    @classmethod
    def from_pretrained(cls, name_or_path: str | os.PathLike, *, config: AlbertConfig | None = None, **config_overrides: Any) -> Any:
        """Load a Hugging Face layout folder or hub name (safetensors read with numpy; no torch needed).

            >>> model = AlbertForSequenceClassification.from_pretrained("albert-mini-en", num_labels=2)  # doctest: +SKIP
        """
        from albertkit.keras.checkpoint import load_pretrained

        return load_pretrained(cls, name_or_path, config=config, **config_overrides)

    def save_pretrained(self, folder: str | os.PathLike) -> None:
        """Write ``config.json`` + ``model.safetensors`` that albertkit (PyTorch) and transformers load, atomically."""
        from albertkit.keras.checkpoint import save_pretrained

        save_pretrained(self, folder)


class AlbertModel(AlbertPreTrainedModel):
    """The backbone: ``last_hidden_state`` [B, T, H] and ``pooler_output`` [B, H] (tanh of the [CLS] projection)."""

    def __init__(self, config: AlbertConfig, add_pooling_layer: bool = True, **kwargs: Any) -> None:
        super().__init__(config, **kwargs)
        self.embeddings = AlbertEmbeddings(config, name="embeddings")
        self.encoder = AlbertTransformer(config, name="encoder")
        self.pooler = dense(config.hidden_size, config, "pooler", activation="tanh") if add_pooling_layer else None

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "add_pooling_layer": self.pooler is not None}

    def build(self, input_shape: Any = None) -> None:
        self.embeddings.build()
        self.encoder.build()
        if self.pooler is not None:
            self.pooler.build((None, self.config.hidden_size))

    def call(self, inputs: Any, attention_mask: Any = None, token_type_ids: Any = None, training: bool = False) -> dict[str, Any]:
        input_ids, attention_mask, token_type_ids = _unpack(inputs, attention_mask, token_type_ids)
        seq_len = input_ids.shape[1]
        if seq_len is not None and seq_len > self.config.max_position_embeddings:
            raise ValueError(
                f"sequence length {seq_len} exceeds max_position_embeddings ({self.config.max_position_embeddings}); truncate the input"
            )
        embedding_output = self.embeddings(input_ids, token_type_ids, training=training)  # [B, T, E]
        sequence_output = self.encoder(embedding_output, additive_mask(attention_mask), training=training)  # [B, T, H]
        out = {"last_hidden_state": sequence_output}
        if self.pooler is not None:
            out["pooler_output"] = self.pooler(sequence_output[:, 0])  # [B, H]
        return out
