"""The task models of :mod:`albertkit.modeling` in Keras 3: a backbone under ``albert`` plus one head.

Outputs are dicts named as the PyTorch outputs; checkpoint keys follow the attribute paths
(``predictions.dense``, ``sop_classifier.classifier``, ``classifier``, ``qa_outputs``).

    >>> model = AlbertForQuestionAnswering.from_pretrained("albert-mini-en")  # doctest: +SKIP
    >>> out = model(tokenizer(["Who?"], ["Albert did."], return_tensors="tf"))  # doctest: +SKIP
    >>> out["start_logits"].shape  # doctest: +SKIP
    TensorShape([1, 8])
"""

from __future__ import annotations

from typing import Any

import keras
from keras import ops

from albertkit.config import AlbertConfig
from albertkit.keras.layers import ACT2FN, dense, layer_norm
from albertkit.keras.models import AlbertModel, AlbertPreTrainedModel
from albertkit.layout import MODEL_CLASSES

__all__ = [
    "AlbertForPreTraining",
    "AlbertForMaskedLM",
    "AlbertForSequenceClassification",
    "AlbertForTokenClassification",
    "AlbertForQuestionAnswering",
    "TASK_CLASSES",
]


class AlbertMLMHead(keras.layers.Layer):
    """H -> E -> activation -> LayerNorm -> decoder tied to the word embeddings (+ ``predictions.bias``)."""

    def __init__(self, config: AlbertConfig, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.dense = dense(config.embedding_size, config, "dense")
        self.LayerNorm = layer_norm(config)
        self.activation = ACT2FN[config.hidden_act]
        self.bias = self.add_weight(shape=(config.vocab_size,), initializer="zeros", name="bias")
        self.sizes = (config.hidden_size, config.embedding_size)

    def build(self, input_shape: Any = None) -> None:
        self.dense.build((None, None, self.sizes[0]))
        self.LayerNorm.build((None, None, self.sizes[1]))

    def call(self, hidden_states: Any, word_embeddings: Any) -> Any:
        x = self.LayerNorm(self.activation(self.dense(hidden_states)))  # [B, T, E]
        return ops.matmul(x, ops.transpose(word_embeddings)) + self.bias  # [B, T, V]


class AlbertSOPHead(keras.layers.Layer):
    """Sentence-order prediction: dropout, then Dense H -> num_labels on the pooled output (HF sizes it so)."""

    def __init__(self, config: AlbertConfig, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.dropout = keras.layers.Dropout(config.classifier_dropout_prob)
        self.classifier = dense(config.num_labels, config, "classifier")
        self.hidden_size = config.hidden_size

    def build(self, input_shape: Any = None) -> None:
        self.classifier.build((None, self.hidden_size))

    def call(self, pooled: Any, training: bool = False) -> Any:
        return self.classifier(self.dropout(pooled, training=training))


class _TaskModel(AlbertPreTrainedModel):
    """A backbone under ``albert`` plus a head; subclasses say whether the backbone has a pooler."""

    pooled = True

    def __init__(self, config: AlbertConfig, **kwargs: Any) -> None:
        super().__init__(config, **kwargs)
        self.albert = AlbertModel(config, add_pooling_layer=self.pooled, name="albert")

    def build(self, input_shape: Any = None) -> None:
        """Create every variable from the config (no trace of ``call``); the input shape is not needed."""
        self.albert.build()
        for layer in self.head_layers():
            layer.build((None, None, self.config.hidden_size))

    def head_layers(self) -> list[keras.layers.Layer]:
        """The layers on top of the backbone (built on [..., H] inputs)."""
        raise NotImplementedError

    def _backbone(self, inputs: Any, attention_mask: Any, token_type_ids: Any, training: bool) -> dict[str, Any]:
        return self.albert(inputs, attention_mask=attention_mask, token_type_ids=token_type_ids, training=training)


class AlbertForPreTraining(_TaskModel):
    """Backbone + MLM head + SOP head: ``prediction_logits`` [B, T, V], ``sop_logits`` [B, 2]."""

    def __init__(self, config: AlbertConfig, **kwargs: Any) -> None:
        super().__init__(config, **kwargs)
        self.predictions = AlbertMLMHead(config, name="predictions")
        self.sop_classifier = AlbertSOPHead(config, name="sop_classifier")

    def head_layers(self) -> list[keras.layers.Layer]:
        return [self.predictions, self.sop_classifier]

    def call(self, inputs: Any, attention_mask: Any = None, token_type_ids: Any = None, training: bool = False) -> dict[str, Any]:
        out = self._backbone(inputs, attention_mask, token_type_ids, training)
        word_embeddings = self.albert.embeddings.word_embeddings.embeddings
        return {
            "prediction_logits": self.predictions(out["last_hidden_state"], word_embeddings),
            "sop_logits": self.sop_classifier(out["pooler_output"], training=training),
        }


class AlbertForMaskedLM(_TaskModel):
    """Backbone (no pooler, as HF) + MLM head: ``logits`` [B, T, V]."""

    pooled = False

    def __init__(self, config: AlbertConfig, **kwargs: Any) -> None:
        super().__init__(config, **kwargs)
        self.predictions = AlbertMLMHead(config, name="predictions")

    def head_layers(self) -> list[keras.layers.Layer]:
        return [self.predictions]

    def call(self, inputs: Any, attention_mask: Any = None, token_type_ids: Any = None, training: bool = False) -> dict[str, Any]:
        out = self._backbone(inputs, attention_mask, token_type_ids, training)
        return {"logits": self.predictions(out["last_hidden_state"], self.albert.embeddings.word_embeddings.embeddings)}


class _Classifier(_TaskModel):
    """Backbone output ``features`` -> dropout -> ``classifier``: ``logits``."""

    features = "pooler_output"

    def __init__(self, config: AlbertConfig, **kwargs: Any) -> None:
        super().__init__(config, **kwargs)
        self.dropout = keras.layers.Dropout(config.classifier_dropout_prob)
        self.classifier = dense(config.num_labels, config, "classifier")

    def head_layers(self) -> list[keras.layers.Layer]:
        return [self.classifier]

    def call(self, inputs: Any, attention_mask: Any = None, token_type_ids: Any = None, training: bool = False) -> dict[str, Any]:
        out = self._backbone(inputs, attention_mask, token_type_ids, training)
        return {"logits": self.classifier(self.dropout(out[self.features], training=training))}


class AlbertForSequenceClassification(_Classifier):
    """Pooled output -> dropout -> ``classifier``: ``logits`` [B, num_labels]."""


class AlbertForTokenClassification(_Classifier):
    """Sequence output -> dropout -> ``classifier`` per token: ``logits`` [B, T, num_labels]."""

    pooled = False
    features = "last_hidden_state"


class AlbertForQuestionAnswering(_TaskModel):
    """Extractive QA: ``qa_outputs`` Dense(H, 2) -> ``start_logits`` and ``end_logits`` [B, T]."""

    pooled = False

    def __init__(self, config: AlbertConfig, **kwargs: Any) -> None:
        super().__init__(config, **kwargs)
        self.qa_outputs = dense(2, config, "qa_outputs")

    def head_layers(self) -> list[keras.layers.Layer]:
        return [self.qa_outputs]

    def call(self, inputs: Any, attention_mask: Any = None, token_type_ids: Any = None, training: bool = False) -> dict[str, Any]:
        out = self._backbone(inputs, attention_mask, token_type_ids, training)
        logits = self.qa_outputs(out["last_hidden_state"])  # [B, T, 2]
        return {"start_logits": logits[..., 0], "end_logits": logits[..., 1]}


# Class name -> class for the classes of albertkit.layout.MODEL_CLASSES written in Keras (all but multiple choice).
TASK_CLASSES: dict[str, type[AlbertPreTrainedModel]] = {name: globals()[name] for name in MODEL_CLASSES if name in globals()}
