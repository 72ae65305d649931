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

from torch import nn

__all__ = ["quantize_int8"]


def quantize_int8(model: nn.Module, *, inplace: bool = False) -> nn.Module:
    """Dynamic int8 quantization of the encoder's Linear layers (weights int8 per channel, activations
    quantized per batch at run time), with PyTorch's own kernels.

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
    return model
