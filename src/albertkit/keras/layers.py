"""The ALBERT backbone as Keras 3 layers, written with ``keras.ops`` only (any Keras backend).

embeddings (V x E, factorized) -> mapping E -> H -> L virtual layers drawn from G shared groups of K
blocks, exactly as :mod:`albertkit.modeling`. Attribute names are the Hugging Face state-dict names
(``encoder.albert_layer_groups.0.albert_layers.0.attention.query``), so the checkpoint keys follow
from the attribute paths (:func:`albertkit.keras.checkpoint.hf_variables`). Each layer builds its
sublayers from the config in ``build``: left to Keras, the first call traces every nested layer
symbolically, which costs seconds even for a tiny model.

Shapes: B batch, T tokens, E embedding size, H hidden size, A heads, D = H / A.

    >>> emb = AlbertEmbeddings(AlbertConfig.from_name("tiny"))
    >>> emb(np.array([[2, 5, 3]]), np.zeros((1, 3), "int32")).shape
    (1, 3, 8)
"""

from __future__ import annotations

import math
from typing import Any, Callable

import keras
from keras import ops

from albertkit.config import AlbertConfig

__all__ = ["ACT2FN", "AlbertEmbeddings", "AlbertAttention", "AlbertLayer", "AlbertLayerGroup", "AlbertTransformer"]


def _quick_gelu(x: Any) -> Any:
    return x * ops.sigmoid(1.702 * x)


def _mish(x: Any) -> Any:
    return x * ops.tanh(ops.softplus(x))


# Every hidden_act of config.ACTIVATIONS; "gelu_new" is the tanh approximation Google trained with.
ACT2FN: dict[str, Callable[[Any], Any]] = {
    "gelu_new": lambda x: ops.gelu(x, approximate=True),
    "gelu_pytorch_tanh": lambda x: ops.gelu(x, approximate=True),
    "gelu_fast": lambda x: ops.gelu(x, approximate=True),
    "gelu": lambda x: ops.gelu(x, approximate=False),
    "gelu_python": lambda x: ops.gelu(x, approximate=False),
    "relu": ops.relu,
    "silu": ops.silu,
    "swish": ops.silu,
    "tanh": ops.tanh,
    "quick_gelu": _quick_gelu,
    "mish": _mish,
    "linear": lambda x: x,
}


def dense(units: int, config: AlbertConfig, name: str, activation: str | None = None) -> keras.layers.Dense:
    """A Linear layer initialised as Hugging Face does (normal(0, initializer_range), zero bias)."""
    init = keras.initializers.RandomNormal(stddev=config.initializer_range)
    return keras.layers.Dense(units, activation=activation, kernel_initializer=init, name=name)


def layer_norm(config: AlbertConfig, name: str = "LayerNorm") -> keras.layers.LayerNormalization:
    return keras.layers.LayerNormalization(epsilon=config.layer_norm_eps, name=name)


# What albertkit.modeling adds at padded keys (torch.finfo(float32).min): exp() of it is exactly 0.
_FLOAT32_MIN = -3.4028234663852886e38


def additive_mask(attention_mask: Any) -> Any:
    """[B, T] 1/0 mask -> [B, 1, 1, T] additive float32 mask (0 keep, float32-min drop), shared by every layer."""
    keep = ops.cast(attention_mask, "bool")[:, None, None, :]
    return ops.cast(ops.where(keep, 0.0, _FLOAT32_MIN), "float32")


class AlbertEmbeddings(keras.layers.Layer):
    """Word + position + token-type embeddings of width E (the factorized embedding), then LayerNorm."""

    def __init__(self, config: AlbertConfig, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        init = keras.initializers.RandomNormal(stddev=config.initializer_range)
        self.word_embeddings = keras.layers.Embedding(config.vocab_size, config.embedding_size, embeddings_initializer=init, name="word_embeddings")
        self.position_embeddings = keras.layers.Embedding(
            config.max_position_embeddings, config.embedding_size, embeddings_initializer=init, name="position_embeddings"
        )
        self.token_type_embeddings = keras.layers.Embedding(
            config.type_vocab_size, config.embedding_size, embeddings_initializer=init, name="token_type_embeddings"
        )
        self.LayerNorm = layer_norm(config)
        self.dropout = keras.layers.Dropout(config.hidden_dropout_prob)
        self.embedding_size = config.embedding_size

    def build(self, input_shape: Any = None) -> None:
        for table in (self.word_embeddings, self.position_embeddings, self.token_type_embeddings):
            table.build()
        self.LayerNorm.build((None, None, self.embedding_size))

    def call(self, input_ids: Any, token_type_ids: Any, training: bool = False) -> Any:
        seq_len = ops.shape(input_ids)[1]
        positions = self.position_embeddings(ops.arange(seq_len)[None, :])  # [1, T, E]
        x = self.word_embeddings(input_ids) + self.token_type_embeddings(token_type_ids) + positions  # [B, T, E]
        return self.dropout(self.LayerNorm(x), training=training)


class AlbertAttention(keras.layers.Layer):
    """Multi-head self-attention with the post-LayerNorm residual (``attention.LayerNorm``)."""

    def __init__(self, config: AlbertConfig, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.num_heads = config.num_attention_heads
        self.head_dim = config.head_dim
        self.query = dense(config.hidden_size, config, "query")
        self.key = dense(config.hidden_size, config, "key")
        self.value = dense(config.hidden_size, config, "value")
        self.dense = dense(config.hidden_size, config, "dense")
        self.LayerNorm = layer_norm(config)
        self.attention_dropout = keras.layers.Dropout(config.attention_probs_dropout_prob)
        self.output_dropout = keras.layers.Dropout(config.hidden_dropout_prob)
        self.hidden_size = config.hidden_size

    def build(self, input_shape: Any = None) -> None:
        for layer in (self.query, self.key, self.value, self.dense, self.LayerNorm):
            layer.build((None, None, self.hidden_size))

    def _heads(self, x: Any) -> Any:
        # [B, T, H] -> [B, A, T, D]
        return ops.transpose(ops.reshape(x, (ops.shape(x)[0], -1, self.num_heads, self.head_dim)), (0, 2, 1, 3))

    def call(self, hidden_states: Any, mask: Any, training: bool = False) -> Any:
        q, k, v = (self._heads(proj(hidden_states)) for proj in (self.query, self.key, self.value))
        scores = ops.matmul(q, ops.transpose(k, (0, 1, 3, 2))) / math.sqrt(self.head_dim)
        scores = scores + ops.cast(mask, scores.dtype)  # [B, A, T, T]
        probs = self.attention_dropout(ops.softmax(scores, axis=-1), training=training)
        context = ops.transpose(ops.matmul(probs, v), (0, 2, 1, 3))  # [B, T, A, D]
        context = ops.reshape(context, ops.shape(hidden_states))  # [B, T, H]
        out = self.output_dropout(self.dense(context), training=training)
        return self.LayerNorm(hidden_states + out)


class AlbertLayer(keras.layers.Layer):
    """One transformer block: attention, then FFN H -> I -> H with ``full_layer_layer_norm``.

    Dropout on the FFN output follows Google's code and the PyTorch side of albertkit.
    """

    def __init__(self, config: AlbertConfig, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.full_layer_layer_norm = layer_norm(config, "full_layer_layer_norm")
        self.attention = AlbertAttention(config, name="attention")
        self.ffn = dense(config.intermediate_size, config, "ffn")
        self.ffn_output = dense(config.hidden_size, config, "ffn_output")
        self.activation = ACT2FN[config.hidden_act]
        self.dropout = keras.layers.Dropout(config.hidden_dropout_prob)
        self.hidden_size, self.intermediate_size = config.hidden_size, config.intermediate_size

    def build(self, input_shape: Any = None) -> None:
        hidden = (None, None, self.hidden_size)
        self.attention.build(hidden)
        self.ffn.build(hidden)
        self.ffn_output.build((None, None, self.intermediate_size))
        self.full_layer_layer_norm.build(hidden)

    def call(self, hidden_states: Any, mask: Any, training: bool = False) -> Any:
        attention_output = self.attention(hidden_states, mask, training=training)
        ffn_output = self.dropout(self.ffn_output(self.activation(self.ffn(attention_output))), training=training)
        return self.full_layer_layer_norm(ffn_output + attention_output)


class AlbertLayerGroup(keras.layers.Layer):
    """K blocks run in order each time the group is used."""

    def __init__(self, config: AlbertConfig, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.albert_layers = [AlbertLayer(config, name=f"albert_layers_{k}") for k in range(config.inner_group_num)]

    def build(self, input_shape: Any = None) -> None:
        for layer in self.albert_layers:
            layer.build()

    def call(self, hidden_states: Any, mask: Any, training: bool = False) -> Any:
        for layer in self.albert_layers:
            hidden_states = layer(hidden_states, mask, training=training)
        return hidden_states


class AlbertTransformer(keras.layers.Layer):
    """Projection E -> H, then L virtual layers; layer i runs group floor(i * G / L) (shared weights)."""

    def __init__(self, config: AlbertConfig, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.num_hidden_layers = config.num_hidden_layers
        self.num_hidden_groups = config.num_hidden_groups
        self.embedding_hidden_mapping_in = dense(config.hidden_size, config, "embedding_hidden_mapping_in")
        self.albert_layer_groups = [AlbertLayerGroup(config, name=f"albert_layer_groups_{g}") for g in range(config.num_hidden_groups)]
        self.embedding_size = config.embedding_size

    def build(self, input_shape: Any = None) -> None:
        self.embedding_hidden_mapping_in.build((None, None, self.embedding_size))
        for group in self.albert_layer_groups:
            group.build()

    def call(self, embeddings: Any, mask: Any, training: bool = False) -> Any:
        hidden_states = self.embedding_hidden_mapping_in(embeddings)  # [B, T, H]
        for i in range(self.num_hidden_layers):
            group = self.albert_layer_groups[i * self.num_hidden_groups // self.num_hidden_layers]
            hidden_states = group(hidden_states, mask, training=training)
        return hidden_states
