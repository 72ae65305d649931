"""Dynamic int8 quantization of the encoder (PyTorch's own kernels), torch-only.

It sits below the model classes so that ``from_pretrained(..., quantize="int8")`` can apply it after
loading without the model file reaching up into :mod:`albertkit.fast`, which re-exports it and picks
it as the ``"int8"`` fast path.

    >>> from albertkit.fast import quantize_int8
    >>> fast = quantize_int8(model)  # a quantized copy  # doctest: +SKIP
"""

from __future__ import annotations

import copy
import os
import warnings
from typing import Any

import torch
from torch import Tensor, nn
from torch.ao.nn.quantized.dynamic import Linear as DynamicLinear  # torch imports it itself: no cost

from albertkit.cpu import cpu_capability

__all__ = ["Int8Linear", "int8_qconfig", "int8_weight_bits", "quantize_int8"]


def int8_weight_bits() -> int:
    """How many bits PyTorch's int8 Linear can give the weights on this CPU without overflow: 8 or 7.

    Activations are always quantized to 8 bits (0..255). Without VNNI, fbgemm multiplies u8 x s8
    pairs with ``vpmaddubsw``, whose 16-bit pair sums saturate above 32,767: 2 x 255 x 127 overflows,
    2 x 255 x 64 does not, so there the weights keep 7 bits (-64..63), as ONNX Runtime's
    ``reduce_range`` does. PyTorch's own default does the opposite (8-bit weights, 7-bit
    activations); with per-token activation scales the activations are the larger error, and
    ``python -m bench.agreement`` under fbgemm's AVX2 kernels (``FBGEMM_ENABLE_INSTRUCTIONS=AVX2`` on
    an AMX Xeon, 1,000 sentences) agrees 96.3% with 7-bit weights against 94.5% with 7-bit
    activations (95.2% with both at 8 bits: the saturation). fbgemm's AVX512-VNNI (and AMX-class)
    kernels accumulate in 32 bits, so there both have 8 bits. AVX-VNNI without AVX-512 does not
    count: fbgemm has no kernel for it. The class is the hardware's unless forced down, here also by
    fbgemm's own ``FBGEMM_ENABLE_INSTRUCTIONS`` (any value but its VNNI level ``AVX512_E1``).
    """
    cap = cpu_capability()
    vnni32 = cap.vnni and cap.level in ("avx512", "avx512_bf16", "amx") and torch.backends.quantized.engine in ("x86", "fbgemm")
    fbgemm_isa = os.environ.get("FBGEMM_ENABLE_INSTRUCTIONS", "").upper()
    return 8 if vnni32 and (not fbgemm_isa or fbgemm_isa.startswith("AVX512_E1")) else 7


def int8_qconfig(weight_bits: int = 8) -> Any:
    """torch's dynamic qconfig with symmetric per-channel weights of ``weight_bits`` bits (8 or 7).

        >>> quantize_dynamic(model, {nn.Linear: int8_qconfig(int8_weight_bits())})  # doctest: +SKIP
    """
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        from torch.ao.quantization import PerChannelMinMaxObserver, QConfig, per_channel_dynamic_qconfig

    top = 2 ** (weight_bits - 1)
    weight = PerChannelMinMaxObserver.with_args(dtype=torch.qint8, qscheme=torch.per_channel_symmetric, quant_min=-top, quant_max=top - 1)
    return QConfig(activation=per_channel_dynamic_qconfig.activation, weight=weight)


class Int8Linear(DynamicLinear):
    """PyTorch's dynamic int8 Linear (fbgemm) with one activation scale per token, not per batch.

    fbgemm quantizes its input with one scale for the whole [B, T, in] tensor, so the rounding of a
    token depends on the largest activation anywhere in the batch: on the shipped albert-mini-en,
    per-batch scales are the dominant int8 error (simulated: weights alone add a KL to fp32 of
    0.00008, per-batch activations 0.00126, per-token activations 0.00025), and a sentence's result
    moves with the sentences batched beside it. Dividing each row by its absmax before the kernel
    makes fbgemm's one scale (nearly) a per-token one: every row then spans [min, 1], only the
    negative end is shared. The row scale and the float bias are applied after, in one
    ``addcmul``. ``python -m bench.agreement`` (1,000 sentences, AVX512-VNNI EPYC): top-1 agreement
    with fp32 96.9% -> 97.8%, KL 0.00121 -> 0.00044; about 14% slower than per-batch at 8 x 128.
    Activations use all 8 bits; the weights 8 or 7 (:func:`int8_weight_bits`, chosen when
    :func:`quantize_int8` quantizes them). Built by :func:`quantize_int8` from a quantized
    ``DynamicLinear`` (:meth:`adopt`).

        >>> q = quantize_int8(model)  # every encoder Linear becomes an Int8Linear  # doctest: +SKIP
    """

    weight_bits: int = 8
    float_bias: Tensor | None

    @classmethod
    def adopt(cls, m: DynamicLinear, weight_bits: int = 8) -> "Int8Linear":
        weight, bias = m._packed_params._weight_bias()
        m.set_weight_bias(weight, None)  # the bias goes after the row scale, in float
        m.__class__ = cls
        m.weight_bits = weight_bits
        m.register_buffer("float_bias", None if bias is None else bias.detach().clone())
        return m  # type: ignore[return-value]

    def forward(self, x: Tensor) -> Tensor:
        scale = x.abs().amax(dim=-1, keepdim=True).clamp_(min=torch.finfo(torch.float32).tiny)
        y = torch.ops.quantized.linear_dynamic(x / scale, self._packed_params._packed_params, reduce_range=False)
        return y.mul_(scale) if self.float_bias is None else torch.addcmul(self.float_bias, y, scale)


def quantize_int8(model: nn.Module, *, inplace: bool = False) -> nn.Module:
    """Dynamic int8 quantization of the encoder's Linear layers (weights per channel, 8 or 7 bits by
    :func:`int8_weight_bits`; activations 8 bits, quantized per token at run time: :class:`Int8Linear`),
    with PyTorch's own kernels.

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
        from torch.ao.quantization import quantize_dynamic

        bits = int8_weight_bits()
        qconfig = int8_qconfig(bits)
        quantize_dynamic(backbone.encoder.albert_layer_groups, {name: qconfig for name in targets}, inplace=True)
    for m in list(backbone.encoder.albert_layer_groups.modules()):
        if type(m) is DynamicLinear:
            Int8Linear.adopt(m, bits)
    return model
