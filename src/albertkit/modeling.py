"""The ALBERT network, top to bottom as in the paper (Lan et al. 2019).

embeddings (V x E, factorized) -> mapping E -> H -> L virtual layers drawn from G shared groups of K
blocks -> pooler -> task heads. Module attribute paths are the Hugging Face state-dict keys, so a hub
checkpoint loads with ``load_state_dict`` and a short, written-down list of key edits
(:mod:`albertkit.checkpoint`).

Shapes: B batch, T tokens, E embedding size, H hidden size, A heads, D = H / A, V vocab, P predicted
positions, C choices.

    >>> from albertkit import AlbertConfig, AlbertForMaskedLM
    >>> model = AlbertForMaskedLM(AlbertConfig.from_name("tiny"))
    >>> out = model(torch.tensor([[2, 10, 4, 11, 3]]))
    >>> out.logits.shape
    torch.Size([1, 5, 100])
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, fields
from typing import Any, Callable, Iterator

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.utils.checkpoint import checkpoint

from albertkit.checkpoint import ResolvedCheckpoint, load_pretrained, save_pretrained
from albertkit.config import AlbertConfig
from albertkit.layout import MODEL_CLASSES as _FACTS
from albertkit.quantization import quantize_int8

__all__ = [
    "AlbertPreTrainedModel",
    "AlbertModel",
    "AlbertForPreTraining",
    "AlbertForMaskedLM",
    "AlbertForSequenceClassification",
    "AlbertForTokenClassification",
    "AlbertForQuestionAnswering",
    "AlbertForMultipleChoice",
    "ModelOutput",
    "BaseModelOutputWithPooling",
    "AlbertForPreTrainingOutput",
    "MaskedLMOutput",
    "SequenceClassifierOutput",
    "TokenClassifierOutput",
    "QuestionAnsweringModelOutput",
    "MultipleChoiceModelOutput",
    "MODEL_CLASSES",
]


# --------------------------------------------------------------------------- outputs
@dataclass
class ModelOutput:
    """Base of the output dataclasses: attribute access, ``out["name"]`` and ``out[0]`` like HF."""

    def to_tuple(self) -> tuple[Any, ...]:
        return tuple(getattr(self, f.name) for f in fields(self) if getattr(self, f.name) is not None)

    def __getitem__(self, key: int | str) -> Any:
        if isinstance(key, str):
            return getattr(self, key)
        return self.to_tuple()[key]

    def keys(self) -> list[str]:
        return [f.name for f in fields(self) if getattr(self, f.name) is not None]


@dataclass
class BaseModelOutputWithPooling(ModelOutput):
    last_hidden_state: Tensor | None = None  # [B, T, H]
    pooler_output: Tensor | None = None  # [B, H]
    hidden_states: tuple[Tensor, ...] | None = None  # L + 1 x [B, T, H]
    attentions: tuple[Tensor, ...] | None = None  # L x [B, A, T, T]


@dataclass
class AlbertForPreTrainingOutput(ModelOutput):
    loss: Tensor | None = None
    prediction_logits: Tensor | None = None  # [B, T, V] or [B, P, V]
    sop_logits: Tensor | None = None  # [B, 2]
    masked_lm_loss: Tensor | None = None
    sentence_order_loss: Tensor | None = None
    hidden_states: tuple[Tensor, ...] | None = None
    attentions: tuple[Tensor, ...] | None = None


@dataclass
class MaskedLMOutput(ModelOutput):
    loss: Tensor | None = None
    logits: Tensor | None = None  # [B, T, V] or [B, P, V]
    hidden_states: tuple[Tensor, ...] | None = None
    attentions: tuple[Tensor, ...] | None = None


@dataclass
class SequenceClassifierOutput(ModelOutput):
    loss: Tensor | None = None
    logits: Tensor | None = None  # [B, num_labels]
    hidden_states: tuple[Tensor, ...] | None = None
    attentions: tuple[Tensor, ...] | None = None


@dataclass
class TokenClassifierOutput(ModelOutput):
    loss: Tensor | None = None
    logits: Tensor | None = None  # [B, T, num_labels]
    hidden_states: tuple[Tensor, ...] | None = None
    attentions: tuple[Tensor, ...] | None = None


@dataclass
class QuestionAnsweringModelOutput(ModelOutput):
    loss: Tensor | None = None
    start_logits: Tensor | None = None  # [B, T]
    end_logits: Tensor | None = None  # [B, T]
    hidden_states: tuple[Tensor, ...] | None = None
    attentions: tuple[Tensor, ...] | None = None


@dataclass
class MultipleChoiceModelOutput(ModelOutput):
    loss: Tensor | None = None
    logits: Tensor | None = None  # [B, C]
    hidden_states: tuple[Tensor, ...] | None = None
    attentions: tuple[Tensor, ...] | None = None


# ----------------------------------------------------------------------- activations
def gelu_new(x: Tensor) -> Tensor:
    """The tanh approximation of GELU that Google trained ALBERT with."""
    return F.gelu(x, approximate="tanh")


def _quick_gelu(x: Tensor) -> Tensor:
    return x * torch.sigmoid(1.702 * x)


ACT2FN: dict[str, Callable[[Tensor], Tensor]] = {
    "gelu_new": gelu_new,
    "gelu_pytorch_tanh": gelu_new,
    "gelu_fast": gelu_new,  # same function, a different formula for it
    "gelu": F.gelu,
    "gelu_python": F.gelu,
    "relu": F.relu,
    "silu": F.silu,
    "swish": F.silu,
    "tanh": torch.tanh,
    "quick_gelu": _quick_gelu,
    "mish": F.mish,
    "linear": lambda x: x,
}


def _tracing() -> bool:
    """Inside ONNX export / torch.jit.trace / torch.compile: no data-dependent branches."""
    return torch.jit.is_tracing() or torch.compiler.is_compiling() or torch.onnx.is_in_onnx_export()


def _extended_attention_mask(attention_mask: Tensor | None, dtype: torch.dtype) -> Tensor | None:
    """[B, T] 1/0 mask -> additive [B, 1, 1, T] mask (0 keep, dtype-min drop), or None when nothing is masked.

    Built once per forward and shared by every layer (ALBERT runs the same block L times).
    """
    if attention_mask is None:
        return None
    if attention_mask.dim() == 2:
        # No padding: let SDPA take its unmasked fast path. Not while tracing (ONNX export, compile):
        # the branch would be frozen into the graph for every later input.
        if not _tracing() and bool(attention_mask.all()):
            return None
        mask = attention_mask[:, None, None, :]
    elif attention_mask.dim() == 4:
        mask = attention_mask
    else:
        raise ValueError(f"attention_mask must be [B, T] or [B, 1, T, T], got shape {tuple(attention_mask.shape)}")
    if mask.dtype == torch.bool:
        keep = mask
    else:
        keep = mask > 0
    return torch.zeros(keep.shape, dtype=dtype, device=keep.device).masked_fill_(~keep, torch.finfo(dtype).min)


# ------------------------------------------------------------------------- backbone
class AlbertEmbeddings(nn.Module):
    """Word + position + token-type embeddings of width E (the factorized embedding), then LayerNorm."""

    def __init__(self, config: AlbertConfig) -> None:
        super().__init__()
        self.word_embeddings = nn.Embedding(config.vocab_size, config.embedding_size, padding_idx=config.pad_token_id)
        self.position_embeddings = nn.Embedding(config.max_position_embeddings, config.embedding_size)
        self.token_type_embeddings = nn.Embedding(config.type_vocab_size, config.embedding_size)
        self.LayerNorm = nn.LayerNorm(config.embedding_size, eps=config.layer_norm_eps)
        self.dropout = nn.Dropout(config.hidden_dropout_prob)

    def forward(
        self,
        input_ids: Tensor | None = None,
        token_type_ids: Tensor | None = None,
        position_ids: Tensor | None = None,
        inputs_embeds: Tensor | None = None,
    ) -> Tensor:
        if inputs_embeds is None:
            inputs_embeds = self.word_embeddings(input_ids)  # [B, T, E]
        seq_len = inputs_embeds.shape[1]
        if seq_len > self.position_embeddings.num_embeddings:
            raise ValueError(
                f"sequence length {seq_len} exceeds max_position_embeddings "
                f"({self.position_embeddings.num_embeddings}); truncate the input"
            )
        if position_ids is None:
            pos = self.position_embeddings.weight[:seq_len][None]  # [1, T, E], no index gather needed
        else:
            pos = self.position_embeddings(position_ids)
        if token_type_ids is None:
            tok = self.token_type_embeddings.weight[0]  # type 0 everywhere
        else:
            tok = self.token_type_embeddings(token_type_ids)
        return self.dropout(self.LayerNorm(inputs_embeds + tok + pos))


class AlbertAttention(nn.Module):
    """Multi-head self-attention with the post-LayerNorm residual (``attention.LayerNorm``)."""

    def __init__(self, config: AlbertConfig) -> None:
        super().__init__()
        self.num_attention_heads = config.num_attention_heads
        self.attention_head_size = config.head_dim
        self.query = nn.Linear(config.hidden_size, config.hidden_size)
        self.key = nn.Linear(config.hidden_size, config.hidden_size)
        self.value = nn.Linear(config.hidden_size, config.hidden_size)
        self.dense = nn.Linear(config.hidden_size, config.hidden_size)
        self.LayerNorm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.attention_dropout = nn.Dropout(config.attention_probs_dropout_prob)
        self.output_dropout = nn.Dropout(config.hidden_dropout_prob)

    def split_heads(self, x: Tensor) -> Tensor:
        """[B, T, H] -> [B, A, T, D]."""
        B, T, _ = x.shape
        return x.view(B, T, self.num_attention_heads, self.attention_head_size).transpose(1, 2)

    def attend(self, q: Tensor, k: Tensor, v: Tensor, attention_mask: Tensor | None, output_attentions: bool) -> tuple[Tensor, Tensor | None]:
        """softmax(q k^T / sqrt(D) + mask) v over [B, A, T, D] heads -> context [B, T, H] (and the probabilities)."""
        B, A, T, D = q.shape
        probs = None
        if output_attentions:
            scores = torch.matmul(q, k.transpose(-1, -2)) / math.sqrt(D)  # [B, A, T, T]
            if attention_mask is not None:
                scores = scores + attention_mask
            probs = scores.softmax(dim=-1)
            context = torch.matmul(self.attention_dropout(probs), v)
        else:
            mask = attention_mask.to(q.dtype) if attention_mask is not None else None
            dropout_p = self.attention_dropout.p if self.training else 0.0
            context = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, dropout_p=dropout_p)
        return context.transpose(1, 2).reshape(B, T, A * D), probs

    def forward(
        self, hidden_states: Tensor, attention_mask: Tensor | None = None, output_attentions: bool = False
    ) -> tuple[Tensor, Tensor | None]:
        q = self.split_heads(self.query(hidden_states))
        k = self.split_heads(self.key(hidden_states))
        v = self.split_heads(self.value(hidden_states))
        context, probs = self.attend(q, k, v, attention_mask, output_attentions)
        out = self.output_dropout(self.dense(context))
        return self.LayerNorm(hidden_states + out), probs


class AlbertLayer(nn.Module):
    """One transformer block: attention, then FFN H -> I -> H with ``full_layer_layer_norm``.

    Dropout on the FFN output follows Google's code (HF's PyTorch port omits it); it only
    matters when hidden_dropout_prob > 0 (the v1 configs).
    """

    def __init__(self, config: AlbertConfig) -> None:
        super().__init__()
        self.full_layer_layer_norm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.attention = AlbertAttention(config)
        self.ffn = nn.Linear(config.hidden_size, config.intermediate_size)
        self.ffn_output = nn.Linear(config.intermediate_size, config.hidden_size)
        self.hidden_act = config.hidden_act
        self.activation = ACT2FN[config.hidden_act]
        self.dropout = nn.Dropout(config.hidden_dropout_prob)

    def forward(
        self, hidden_states: Tensor, attention_mask: Tensor | None = None, output_attentions: bool = False
    ) -> tuple[Tensor, Tensor | None]:
        attention_output, probs = self.attention(hidden_states, attention_mask, output_attentions)
        ffn_output = self.dropout(self.ffn_output(self.activation(self.ffn(attention_output))))
        return self.full_layer_layer_norm(ffn_output + attention_output), probs


class AlbertLayerGroup(nn.Module):
    """K blocks run in order each time the group is used."""

    def __init__(self, config: AlbertConfig) -> None:
        super().__init__()
        self.albert_layers = nn.ModuleList([AlbertLayer(config) for _ in range(config.inner_group_num)])


class AlbertTransformer(nn.Module):
    """Projection E -> H, then L virtual layers; layer i uses group floor(i * G / L)."""

    def __init__(self, config: AlbertConfig) -> None:
        super().__init__()
        self.config = config
        self.embedding_hidden_mapping_in = nn.Linear(config.embedding_size, config.hidden_size)
        self.albert_layer_groups = nn.ModuleList([AlbertLayerGroup(config) for _ in range(config.num_hidden_groups)])
        self.gradient_checkpointing = False

    def blocks(self) -> Iterator[AlbertLayer]:
        """The block run at each step, in order: L * K applications of shared parameters."""
        cfg = self.config
        for i in range(cfg.num_hidden_layers):
            group = self.albert_layer_groups[i * cfg.num_hidden_groups // cfg.num_hidden_layers]
            yield from group.albert_layers

    def forward(
        self,
        hidden_states: Tensor,
        attention_mask: Tensor | None = None,
        output_hidden_states: bool = False,
        output_attentions: bool = False,
    ) -> tuple[Tensor, tuple[Tensor, ...] | None, tuple[Tensor, ...] | None]:
        hidden_states = self.embedding_hidden_mapping_in(hidden_states)  # [B, T, H]
        all_hidden = [hidden_states] if output_hidden_states else None
        all_attn: list[Tensor] | None = [] if output_attentions else None
        for layer in self.blocks():
            if self.gradient_checkpointing and self.training and torch.is_grad_enabled():
                hidden_states, probs = checkpoint(layer, hidden_states, attention_mask, output_attentions, use_reentrant=False)
            else:
                hidden_states, probs = layer(hidden_states, attention_mask, output_attentions)
            if all_attn is not None:
                all_attn.append(probs)
            if all_hidden is not None:
                all_hidden.append(hidden_states)
        return (
            hidden_states,
            tuple(all_hidden) if all_hidden is not None else None,
            tuple(all_attn) if all_attn is not None else None,
        )


# ------------------------------------------------------------------------ base class
class AlbertPreTrainedModel(nn.Module):
    """Shared machinery: weight init, checkpoint loading/saving, dtype/device, gradient checkpointing.

    Per-class facts are class attributes: ``output_class`` (set by each class) and, from the
    torch-free table :data:`albertkit.layout.MODEL_CLASSES` that the Keras classes read too,
    ``head_prefixes`` (checkpoint keys of the head), ``head_description``, ``export_inputs`` / ``export_outputs`` (the
    ONNX graph's extra inputs and its outputs).
    """

    base_model_prefix = "albert"
    head_prefixes: tuple[str, ...] = ()
    head_description = ""
    export_inputs: tuple[str, ...] = ()
    export_outputs: tuple[str, ...] = ()
    output_class: type[ModelOutput] = ModelOutput
    choice_inputs = False  # inputs are [B, C, T] (multiple choice), not [B, T]

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        facts = _FACTS.get(cls.__name__)
        if facts is not None:  # a user's subclass keeps its parent's facts
            cls.head_prefixes = facts.head_prefixes
            cls.head_description = facts.head_description
            cls.export_inputs = facts.export_inputs
            cls.export_outputs = facts.export_outputs

    def __init__(self, config: AlbertConfig) -> None:
        super().__init__()
        if not isinstance(config, AlbertConfig):
            raise TypeError(f"config must be an AlbertConfig, got {type(config).__name__}")
        self.config = config

    # -- init
    def init_weights(self) -> None:
        """Normal(0, initializer_range) weights, zero biases, LayerNorm 1/0 (as HF); ties the decoder."""
        self.apply(self._init_module)
        self.tie_weights()

    def _init_module(self, module: nn.Module) -> None:
        std = self.config.initializer_range
        if isinstance(module, nn.Linear):
            nn.init.normal_(module.weight, mean=0.0, std=std)
            if module.bias is not None:
                nn.init.zeros_(module.bias)
        elif isinstance(module, nn.Embedding):
            nn.init.normal_(module.weight, mean=0.0, std=std)
            if module.padding_idx is not None:
                with torch.no_grad():
                    module.weight[module.padding_idx].zero_()
        elif isinstance(module, nn.LayerNorm):
            nn.init.ones_(module.weight)
            nn.init.zeros_(module.bias)
        elif isinstance(module, AlbertMLMHead):
            nn.init.zeros_(module.bias)

    def tie_weights(self) -> None:
        """Share the MLM decoder with the word embeddings (and its bias with ``predictions.bias``)."""
        predictions = getattr(self, "predictions", None)
        if predictions is not None:
            predictions.decoder.weight = self.get_input_embeddings().weight
            predictions.decoder.bias = predictions.bias

    # -- accessors
    @property
    def backbone(self) -> "AlbertModel":
        return self if isinstance(self, AlbertModel) else getattr(self, self.base_model_prefix)

    def get_input_embeddings(self) -> nn.Embedding:
        return self.backbone.embeddings.word_embeddings

    @property
    def device(self) -> torch.device:
        return next(self.parameters()).device

    @property
    def dtype(self) -> torch.dtype:
        return next(self.parameters()).dtype

    def num_parameters(self, exclude_embeddings: bool = False) -> int:
        """Unique parameters (the tied decoder counted once)."""
        seen: set[int] = set()
        total = 0
        for name, p in self.named_parameters():
            if id(p) in seen:
                continue
            seen.add(id(p))
            if exclude_embeddings and "embeddings" in name:
                continue
            total += p.numel()
        return total

    def gradient_checkpointing_enable(self) -> None:
        """Recompute each block in the backward pass: activation memory O(1) in depth instead of O(L)."""
        self.backbone.encoder.gradient_checkpointing = True

    def gradient_checkpointing_disable(self) -> None:
        self.backbone.encoder.gradient_checkpointing = False

    # -- checkpoints (the key policy is in albertkit.checkpoint)
    @classmethod
    def from_pretrained(
        cls,
        name_or_path: str | os.PathLike | ResolvedCheckpoint,
        *,
        config: AlbertConfig | None = None,
        require_head: bool | str = False,
        dtype: torch.dtype | str | None = None,
        device: torch.device | str | None = None,
        quantize: str | None = None,
        **config_overrides: Any,
    ) -> "AlbertPreTrainedModel":
        """Load a Hugging Face layout folder, a hub name, or a :class:`~albertkit.checkpoint.ResolvedCheckpoint`.

        The one loading call of albertkit (pipelines, fine-tuning, export, serve, the CLI).
        ``require_head``: refuse a checkpoint without this class's trained head, instead of
        initialising one for fine-tuning; a string names the purpose in the error. ``dtype``
        (``"bfloat16"``, ``"auto"``: the checkpoint's), ``device``; ``quantize="int8"``: dynamic int8
        encoder Linears after loading (:func:`albertkit.fast.quantize_int8`). Other keywords
        override config fields (``num_labels=3``).

            >>> model = AlbertForMaskedLM.from_pretrained("albert-base-v2", require_head=True)  # doctest: +SKIP
        """
        if quantize not in (None, "int8"):
            raise ValueError(f"quantize must be None or 'int8', got {quantize!r} (bf16: pass dtype='bfloat16')")
        model = load_pretrained(
            cls, name_or_path, config=config, require_head=require_head, dtype=dtype, device=device, **config_overrides
        )
        return quantize_int8(model, inplace=True) if quantize == "int8" else model

    def save_pretrained(self, folder: str | os.PathLike, *, safe_serialization: bool = True) -> None:
        """Write ``config.json`` + ``model.safetensors`` that transformers loads, atomically."""
        save_pretrained(self, folder, safe_serialization=safe_serialization)


class AlbertModel(AlbertPreTrainedModel):
    """The backbone: sequence output [B, T, H] and pooled [CLS] output [B, H].

        >>> model = AlbertModel(AlbertConfig.from_name("tiny"))
        >>> out = model(torch.tensor([[2, 5, 6, 3]]), attention_mask=torch.tensor([[1, 1, 1, 1]]))
        >>> out.last_hidden_state.shape, out.pooler_output.shape
        (torch.Size([1, 4, 16]), torch.Size([1, 16]))
    """

    output_class = BaseModelOutputWithPooling

    def __init__(self, config: AlbertConfig, add_pooling_layer: bool = True) -> None:
        super().__init__(config)
        self.embeddings = AlbertEmbeddings(config)
        self.encoder = AlbertTransformer(config)
        self.pooler = nn.Linear(config.hidden_size, config.hidden_size) if add_pooling_layer else None
        self.pooler_activation = nn.Tanh() if add_pooling_layer else None
        self.init_weights()

    def forward(
        self,
        input_ids: Tensor | None = None,
        attention_mask: Tensor | None = None,
        token_type_ids: Tensor | None = None,
        position_ids: Tensor | None = None,
        inputs_embeds: Tensor | None = None,
        output_hidden_states: bool = False,
        output_attentions: bool = False,
        **unused: Any,
    ) -> BaseModelOutputWithPooling:
        if (input_ids is None) == (inputs_embeds is None):
            raise ValueError("pass exactly one of input_ids or inputs_embeds")
        if input_ids is not None and input_ids.dim() != 2:
            raise ValueError(f"input_ids must be [B, T], got shape {tuple(input_ids.shape)}")
        _reject_unknown(unused)
        embedding_output = self.embeddings(input_ids, token_type_ids, position_ids, inputs_embeds)  # [B, T, E]
        mask = _extended_attention_mask(attention_mask, embedding_output.dtype)
        sequence_output, hidden_states, attentions = self.encoder(
            embedding_output, mask, output_hidden_states=output_hidden_states, output_attentions=output_attentions
        )
        pooled = None
        if self.pooler is not None:
            pooled = self.pooler_activation(self.pooler(sequence_output[:, 0]))
        return BaseModelOutputWithPooling(sequence_output, pooled, hidden_states, attentions)


def _reject_unknown(unused: dict[str, Any]) -> None:
    # HF callers pass return_dict=True; accept it and nothing else silently.
    unused.pop("return_dict", None)
    if unused:
        raise TypeError(f"unexpected forward arguments: {', '.join(sorted(unused))}")


# ---------------------------------------------------------------------------- heads
class AlbertMLMHead(nn.Module):
    """H -> E -> activation -> LayerNorm -> tied decoder E -> V (+ ``predictions.bias``)."""

    def __init__(self, config: AlbertConfig) -> None:
        super().__init__()
        self.LayerNorm = nn.LayerNorm(config.embedding_size, eps=config.layer_norm_eps)
        self.bias = nn.Parameter(torch.zeros(config.vocab_size))
        self.dense = nn.Linear(config.hidden_size, config.embedding_size)
        self.decoder = nn.Linear(config.embedding_size, config.vocab_size)
        self.activation = ACT2FN[config.hidden_act]

    def forward(self, hidden_states: Tensor) -> Tensor:
        return self.decoder(self.LayerNorm(self.activation(self.dense(hidden_states))))


class AlbertSOPHead(nn.Module):
    """Sentence-order prediction: dropout, then Linear H -> 2 on the pooled output."""

    def __init__(self, config: AlbertConfig) -> None:
        super().__init__()
        self.dropout = nn.Dropout(config.classifier_dropout_prob)
        # SOP is binary, but HF sizes this layer by num_labels (2 by default); follow it so that
        # every HF checkpoint loads.
        self.classifier = nn.Linear(config.hidden_size, config.num_labels)

    def forward(self, pooled_output: Tensor) -> Tensor:
        return self.classifier(self.dropout(pooled_output))


def _gather_positions(sequence_output: Tensor, positions: Tensor) -> Tensor:
    """[B, T, H] at [B, P] positions -> [B, P, H]."""
    if positions.dim() != 2 or positions.shape[0] != sequence_output.shape[0]:
        raise ValueError(f"masked_lm_positions must be [B, P], got shape {tuple(positions.shape)}")
    index = positions.clamp(min=0).unsqueeze(-1).expand(-1, -1, sequence_output.shape[-1])
    return sequence_output.gather(1, index)


def _mlm_loss(logits: Tensor, labels: Tensor) -> Tensor:
    return F.cross_entropy(logits.reshape(-1, logits.shape[-1]).float(), labels.reshape(-1), ignore_index=-100)


class AlbertForPreTraining(AlbertPreTrainedModel):
    """Backbone + MLM head + SOP head; loss = MLM CE + SOP CE.

    With ``masked_lm_positions`` [B, P] the MLM head runs only there (as Google's pretraining does),
    and ``masked_lm_labels`` [B, P] (-100 for padding) replace the [B, T] ``labels``.
    """

    output_class = AlbertForPreTrainingOutput

    def __init__(self, config: AlbertConfig) -> None:
        super().__init__(config)
        self.albert = AlbertModel(config)
        self.predictions = AlbertMLMHead(config)
        self.sop_classifier = AlbertSOPHead(config)
        self.init_weights()

    def forward(
        self,
        input_ids: Tensor | None = None,
        attention_mask: Tensor | None = None,
        token_type_ids: Tensor | None = None,
        position_ids: Tensor | None = None,
        inputs_embeds: Tensor | None = None,
        labels: Tensor | None = None,
        sentence_order_label: Tensor | None = None,
        masked_lm_positions: Tensor | None = None,
        masked_lm_labels: Tensor | None = None,
        output_hidden_states: bool = False,
        output_attentions: bool = False,
        **unused: Any,
    ) -> AlbertForPreTrainingOutput:
        _reject_unknown(unused)
        out = self.albert(
            input_ids, attention_mask, token_type_ids, position_ids, inputs_embeds, output_hidden_states, output_attentions
        )
        seq = out.last_hidden_state
        if masked_lm_positions is not None:
            seq = _gather_positions(seq, masked_lm_positions)
            labels = masked_lm_labels if masked_lm_labels is not None else labels
        prediction_logits = self.predictions(seq)
        sop_logits = self.sop_classifier(out.pooler_output)
        mlm_loss = sop_loss = loss = None
        if labels is not None:
            mlm_loss = _mlm_loss(prediction_logits, labels)
        if sentence_order_label is not None:
            sop_loss = F.cross_entropy(sop_logits.float(), sentence_order_label.reshape(-1))
        if mlm_loss is not None and sop_loss is not None:
            loss = mlm_loss + sop_loss
        return AlbertForPreTrainingOutput(
            loss, prediction_logits, sop_logits, mlm_loss, sop_loss, out.hidden_states, out.attentions
        )


class AlbertForMaskedLM(AlbertPreTrainedModel):
    """Backbone (no pooler, as HF) + MLM head. ``masked_lm_positions`` [B, P] limits the head to P positions."""

    output_class = MaskedLMOutput

    def __init__(self, config: AlbertConfig) -> None:
        super().__init__(config)
        self.albert = AlbertModel(config, add_pooling_layer=False)
        self.predictions = AlbertMLMHead(config)
        self.init_weights()

    def forward(
        self,
        input_ids: Tensor | None = None,
        attention_mask: Tensor | None = None,
        token_type_ids: Tensor | None = None,
        position_ids: Tensor | None = None,
        inputs_embeds: Tensor | None = None,
        labels: Tensor | None = None,
        masked_lm_positions: Tensor | None = None,
        masked_lm_labels: Tensor | None = None,
        output_hidden_states: bool = False,
        output_attentions: bool = False,
        **unused: Any,
    ) -> MaskedLMOutput:
        _reject_unknown(unused)
        out = self.albert(
            input_ids, attention_mask, token_type_ids, position_ids, inputs_embeds, output_hidden_states, output_attentions
        )
        seq = out.last_hidden_state
        if masked_lm_positions is not None:
            seq = _gather_positions(seq, masked_lm_positions)
            labels = masked_lm_labels if masked_lm_labels is not None else labels
        logits = self.predictions(seq)
        loss = _mlm_loss(logits, labels) if labels is not None else None
        return MaskedLMOutput(loss, logits, out.hidden_states, out.attentions)


class AlbertForSequenceClassification(AlbertPreTrainedModel):
    """Pooled output -> dropout -> ``classifier``; regression / single-label / multi-label as HF decides."""

    output_class = SequenceClassifierOutput

    def __init__(self, config: AlbertConfig) -> None:
        super().__init__(config)
        self.num_labels = config.num_labels
        self.albert = AlbertModel(config)
        self.dropout = nn.Dropout(config.classifier_dropout_prob)
        self.classifier = nn.Linear(config.hidden_size, config.num_labels)
        self.init_weights()

    def forward(
        self,
        input_ids: Tensor | None = None,
        attention_mask: Tensor | None = None,
        token_type_ids: Tensor | None = None,
        position_ids: Tensor | None = None,
        inputs_embeds: Tensor | None = None,
        labels: Tensor | None = None,
        output_hidden_states: bool = False,
        output_attentions: bool = False,
        **unused: Any,
    ) -> SequenceClassifierOutput:
        _reject_unknown(unused)
        out = self.albert(
            input_ids, attention_mask, token_type_ids, position_ids, inputs_embeds, output_hidden_states, output_attentions
        )
        logits = self.classifier(self.dropout(out.pooler_output))
        loss = None
        if labels is not None:
            if self.config.problem_type is None:
                if self.num_labels == 1:
                    self.config.problem_type = "regression"
                elif labels.dtype in (torch.long, torch.int):
                    self.config.problem_type = "single_label_classification"
                else:
                    self.config.problem_type = "multi_label_classification"
            if self.config.problem_type == "regression":
                if self.num_labels == 1:
                    loss = F.mse_loss(logits.squeeze().float(), labels.squeeze().float())
                else:
                    loss = F.mse_loss(logits.float(), labels.float())
            elif self.config.problem_type == "single_label_classification":
                loss = F.cross_entropy(logits.view(-1, self.num_labels).float(), labels.view(-1))
            else:
                loss = F.binary_cross_entropy_with_logits(logits.float(), labels.float())
        return SequenceClassifierOutput(loss, logits, out.hidden_states, out.attentions)


class AlbertForTokenClassification(AlbertPreTrainedModel):
    """Sequence output -> dropout -> ``classifier`` per token; CE with -100 ignored."""

    output_class = TokenClassifierOutput

    def __init__(self, config: AlbertConfig) -> None:
        super().__init__(config)
        self.num_labels = config.num_labels
        self.albert = AlbertModel(config, add_pooling_layer=False)
        p = config.classifier_dropout_prob if config.classifier_dropout_prob is not None else config.hidden_dropout_prob
        self.dropout = nn.Dropout(p)
        self.classifier = nn.Linear(config.hidden_size, config.num_labels)
        self.init_weights()

    def forward(
        self,
        input_ids: Tensor | None = None,
        attention_mask: Tensor | None = None,
        token_type_ids: Tensor | None = None,
        position_ids: Tensor | None = None,
        inputs_embeds: Tensor | None = None,
        labels: Tensor | None = None,
        output_hidden_states: bool = False,
        output_attentions: bool = False,
        **unused: Any,
    ) -> TokenClassifierOutput:
        _reject_unknown(unused)
        out = self.albert(
            input_ids, attention_mask, token_type_ids, position_ids, inputs_embeds, output_hidden_states, output_attentions
        )
        logits = self.classifier(self.dropout(out.last_hidden_state))
        loss = None
        if labels is not None:
            loss = F.cross_entropy(logits.view(-1, self.num_labels).float(), labels.view(-1), ignore_index=-100)
        return TokenClassifierOutput(loss, logits, out.hidden_states, out.attentions)


class AlbertForQuestionAnswering(AlbertPreTrainedModel):
    """Extractive QA: ``qa_outputs`` Linear(H, 2) -> start/end logits; loss = mean of two CEs."""

    output_class = QuestionAnsweringModelOutput

    def __init__(self, config: AlbertConfig) -> None:
        super().__init__(config)
        self.num_labels = config.num_labels
        self.albert = AlbertModel(config, add_pooling_layer=False)
        self.qa_outputs = nn.Linear(config.hidden_size, 2)
        self.init_weights()

    def forward(
        self,
        input_ids: Tensor | None = None,
        attention_mask: Tensor | None = None,
        token_type_ids: Tensor | None = None,
        position_ids: Tensor | None = None,
        inputs_embeds: Tensor | None = None,
        start_positions: Tensor | None = None,
        end_positions: Tensor | None = None,
        output_hidden_states: bool = False,
        output_attentions: bool = False,
        **unused: Any,
    ) -> QuestionAnsweringModelOutput:
        _reject_unknown(unused)
        out = self.albert(
            input_ids, attention_mask, token_type_ids, position_ids, inputs_embeds, output_hidden_states, output_attentions
        )
        start_logits, end_logits = self.qa_outputs(out.last_hidden_state).unbind(-1)  # [B, T] each
        loss = None
        if start_positions is not None and end_positions is not None:
            # Positions outside the window (e.g. an answer cut off by truncation) are ignored.
            ignored = start_logits.shape[1]
            start = start_positions.reshape(-1).clamp(0, ignored)
            end = end_positions.reshape(-1).clamp(0, ignored)
            loss = (
                F.cross_entropy(start_logits.float(), start, ignore_index=ignored)
                + F.cross_entropy(end_logits.float(), end, ignore_index=ignored)
            ) / 2
        return QuestionAnsweringModelOutput(
            loss, start_logits.contiguous(), end_logits.contiguous(), out.hidden_states, out.attentions
        )


class AlbertForMultipleChoice(AlbertPreTrainedModel):
    """Inputs [B, C, T] -> [B*C, T] -> pooled -> dropout -> ``classifier`` Linear(H, 1) -> logits [B, C]."""

    output_class = MultipleChoiceModelOutput
    choice_inputs = True

    def __init__(self, config: AlbertConfig) -> None:
        super().__init__(config)
        self.albert = AlbertModel(config)
        self.dropout = nn.Dropout(config.classifier_dropout_prob)
        self.classifier = nn.Linear(config.hidden_size, 1)
        self.init_weights()

    def forward(
        self,
        input_ids: Tensor | None = None,
        attention_mask: Tensor | None = None,
        token_type_ids: Tensor | None = None,
        position_ids: Tensor | None = None,
        inputs_embeds: Tensor | None = None,
        labels: Tensor | None = None,
        output_hidden_states: bool = False,
        output_attentions: bool = False,
        **unused: Any,
    ) -> MultipleChoiceModelOutput:
        _reject_unknown(unused)
        ref = input_ids if input_ids is not None else inputs_embeds
        if ref is None or ref.dim() < 3:
            raise ValueError("multiple-choice inputs must be [B, C, T]")
        num_choices = ref.shape[1]

        def flat(x: Tensor | None) -> Tensor | None:
            return None if x is None else x.reshape(-1, *x.shape[2:])

        out = self.albert(
            flat(input_ids),
            flat(attention_mask),
            flat(token_type_ids),
            flat(position_ids),
            flat(inputs_embeds),
            output_hidden_states,
            output_attentions,
        )
        logits = self.classifier(self.dropout(out.pooler_output)).view(-1, num_choices)  # [B, C]
        loss = F.cross_entropy(logits.float(), labels.view(-1)) if labels is not None else None
        return MultipleChoiceModelOutput(loss, logits, out.hidden_states, out.attentions)


# Class name -> class, for every class of the table (an ONNX graph's metadata, a config's
# ``architectures``, the task table name classes by name).
MODEL_CLASSES: dict[str, type[AlbertPreTrainedModel]] = {name: globals()[name] for name in _FACTS}
TASK_CLASSES = MODEL_CLASSES  # its former name
