"""Dynamic int8 quantization of the encoder (PyTorch's own kernels), torch-only.

It sits below the model classes so that ``from_pretrained(..., quantize="int8")`` can apply it after
loading without the model file reaching up into :mod:`albertkit.fast`, which re-exports it and picks
it as the ``"int8"`` fast path.

    >>> from albertkit.fast import quantize_int8
    >>> fast = quantize_int8(model)  # a quantized copy  # doctest: +SKIP
"""

from __future__ import annotations

import copy
import warnings

import torch
from torch import Tensor, nn
from torch.ao.nn.quantized.dynamic import Linear as DynamicLinear  # torch imports it itself: no cost

from albertkit.cpu import cpu_capability

__all__ = ["FullRangeDynamicLinear", "full_range_int8_activations", "quantize_int8"]


def full_range_int8_activations() -> bool:
    """Whether PyTorch's int8 Linear may quantize activations to all 8 bits on this CPU.

    PyTorch's dynamic Linear always asks for ``reduce_range`` (7-bit activations, 0..127): without
    VNNI, fbgemm multiplies u8 x s8 pairs with ``vpmaddubsw``, whose 16-bit pair sums saturate above
    2 x 127 x 127. fbgemm's AVX512-VNNI (and AMX) kernels accumulate in 32 bits, so there the 8th bit
    is free precision: half the activation rounding error (``python -m bench.agreement``: albertkit
    int8 top-1 agreement 94.7% -> 96.7% on 300 sentences, AVX512-VNNI EPYC). AVX-VNNI without
    AVX-512 does not count: fbgemm has no kernel for it. The class is the hardware's unless forced
    down, so forcing AVX2 also forces 7 bits (safe either way).
    """
    cap = cpu_capability()
    return cap.vnni and cap.level in ("avx512", "avx512_bf16", "amx") and torch.backends.quantized.engine in ("x86", "fbgemm")


class FullRangeDynamicLinear(DynamicLinear):
    """PyTorch's dynamic int8 Linear with 8-bit activations (see :func:`full_range_int8_activations`)."""

    def forward(self, x: Tensor) -> Tensor:
        return torch.ops.quantized.linear_dynamic(x, self._packed_params._packed_params, reduce_range=False).to(x.dtype)


def quantize_int8(model: nn.Module, *, inplace: bool = False) -> nn.Module:
    """Dynamic int8 quantization of the encoder's Linear layers (weights int8 per channel, activations
    quantized per batch at run time, to 8 bits where :func:`full_range_int8_activations` allows,
    else 7), with PyTorch's own kernels.

    The embeddings, the E -> H mapping and the tied MLM decoder stay fp32: the decoder shares its
    weight with the embeddings and decides the top-1 prediction, and the other two are tiny.
    PyTorch 2.13 marks ``torch.ao.quantization.quantize_dynamic`` deprecated in favour of torchao,
    which is not installed here; the eager kernels still work and the warning is silenced.
    """
    if not inplace:
        model = copy.deepcopy(model)
    model = model.float().eval()
    backbone = getattr(model, "backbone", model)
    targets = []
    for name, m in backbone.encoder.albert_layer_groups.named_modules():
        if isinstance(m, nn.Linear):
            # quantize_dynamic maps exact types only: a Linear that fused.fuse_cpu_layers swapped
            # to its oneDNN subclass goes back to nn.Linear first (same parameters)
            m.__class__ = nn.Linear
            targets.append(name)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        warnings.simplefilter("ignore", UserWarning)
        from torch.ao.quantization import default_dynamic_qconfig, per_channel_dynamic_qconfig, quantize_dynamic

        qconfig = per_channel_dynamic_qconfig if per_channel_dynamic_qconfig is not None else default_dynamic_qconfig
        quantize_dynamic(backbone.encoder.albert_layer_groups, {name: qconfig for name in targets}, inplace=True)
    if full_range_int8_activations():
        for m in backbone.encoder.albert_layer_groups.modules():
            if type(m) is DynamicLinear:
                m.__class__ = FullRangeDynamicLinear  # same packed weights, 8-bit activations
    return model
