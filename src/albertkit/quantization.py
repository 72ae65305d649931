"""Dynamic int8 quantization of the encoder (PyTorch's own kernels), torch-only.

It sits below the model classes so that ``from_pretrained(..., quantize="int8")`` can apply it after
loading without the model file reaching up into :mod:`albertkit.fast`, which re-exports it and picks
it as the ``"int8"`` fast path.

    >>> from albertkit.fast import quantize_int8
    >>> fast = quantize_int8(model)  # a quantized copy  # doctest: +SKIP
"""

from __future__ import annotations

import contextlib
import copy
import os
import warnings
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from typing import Any

import torch
from torch import Tensor, nn
from torch.ao.nn.quantized.dynamic import Linear as DynamicLinear  # torch imports it itself: no cost

from albertkit.cpu import cpu_capability

__all__ = ["Int8Linear", "calibration_batch", "calibration_from_texts", "input_absmax", "int8_engine", "int8_qconfig", "int8_weight_bits", "quantize_int8", "smoothing_factors"]


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
    if int8_engine() == "onednn":  # AMX int8 tiles accumulate in 32 bits
        return 8
    vnni32 = cap.vnni and cap.level in ("avx512", "avx512_bf16", "amx") and torch.backends.quantized.engine in ("x86", "fbgemm")
    fbgemm_isa = os.environ.get("FBGEMM_ENABLE_INSTRUCTIONS", "").upper()
    return 8 if vnni32 and (not fbgemm_isa or fbgemm_isa.startswith("AVX512_E1")) else 7


def int8_engine() -> str:
    """The quantized engine :func:`quantize_int8` packs the weights for: ``"onednn"`` on the AMX
    class, else PyTorch's default (``"x86"``: fbgemm's kernels for a dynamic Linear).

    fbgemm has no AMX kernels; oneDNN's dynamic int8 Linear runs on AMX's int8 tiles, with the same
    arithmetic (u8 activations with one scale and zero point per call, s8 weights per channel, 32-bit
    sums: outputs equal to fbgemm's to float rounding). Measured on an AMX Xeon, 2 threads
    (``python bench/int8_engines.py``): albert-base's Linears 1.6-2.1x faster than fbgemm at 1,024
    rows, 1.1-1.4x at 10; the whole int8 encoder 1.7x at 8 x 128, but ~10% slower at one 10-token
    sentence, where per-call overhead outweighs the GEMMs (bf16, ``auto``'s choice on this class, is
    faster than either). Elsewhere fbgemm stays: it is what every other class was measured with.
    The engine belongs to the packed weight, not to the process: a model quantized here runs on
    oneDNN whatever ``torch.backends.quantized.engine`` says later (a copy made by
    ``copy.deepcopy`` re-packs for the global engine).

        >>> int8_engine() in ("onednn", "x86", "fbgemm", "qnnpack")
        True
    """
    if cpu_capability().level == "amx" and "onednn" in torch.backends.quantized.supported_engines:
        return "onednn"
    return torch.backends.quantized.engine


@contextlib.contextmanager
def _packing_for(engine: str) -> Iterator[None]:
    # torch packs a quantized weight for the global engine of the moment; set it only while packing
    saved = torch.backends.quantized.engine
    torch.backends.quantized.engine = engine
    try:
        yield
    finally:
        torch.backends.quantized.engine = saved


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
    """PyTorch's dynamic int8 Linear (fbgemm or oneDNN: :func:`int8_engine`) with one activation scale
    per token, not per batch.

    The kernel quantizes its input with one scale for the whole [B, T, in] tensor, so the rounding of a
    token depends on the largest activation anywhere in the batch: on an earlier albert-mini-en release,
    per-batch scales are the dominant int8 error (simulated: weights alone add a KL to fp32 of
    0.00008, per-batch activations 0.00126, per-token activations 0.00025), and a sentence's result
    moves with the sentences batched beside it. Dividing each row by its absmax before the kernel
    makes the kernel's one scale (nearly) a per-token one: every row then spans [min, 1], only the
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
    input_smoothing: Tensor | None

    @classmethod
    def adopt(cls, m: DynamicLinear, weight_bits: int = 8, smoothing: Tensor | None = None) -> "Int8Linear":
        """Turn a quantized ``DynamicLinear`` into an Int8Linear. ``smoothing``: the per-input-channel
        factors s its float weight was multiplied by before quantization (:func:`smoothing_factors`);
        the input is divided by them at run time, so that x W^T is unchanged."""
        weight, bias = m._packed_params._weight_bias()
        m.set_weight_bias(weight, None)  # the bias goes after the row scale, in float
        m.__class__ = cls
        m.weight_bits = weight_bits
        m.register_buffer("float_bias", None if bias is None else bias.detach().clone())
        m.register_buffer("input_smoothing", None if smoothing is None else (1.0 / smoothing).float())
        return m  # type: ignore[return-value]

    def forward(self, x: Tensor) -> Tensor:
        if self.input_smoothing is not None:
            x = x * self.input_smoothing
        scale = x.abs().amax(dim=-1, keepdim=True).clamp_(min=torch.finfo(torch.float32).tiny)
        y = torch.ops.quantized.linear_dynamic(x / scale, self._packed_params._packed_params, reduce_range=False)
        return y.mul_(scale) if self.float_bias is None else torch.addcmul(self.float_bias, y, scale)


def smoothing_factors(input_absmax: Tensor, weight: Tensor, alpha: float = 0.5) -> Tensor:
    """SmoothQuant's per-input-channel factors (Xiao et al. 2023): s_j = max|X_j|^alpha / max|W_:j|^(1-alpha).

        >>> s = smoothing_factors(torch.tensor([1.0, 40.0]), torch.ones(3, 2))
        >>> [round(v, 2) for v in s.tolist()]
        [1.0, 6.32]

    Dividing the input's channel j by s_j and multiplying the weight's column j by it leaves x W^T
    unchanged but moves an outlier channel's range from the activations, quantized with one scale
    per token across all channels, into the weights, quantized per output channel: with alpha 0.5
    both sides end with the same per-channel range. Channels never seen active keep s = 1.
    """
    a = input_absmax.float()
    w = weight.detach().abs().amax(dim=0).float()
    s = a.clamp(min=1e-5).pow(alpha) / w.clamp(min=1e-5).pow(1 - alpha)
    return torch.where((a > 0) & (w > 0), s, torch.ones_like(s))


def calibration_batch(vocab_size: int, max_positions: int, *, batch: int = 32, length: int = 64, seed: int = 0) -> dict[str, Tensor]:
    """:func:`quantize_int8`'s default calibration input: ``batch`` x ``length`` token ids drawn
    uniformly (seeded) from the vocabulary after its first five (ALBERT's pad, unk, [CLS], [SEP], [MASK]).

        >>> calibration_batch(30000, 512)["input_ids"].shape
        torch.Size([32, 64])

    A transformer's activation outliers sit in the same few channels whatever the text, which is
    what smoothing needs to know; random ids find them without any data at hand. Measured on the
    albert-mini-en, 33.4% release (``bench.agreement``'s 1,000 sentences, AMX Xeon, alpha 0.5): KL to fp32
    0.00228 unsmoothed, 0.00170 calibrated on this batch, 0.00109 on 200 real corpus sentences
    (pass such batches as ``quantize_int8(..., calibration=...)``).
    """
    generator = torch.Generator().manual_seed(seed)
    low = min(5, vocab_size - 1)
    ids = torch.randint(low, vocab_size, (batch, min(length, max_positions)), generator=generator)
    return {"input_ids": ids, "attention_mask": torch.ones_like(ids)}


def calibration_from_texts(
    tokenizer: Callable[..., Mapping[str, Tensor]], texts: Sequence[str], *, max_length: int = 512, batch_size: int = 32
) -> list[dict[str, Tensor]]:
    """Batches of ``texts`` for :func:`quantize_int8`'s ``calibration``: tokenized with ``tokenizer``
    (albertkit's or transformers'), cut to ``max_length`` pieces, ``batch_size`` texts per batch.

        >>> batches = calibration_from_texts(tokenizer, ["A sentence like the ones to serve."])  # doctest: +SKIP
        >>> q = quantize_int8(model, calibration=batches)  # doctest: +SKIP

    Text like the text the model will see sets the smoothing factors better than the default random
    ids: measured on albert-mini-en (34.4% release, ``python -m bench.int8_error_sources
    --calibration 256``), KL of the [MASK] distributions to fp32 0.00153 -> 0.00145 with 8-bit
    weights (AMX Xeon) and 0.0026-0.0029 -> 0.0024 with fbgemm's 7-bit AVX2 weights; top-1
    agreement moves within its noise (+-0.6 point).
    """
    if isinstance(texts, str) or not isinstance(texts, Sequence):
        raise TypeError(f"calibration texts must be a list of strings, got {type(texts).__name__}")
    bad = [i for i, t in enumerate(texts) if not isinstance(t, str) or not t.strip()]
    if bad:
        raise ValueError(f"calibration text {bad[0]} is {'empty' if isinstance(texts[bad[0]], str) else type(texts[bad[0]]).__name__}; "
                         f"give non-empty strings")
    if not texts:
        raise ValueError("no calibration texts")
    batches = []
    for i in range(0, len(texts), batch_size):
        enc = tokenizer(list(texts[i : i + batch_size]), padding=True, truncation=True, max_length=max_length, return_tensors="pt")
        batches.append({"input_ids": enc["input_ids"], "attention_mask": enc["attention_mask"]})
    return batches


def input_absmax(backbone: nn.Module, linears: dict[str, nn.Linear], batches: Iterable[Mapping[str, Tensor]]) -> dict[str, Tensor]:
    """max |x_j| per input channel of each Linear in ``linears`` over the ``batches`` (fp32 forwards
    of ``backbone``, an ``AlbertModel``, with forward hooks; padding positions included)."""
    seen: dict[str, Tensor] = {}

    def record(name: str) -> Any:
        def hook(module: nn.Module, inputs: tuple[Tensor, ...], output: Tensor) -> None:
            x = inputs[0].detach().reshape(-1, inputs[0].shape[-1]).abs().amax(dim=0)
            seen[name] = x if name not in seen else torch.maximum(seen[name], x)

        return hook

    handles = [m.register_forward_hook(record(name)) for name, m in linears.items()]
    try:
        with torch.inference_mode():
            for b in batches:
                backbone(input_ids=b["input_ids"], attention_mask=b.get("attention_mask"))
    finally:
        for h in handles:
            h.remove()
    return seen


def quantize_int8(
    model: nn.Module,
    *,
    inplace: bool = False,
    calibration: Iterable[Mapping[str, Tensor]] | None = None,
    smoothing: float | None = 0.35,
) -> nn.Module:
    """Dynamic int8 quantization of the encoder's Linear layers (weights per channel, 8 or 7 bits by
    :func:`int8_weight_bits`; activations 8 bits, quantized per token at run time: :class:`Int8Linear`),
    with PyTorch's own kernels: oneDNN's on the AMX class, fbgemm's elsewhere (:func:`int8_engine`).

        >>> q = quantize_int8(model)                                    # doctest: +SKIP
        >>> q = quantize_int8(model, calibration=[tokenizer(texts, padding=True, return_tensors="pt")])  # doctest: +SKIP

    Each Linear is smoothed first (``smoothing`` is SmoothQuant's alpha; None turns it off): its
    inputs' per-channel maxima, measured over ``calibration`` (batches with ``input_ids`` and
    ``attention_mask``; default :func:`calibration_batch`, random ids), set the factors
    (:func:`smoothing_factors`) that move outlier channels from the activations into the weights.
    Measured on ``bench.agreement``'s 1,000 sentences (albert-mini-en, the 33.4% release, AMX Xeon), KL of the
    [MASK] distributions to fp32 and top-1 agreement: 8-bit weights 0.00228 / 96.7% unsmoothed,
    0.00142 / 96.9% smoothed; under fbgemm's AVX2 kernels (7-bit weights, the class ``auto`` picks
    int8 on) 0.00360 / 94.7% -> 0.00232 / 97.3%. alpha 0.35 had the lowest KL of 0.25-0.6 for both
    weight widths, and again on another 1,000 sentences (top-1 moves by +-0.5 point between
    alphas and samples: near-ties). Costs one fp32 forward of the calibration input at quantization
    and one multiplication per Linear call.

    The embeddings, the E -> H mapping and the tied MLM decoder stay fp32: the decoder shares its
    weight with the embeddings and decides the top-1 prediction, and the other two are tiny.
    PyTorch 2.13 marks ``torch.ao.quantization.quantize_dynamic`` deprecated in favour of torchao,
    which is not installed here; the eager kernels still work and the warning is silenced.
    """
    if not inplace:
        model = copy.deepcopy(model)
    model = model.float().eval()
    backbone = getattr(model, "backbone", model)
    blocks = backbone.encoder.albert_layer_groups
    linears: dict[str, nn.Linear] = {}
    for name, m in blocks.named_modules():
        if isinstance(m, nn.Linear):
            # quantize_dynamic maps exact types only: a Linear that fused.fuse_cpu_layers swapped
            # to its oneDNN subclass goes back to nn.Linear first (same parameters)
            m.__class__ = nn.Linear
            linears[name] = m
    factors: dict[str, Tensor] = {}
    if smoothing:
        if calibration is None:
            cfg = backbone.config
            calibration = [calibration_batch(cfg.vocab_size, cfg.max_position_embeddings)]
        maxima = input_absmax(backbone, linears, calibration)
        unseen = sorted(set(linears) - set(maxima))
        if unseen:  # never silently unsmoothed: e.g. a fused block (albertkit.fused) bypasses its Linears
            raise ValueError(
                f"the calibration forward never called {', '.join(unseen)}: quantize a model whose Linears run "
                f"(albertkit.fused.unfuse_cpu_layers undoes the fused CPU block; albertkit.fast.optimize does it)"
            )
        with torch.no_grad():
            for name, m in linears.items():
                if name in maxima:
                    factors[name] = smoothing_factors(maxima[name], m.weight, smoothing)
                    m.weight.mul_(factors[name])  # x W^T = (x / s) (W s)^T
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        warnings.simplefilter("ignore", UserWarning)
        from torch.ao.quantization import quantize_dynamic

        bits = int8_weight_bits()
        qconfig = int8_qconfig(bits)
        with _packing_for(int8_engine()):
            quantize_dynamic(blocks, {name: qconfig for name in linears}, inplace=True)
            for name, m in list(blocks.named_modules()):
                if type(m) is DynamicLinear:
                    Int8Linear.adopt(m, bits, factors.get(name))
    return model
