"""oneDNN's CPU kernels for ALBERT: a fused block for inference, GEMMs for training.

    >>> from albertkit.fused import fuse_cpu_layers
    >>> fuse_cpu_layers(model)   # what albertkit.fast.optimize(model) and the CPU Trainer do  # doctest: +SKIP

Training: :class:`OneDnnLinear` runs every fp32 ``nn.Linear``'s forward and input-gradient GEMMs
in oneDNN instead of MKL (``python bench/gemm_peak.py``: 1.2-1.7x at albert-base's shapes on an
AVX-512 EPYC), the same fp32 arithmetic.

Inference, why a fused block: profiling the eager forward on CPU shows that a third of the time of an ``F.linear`` is not
the GEMM: addmm first copies the broadcast bias into the output, then GELU and the residual add
each read and write the [B, T, I] / [B, T, H] activations once more. oneDNN's linear takes the
bias, the GELU and a residual add as epilogues of the GEMM, which saves those passes (about 1.5x on
the FFN in fp32, 1.9x in bf16 on an AVX512-BF16 CPU). Q, K and V run as one [3H, H] GEMM, and the
weights are concatenated (and, in bf16, reordered into oneDNN's blocked layout) once and cached:
ALBERT applies the same block L times per forward.

:class:`FusedAlbertLayer` subclasses ``AlbertLayer`` and adds no parameters, so the state-dict keys,
``load_state_dict`` and saving are unchanged. It runs its kernels only where they are correct and
available: CPU inference (eval mode, no gradients, not tracing), plain fp32 Linears, and bf16 only
where the CPU has native bf16 (:mod:`albertkit.cpu`; elsewhere oneDNN refuses to pack bf16 weights).
Everywhere else (training, CUDA, int8 Linears, ONNX export) it runs the plain block.
"""

from __future__ import annotations

import math
import weakref

import torch
from torch import Tensor, nn

from albertkit.cpu import cpu_capability
from albertkit.modeling import AlbertLayer, _tracing

__all__ = ["FusedAlbertLayer", "OneDnnLinear", "fuse_cpu_layers", "onednn_available", "row_chunks", "unfuse_cpu_layers"]

# Epilogue names oneDNN knows, per hidden_act: (post-op, algorithm).
_ONEDNN_ACT = {
    "gelu_new": ("gelu", "tanh"),
    "gelu_pytorch_tanh": ("gelu", "tanh"),
    "gelu_fast": ("gelu", "tanh"),
    "gelu": ("gelu", "none"),
    "relu": ("relu", ""),
}


def onednn_available() -> bool:
    """Whether this torch build has oneDNN's fused linear (the private op these kernels call)."""
    return torch.backends.mkldnn.is_available() and hasattr(torch.ops.mkldnn, "_linear_pointwise")


def _linear(x: Tensor, weight: Tensor, bias: Tensor, act: tuple[str, str] = ("none", ""), residual: Tensor | None = None) -> Tensor:
    """``act(x @ W.T + b)`` or ``x @ W.T + b + residual`` in one oneDNN call (x [..., in] -> [..., out])."""
    # Name the overload: left to choose, torch tries the wrong one first and formats an error message
    # that prints the whole bias (about 3 ms per call, 24 calls per forward).
    if residual is not None:
        return torch.ops.mkldnn._linear_pointwise.binary(x, residual, weight, bias, "add")
    return torch.ops.mkldnn._linear_pointwise.default(x, weight, bias, act[0], [], act[1])


def _pack(weight: Tensor) -> Tensor:
    """bf16 weights in oneDNN's blocked layout (the AMX kernels otherwise reorder them every call).

    fp32 gains nothing from it, so fp32 weights are used as they are.
    """
    if weight.dtype == torch.bfloat16:
        return torch.ops.mkldnn._reorder_linear_weight(weight, None)
    return weight


def _stamp(t: Tensor) -> tuple[int, int]:
    """Storage and version counter of a weight: a changed stamp means the packed copy is stale.

    Tensors made under ``torch.inference_mode`` (a model copied or cast there) keep no version
    counter; their storage still identifies them.
    """
    return t.data_ptr(), -1 if t.is_inference() else t._version


# Where oneDNN's fp32 GEMMs beat torch's (bench/gemm_peak.py): the forward from AVX2 up, the input
# gradient from AVX-512 up.
_X86_LEVELS = ("avx2", "avx512", "avx512_bf16", "amx")
_AVX512_LEVELS = ("avx512", "avx512_bf16", "amx")


def _onednn_linear(x: Tensor, weight: Tensor, bias: Tensor | None) -> Tensor:
    """``x @ W.T + b`` in one oneDNN call, for :class:`OneDnnLinear` (the fused block counts its own
    :func:`_linear` calls; this one stays apart)."""
    return torch.ops.mkldnn._linear_pointwise.default(x, weight, bias, "none", [], "")


class _OneDnnLinearFunction(torch.autograd.Function):
    """``x @ W.T + b`` with its forward and input-gradient GEMMs in oneDNN, for fp32 CPU training.

    torch's CPU ``addmm``/``mm`` go to MKL, whose fp32 GEMM measured 96-135 GFLOP/s on the
    AVX-512 EPYC of bench/RESULTS.md against oneDNN's 160-200 at albert-base's shapes (4,096 rows;
    ``python bench/gemm_peak.py``). Same arithmetic (fp32 in, fp32 accumulate), another kernel. The
    weight gradient ``dY.T @ X`` stays on ``torch.mm`` (oneDNN was slower there), and so does the
    input gradient below the AVX-512 class: with oneDNN held to AVX2 its ``dY @ W`` was 0.8-1.0x MKL's.
    """

    @staticmethod
    def forward(ctx, x: Tensor, weight: Tensor, bias: Tensor | None) -> Tensor:  # type: ignore[override]
        ctx.save_for_backward(x, weight)
        ctx.has_bias = bias is not None
        ctx.onednn_grad_input = cpu_capability().level in _AVX512_LEVELS
        return _onednn_linear(x, weight, bias)

    @staticmethod
    def backward(ctx, grad: Tensor) -> tuple[Tensor | None, Tensor | None, Tensor | None]:  # type: ignore[override]
        x, weight = ctx.saved_tensors
        grad2 = grad.reshape(-1, grad.shape[-1])
        grad_x = grad_w = grad_b = None
        if ctx.needs_input_grad[0]:
            if ctx.onednn_grad_input:
                # dX = dY @ W: a linear whose "weight" is W.T (oneDNN reads the transposed view as is)
                grad_x = _onednn_linear(grad, weight.t(), None)
            else:
                grad_x = grad2.mm(weight).view(x.shape)
        if ctx.needs_input_grad[1]:
            grad_w = grad2.t().mm(x.reshape(-1, x.shape[-1]))
        if ctx.has_bias and ctx.needs_input_grad[2]:
            grad_b = grad2.sum(0)
        return grad_x, grad_w, grad_b


class OneDnnLinear(nn.Linear):
    """``nn.Linear`` whose fp32 CPU forward and backward run oneDNN GEMMs (see ``_OneDnnLinearFunction``).

    Swapped in place by :func:`fuse_cpu_layers` (no new parameters: state dicts, optimizers and
    DDP see the same tensors). bf16 inference on a CPU with native bf16 runs oneDNN too, on a copy
    of the weight in its blocked layout, cached and re-made when the weight changes: the tied MLM
    decoder (128 -> 30,000) for one masked word takes 0.20 ms instead of ``F.linear``'s 0.37 (AMX
    Xeon, 2 threads). Anything else (CUDA, autocast, tracing for export) runs ``nn.Linear.forward``.
    """

    _packed_cache: tuple[tuple[int, int], Tensor] | None = None

    def _packed_bf16(self) -> Tensor:
        key = _stamp(self.weight)
        if self._packed_cache is None or self._packed_cache[0] != key:
            with torch.no_grad():
                self._packed_cache = (key, _pack(self.weight))
        return self._packed_cache[1]

    def forward(self, x: Tensor) -> Tensor:
        if (
            x.dtype == torch.bfloat16
            and self.weight.dtype == torch.bfloat16
            and x.device.type == "cpu"
            and not (torch.is_grad_enabled() and (x.requires_grad or self.weight.requires_grad))
            and not torch.is_autocast_enabled("cpu")
            and not _tracing()
            and onednn_available()
            and cpu_capability().native_bf16
        ):
            return torch.ops.mkldnn._linear_pointwise.default(x, self._packed_bf16(), self.bias, "none", [], "")
        if (
            cpu_capability().level not in _X86_LEVELS  # aarch64 (torch's own GEMMs there), x86 without AVX2
            or x.device.type != "cpu"
            or x.dtype != torch.float32
            or self.weight.dtype != torch.float32
            or torch.is_autocast_enabled("cpu")
            or _tracing()
        ):
            return super().forward(x)
        if not torch.is_grad_enabled() or not (x.requires_grad or self.weight.requires_grad):
            return _onednn_linear(x, self.weight, self.bias)  # inference: one call, bias fused, no autograd graph
        return _OneDnnLinearFunction.apply(x, self.weight, self.bias)


# bf16 attention as three plain ops (bf16 batched GEMMs + softmax) instead of SDPA's CPU flash kernel,
# for batches of at least this many tokens and sequences up to this length: 1.3-1.6x faster there
# (8 x 128: 3.8 vs 6.0 ms per layer; 32 x 74 with padding: 9.6 vs 12.9), slower on a single short
# sentence (1 x 16: 0.18 vs 0.05 ms) and at 8 x 512 (78 vs 68). AVX-512 EPYC, 2 threads:
# ``python bench/attention_bf16.py``. Not on AMX, where SDPA's flash kernel runs its GEMMs on the
# tiles and wins at every shape up to 32 x 128 (8 x 128: 1.09 vs 1.82 ms per layer; 32 x 74: a tie
# at 4.96 vs 4.86; 8 x 512: 13 vs 47; AMX Xeon, 2 threads, same script).
_EXPLICIT_BF16_MIN_TOKENS = 128
_EXPLICIT_BF16_MAX_LEN = 256


def use_explicit_bf16(batch: int, length: int) -> bool:
    """Whether the fused block's bf16 attention runs :func:`attend_bf16` rather than SDPA for this shape.

        >>> use_explicit_bf16(8, 128)  # True on an AVX512-BF16 EPYC, False on AMX  # doctest: +SKIP
    """
    return (
        batch * length >= _EXPLICIT_BF16_MIN_TOKENS
        and length <= _EXPLICIT_BF16_MAX_LEN
        and cpu_capability().level != "amx"
    )


# oneDNN's AMX bf16 GEMMs with a 768-wide output run at half speed when they get 512-1,408 rows at
# once (the dense and FFN-output GEMMs at 8 x 128: 1,050-1,470 GFLOP/s, against 2,000-2,700 with 384
# or 1,536 rows), and the FFN's GEMM with its GELU epilogue runs faster on a few hundred rows at any
# size (1,790 against 1,220-1,420 GFLOP/s). Every op after the attention is row-wise, so on AMX the
# block runs them on chunks of at most this many rows: the FFN at 1,024 rows takes 6.6 instead of
# 9.4 ms, at 3,072 rows 17.6 instead of 19.5, at 4,096 the same (AMX Xeon, 2 threads;
# ``python bench/chunk_rows.py``). fp32 and the AVX512-BF16 kernels show no such cliff (flat within
# 5% from 64 to 4,096 rows), so only the AMX class chunks.
_AMX_CHUNK_ROWS = 384


def row_chunks(rows: int, dtype: torch.dtype) -> list[slice] | None:
    """The row ranges the fused block runs its post-attention ops on, or None for all rows at once.

        >>> row_chunks(1024, torch.bfloat16)  # on an AMX CPU: three chunks  # doctest: +SKIP
        [slice(0, 342, None), slice(342, 684, None), slice(684, 1024, None)]
    """
    if dtype != torch.bfloat16 or rows <= _AMX_CHUNK_ROWS or cpu_capability().level != "amx":
        return None
    n = -(-rows // _AMX_CHUNK_ROWS)
    size = -(-rows // n)
    return [slice(i, min(i + size, rows)) for i in range(0, rows, size)]


def attend_bf16(q: Tensor, k: Tensor, v: Tensor, attention_mask: Tensor | None) -> Tensor:
    """softmax(q k^T / sqrt(D) + mask) v for bf16 [B, A, T, D] heads -> context [B, T, A * D].

    The scores are rounded to bf16 before the softmax (which computes in fp32), as transformers'
    eager attention does in bf16; SDPA keeps them in fp32. Against an fp32 reference the context
    differs by ~1e-2 at most instead of ~4e-3, well inside the bf16 path's agreement bounds
    (hidden-state cosine >= 0.99, fill-mask top-1 >= 97%; bench/agreement.py).

        >>> ctx = attend_bf16(q, k, v, None)  # doctest: +SKIP
    """
    B, A, T, D = q.shape
    # q, k, v arrive as strided views of the fused QKV output; the batched GEMMs run ~1.5x faster on
    # contiguous heads, and the copy of q takes the 1/sqrt(D) scale for free (D = 64: exact in bf16)
    q = q * (1.0 / math.sqrt(D))
    k, v = k.contiguous(), v.contiguous()
    scores = torch.matmul(q, k.transpose(-1, -2))
    if attention_mask is not None:
        scores = scores.add_(attention_mask.to(scores.dtype))
    return torch.matmul(scores.softmax(dim=-1), v).transpose(1, 2).reshape(B, T, A * D)


class FusedAlbertLayer(AlbertLayer):
    """``AlbertLayer`` whose CPU inference runs four fused oneDNN GEMMs (see the module doc).

    Built from an existing layer by :meth:`fuse` (the class is swapped in place, so parameters,
    hooks and the optimizer's references stay the same objects).
    """

    _packed_cache: tuple[tuple, tuple[Tensor, Tensor, dict[str, Tensor]]] | None = None
    # The tensor the last fused application returned. ALBERT feeds a block's output straight back
    # into it (L times per forward at albert-base); an input that *is* that output comes from the
    # same forward, so the checks and the cache key that were just computed still hold. Skipping
    # them saves ~0.1 ms per application, a tenth of a one-sentence forward at albert-base. The
    # cheap conditions stay (eval mode, no autograd, one weight's stamp), so that calling the block
    # again on an old output after .train(), under autograd or after .to() takes the full checks.
    _chain: "weakref.ref[Tensor] | None" = None

    @classmethod
    def fuse(cls, layer: AlbertLayer) -> "FusedAlbertLayer":
        layer.__class__ = cls
        return layer  # type: ignore[return-value]

    def _linears(self) -> tuple[nn.Module, ...]:
        a = self.attention
        return (a.query, a.key, a.value, a.dense, self.ffn, self.ffn_output)

    def usable(self, x: Tensor) -> bool:
        """Whether the fused kernels apply to input ``x``: CPU inference, plain Linears, a dtype oneDNN packs here."""
        if self.training or x.device.type != "cpu" or _tracing() or not onednn_available():
            return False
        if x.dtype == torch.bfloat16:
            if not cpu_capability().native_bf16:
                return False
        elif x.dtype != torch.float32:
            return False
        linears = self._linears()
        for m in linears:
            if type(m) not in (nn.Linear, OneDnnLinear) or m.weight.dtype != x.dtype or m.bias is None:
                return False  # e.g. a dynamically quantized Linear: it runs its own kernel
        if torch.is_grad_enabled() and (x.requires_grad or any(m.weight.requires_grad for m in linears)):
            return False
        return True

    def packed_weights(self) -> tuple[Tensor, Tensor, dict[str, Tensor]]:
        """The fused QKV weight and bias, and the block's weights laid out for oneDNN.

        Cached between forwards (concatenating and reordering cost ~10 ms, a quarter of a 1 x 16
        forward). The key holds each weight's storage and version counter, so ``load_state_dict``,
        ``.to(dtype)`` or an optimizer step invalidates it.
        """
        linears = self._linears()
        key = tuple((_stamp(m.weight), _stamp(m.bias)) for m in linears)
        if self._packed_cache is not None and self._packed_cache[0] == key:
            return self._packed_cache[1]
        a = self.attention
        with torch.no_grad():
            qkv_weight = torch.cat([a.query.weight, a.key.weight, a.value.weight], dim=0)  # [3H, H]
            qkv_bias = torch.cat([a.query.bias, a.key.bias, a.value.bias], dim=0)
            packed = {
                "qkv": _pack(qkv_weight),
                "dense": _pack(a.dense.weight),
                "ffn": _pack(self.ffn.weight),
                "ffn_output": _pack(self.ffn_output.weight),
            }
        self._packed_cache = (key, (qkv_weight, qkv_bias, packed))
        return self._packed_cache[1]

    def forward(
        self, hidden_states: Tensor, attention_mask: Tensor | None = None, output_attentions: bool = False
    ) -> tuple[Tensor, Tensor | None]:
        chain, cache = self._chain, self._packed_cache
        if (
            chain is not None
            and cache is not None
            and chain() is hidden_states
            and not self.training
            and not torch.is_grad_enabled()
            and _stamp(self.ffn.weight) == cache[0][4][0]  # cache key: (weight, bias) stamps of _linears()
        ):
            _, qkv_bias, packed = cache[1]
        elif not self.usable(hidden_states):
            self._chain = None
            return super().forward(hidden_states, attention_mask, output_attentions)
        else:
            _, qkv_bias, packed = self.packed_weights()
        out, probs = self._fused_forward(hidden_states, attention_mask, output_attentions, qkv_bias, packed)
        self._chain = weakref.ref(out)
        return out, probs

    def _fused_forward(
        self, hidden_states: Tensor, attention_mask: Tensor | None, output_attentions: bool, qkv_bias: Tensor, packed: dict[str, Tensor]
    ) -> tuple[Tensor, Tensor | None]:
        a = self.attention
        B, T, H = hidden_states.shape
        mixed = _linear(hidden_states, packed["qkv"], qkv_bias)  # [B, T, 3H]
        q, k, v = mixed.view(B, T, 3, a.num_attention_heads, a.attention_head_size).permute(2, 0, 3, 1, 4).unbind(0)
        if (
            hidden_states.dtype == torch.bfloat16
            and not output_attentions
            and use_explicit_bf16(B, T)
        ):
            context, probs = attend_bf16(q, k, v, attention_mask), None
        else:
            context, probs = a.attend(q, k, v, attention_mask, output_attentions)
        chunks = row_chunks(B * T, hidden_states.dtype)
        if chunks is None:
            return self._after_attention(context, hidden_states, packed), probs
        context, hidden_states = context.reshape(B * T, H), hidden_states.reshape(B * T, H)
        out = torch.empty_like(hidden_states)
        for rows in chunks:
            out[rows] = self._after_attention(context[rows], hidden_states[rows], packed)
        return out.view(B, T, H), probs

    def _after_attention(self, context: Tensor, hidden_states: Tensor, packed: dict[str, Tensor]) -> Tensor:
        """Attention output projection, both residual LayerNorms and the FFN: row-wise, so any rows at a time."""
        a = self.attention
        # dense + bias + residual in one call (no dropout in inference)
        attention_output = a.LayerNorm(_linear(context, packed["dense"], a.dense.bias, residual=hidden_states))
        act = _ONEDNN_ACT.get(self.hidden_act)
        if act is not None:  # GELU as the GEMM's epilogue
            intermediate = _linear(attention_output, packed["ffn"], self.ffn.bias, act)
        else:
            intermediate = self.activation(_linear(attention_output, packed["ffn"], self.ffn.bias))
        out = _linear(intermediate, packed["ffn_output"], self.ffn_output.bias, residual=attention_output)
        return self.full_layer_layer_norm(out)


def fuse_cpu_layers(model: nn.Module) -> nn.Module:
    """Swap every ``AlbertLayer`` of ``model`` for :class:`FusedAlbertLayer` and every plain
    ``nn.Linear`` for :class:`OneDnnLinear`, in place; returns ``model``.

    Both fall back to the plain modules wherever their kernels do not apply, so the swapped model
    trains, exports and moves to CUDA as before.
    """
    if onednn_available():
        for module in model.modules():
            if type(module) is AlbertLayer:
                FusedAlbertLayer.fuse(module)
            elif type(module) is nn.Linear:
                module.__class__ = OneDnnLinear
    return model


def unfuse_cpu_layers(model: nn.Module) -> nn.Module:
    """Undo :func:`fuse_cpu_layers` in place (the plain ``AlbertLayer`` and ``nn.Linear`` again, same
    parameters); returns ``model``.

    For code that must see every Linear called, such as int8 calibration's forward hooks: the fused
    block runs its GEMMs on packed weights and never calls its Linear modules.

        >>> unfuse_cpu_layers(fuse_cpu_layers(model))  # doctest: +SKIP
    """
    for module in model.modules():
        if isinstance(module, FusedAlbertLayer):
            module.__class__ = AlbertLayer
        elif type(module) is OneDnnLinear:
            module.__class__ = nn.Linear
        else:
            continue
        for name in ("_packed_cache", "_chain"):  # packed copies of the weights: dropped with the class
            module.__dict__.pop(name, None)
    return model
