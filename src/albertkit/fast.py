"""Fast inference paths: fused fp32, bf16, int8 dynamic quantization, ONNX export and an ONNX Runtime backend.

Every path returns an object called like the torch model (same keyword arguments, same output
dataclass), so a pipeline can take any of them:

    >>> from albertkit import AlbertForMaskedLM
    >>> from albertkit.fast import optimize
    >>> model = AlbertForMaskedLM.from_pretrained("albert-base-v2")      # doctest: +SKIP
    >>> fast = optimize(model, "auto")    # or "fp32", "bf16", "int8", "onnx", "onnx-int8"  # doctest: +SKIP
    >>> fast(input_ids, attention_mask=mask).logits                     # doctest: +SKIP

Which path is fastest depends on the CPU class (:mod:`albertkit.cpu`): with AMX or AVX512-BF16,
bf16 GEMMs run several times faster than fp32 and than int8; without native bf16, bf16 still runs
(plain torch kernels) but slower than fp32, and int8 is the fast path. ``"auto"`` picks by class.
fp32 stays the default everywhere: it is the only path that matches transformers to 1e-4; bf16 and
int8 agree with it on >= 97% of fill-mask top-1 predictions where fp32's top-1 is clearly ahead, and
pick one of fp32's top 2 on >= 97% of all (tests/test_cpu_paths.py), not 100%.

onnx / onnxruntime / onnxscript are optional (``pip install albertkit[onnx]``) and imported only here.
"""

from __future__ import annotations

import contextlib
import copy
import logging
import math
import os
import tempfile
import types
import warnings
from collections.abc import Collection, Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from albertkit.config import AlbertConfig
from albertkit.cpu import cpu_capability, warn_bf16_slow
from albertkit.fused import fuse_cpu_layers, unfuse_cpu_layers
from albertkit.layout import FAST_MODES, TASK_TO_CLASS  # noqa: F401  (TASK_TO_CLASS re-exported: where it lived before)
from albertkit.modeling import MODEL_CLASSES, _extended_attention_mask
from albertkit.quantization import quantize_int8

__all__ = [
    "MODES",
    "bf16_supported",
    "to_bf16",
    "quantize_int8",
    "export_onnx",
    "fuse_transformer_ops",
    "quantize_onnx_int8",
    "OrtModel",
    "optimize",
    "auto_mode",
    "ONNX_INSTALL_HINT",
]

logger = logging.getLogger(__name__)

MODES = FAST_MODES
# ONNX Runtime graph fusions that make the CPU forward slower (measured, see fuse_transformer_ops).
SLOW_CPU_FUSIONS = ("SkipLayerNormFusion",)
ONNX_INSTALL_HINT = "ONNX export / ONNX Runtime need the optional extras: pip install 'albertkit[onnx]'"

# ------------------------------------------------------------------------------ bf16
def bf16_supported(device: torch.device | str = "cpu") -> bool:
    """Whether bf16 matmuls run natively: a bf16 GPU, or a CPU with AMX / AVX512-BF16 (:mod:`albertkit.cpu`)."""
    device = torch.device(device)
    if device.type == "cuda":
        return torch.cuda.is_available() and torch.cuda.is_bf16_supported()
    if device.type != "cpu":
        return False
    return cpu_capability().native_bf16


def to_bf16(model: nn.Module, *, strict: bool = False) -> nn.Module:
    """Cast the weights to bf16 (in place, returns the model).

    Casting the weights, rather than autocast, lets the CPU kernels use pre-packed bf16 weights and
    skips a cast of every weight at every call. LayerNorm then also runs in bf16 (its statistics are
    accumulated in fp32 by PyTorch's kernel); losses are computed in fp32 by the model.
    On a CPU without native bf16 the plain torch kernels run it, correctly but slower than fp32,
    and a warning says so once; ``strict=True`` raises there instead.
    """
    device = next(model.parameters()).device
    if not bf16_supported(device):
        if strict:
            raise RuntimeError("this device has no native bf16 support (AVX512-BF16/AMX or a bf16 GPU); use fp32")
        if device.type == "cpu":
            warn_bf16_slow()
    return model.to(torch.bfloat16)


# ------------------------------------------------------------------------------ ONNX
def _require_onnx() -> None:
    try:
        import onnx  # noqa: F401
        import onnxruntime  # noqa: F401
    except ImportError as exc:
        raise ImportError(f"{ONNX_INSTALL_HINT} ({exc.name} is missing)") from None


class _ExportWrapper(nn.Module):
    """Positional inputs -> tuple of outputs, the form ONNX export traces."""

    def __init__(self, model: nn.Module, outputs: tuple[str, ...], extra: tuple[str, ...]) -> None:
        super().__init__()
        self.model = model
        self.outputs = outputs
        self.extra = extra

    def forward(self, input_ids: Tensor, attention_mask: Tensor, token_type_ids: Tensor, *rest: Tensor) -> tuple[Tensor, ...]:
        kwargs = dict(zip(self.extra, rest))
        out = self.model(input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids, **kwargs)
        return tuple(getattr(out, name) for name in self.outputs)


def _example_inputs(model: nn.Module, config: AlbertConfig) -> tuple[Tensor, ...]:
    B, T, C = 2, 8, 2
    shape = (B, C, T) if model.choice_inputs else (B, T)
    ids = torch.randint(5, config.vocab_size, shape)
    mask = torch.ones(shape, dtype=torch.long)
    mask.view(-1, T)[0, -2:] = 0  # padding, so the traced graph keeps the masking ops
    tt = torch.zeros(shape, dtype=torch.long)
    if "masked_lm_positions" in model.export_inputs:
        return ids, mask, tt, torch.tensor([[1, 2], [3, 0]])
    return ids, mask, tt


def _fusable_attention_forward(
    self: Any, hidden_states: Tensor, attention_mask: Tensor | None = None, output_attentions: bool = False
) -> tuple[Tensor, Tensor | None]:
    """``AlbertAttention.forward`` spelled the way ONNX Runtime's BERT fusion recognizes it (export only).

    The same arithmetic as the torch block, in the order the fusion's pattern matcher walks:
    ``softmax(q k^T / sqrt(D) + mask) v`` as explicit MatMul / Div / Add / Softmax / MatMul (the
    SDPA export spells the scale as two Sqrt-Mul pairs it does not follow), and the residual add as
    ``attention_output + hidden_states``: in the first block ``hidden_states`` is the E -> H
    projection's own bias Add, which the matcher (taking the first Add parent) would follow instead
    of the attention output, leaving that block unfused.
    """
    B, T, _ = hidden_states.shape
    A, D = self.num_attention_heads, self.attention_head_size
    q = self.split_heads(self.query(hidden_states))
    k = self.split_heads(self.key(hidden_states))
    v = self.split_heads(self.value(hidden_states))
    scores = torch.matmul(q, k.transpose(-1, -2)) / math.sqrt(D)
    if attention_mask is not None:
        scores = scores + attention_mask
    context = torch.matmul(scores.softmax(dim=-1), v).transpose(1, 2).reshape(B, T, A * D)
    return self.LayerNorm(self.dense(context) + hidden_states), None


def _fusable_mask(attention_mask: Tensor | None, dtype: torch.dtype) -> Tensor | None:
    """The additive mask as ``(1 - mask) * min``: the spelling the fusion traces back to the graph's
    ``attention_mask`` input (0/1 masks, as the export's inputs are; same values as the torch model's)."""
    if attention_mask is None:
        return None
    if attention_mask.dim() != 2:
        return _extended_attention_mask(attention_mask, dtype)
    return (1.0 - attention_mask[:, None, None, :].to(dtype)) * torch.finfo(dtype).min


@contextlib.contextmanager
def _fusable_spelling(model: nn.Module) -> Iterator[None]:
    """While exporting ``model`` (a private copy): attention and mask in the spelling above."""
    import albertkit.modeling as modeling

    for module in model.modules():
        if isinstance(module, modeling.AlbertAttention):
            module.forward = types.MethodType(_fusable_attention_forward, module)
    saved = modeling._extended_attention_mask
    modeling._extended_attention_mask = _fusable_mask
    try:
        yield
    finally:
        modeling._extended_attention_mask = saved


def export_onnx(model: nn.Module, path: str | os.PathLike, *, int8: bool = False, opset: int = 17, fuse: bool = True) -> Path:
    """Write ``model`` as an ONNX graph with dynamic batch and sequence axes (and choices / positions).

        >>> export_onnx(AlbertForMaskedLM(cfg), "albert-mlm.onnx")  # doctest: +SKIP

    Inputs: ``input_ids``, ``attention_mask``, ``token_type_ids`` (int64, [B, T] or [B, C, T]) and, for
    the MLM heads, ``masked_lm_positions`` [B, P]. Outputs: the model's output fields (e.g. ``logits``).
    ``fuse=True`` (the default) runs ONNX Runtime's transformer optimizer on the graph
    (:func:`fuse_transformer_ops`: one Attention op per layer application, FastGelu), keeping the shared block's weights stored once. ``int8=True`` then applies ONNX
    Runtime's dynamic int8 quantization (:func:`quantize_onnx_int8`). The config is stored in the
    graph's metadata so :class:`OrtModel` can rebuild the output dataclass. Written atomically.
    """
    _require_onnx()
    import onnx

    from albertkit.utils import atomic_path

    cls_name = type(model).__name__
    if not getattr(model, "export_outputs", ()):
        raise TypeError(f"cannot export {cls_name}; one of: {', '.join(MODEL_CLASSES)}")
    extra, outputs = model.export_inputs, model.export_outputs
    model = copy.deepcopy(model).float().eval()
    wrapper = _ExportWrapper(model, outputs, extra)
    example = _example_inputs(model, model.config)
    inputs = ("input_ids", "attention_mask", "token_type_ids") + extra
    seq_axes = {0: "batch", 1: "choices", 2: "sequence"} if model.choice_inputs else {0: "batch", 1: "sequence"}
    dynamic_axes: dict[str, dict[int, str]] = {name: seq_axes for name in inputs[:3]}
    if extra:
        dynamic_axes["masked_lm_positions"] = {0: "batch", 1: "positions"}
    for name in outputs:
        if name in ("logits", "prediction_logits") and extra:
            dynamic_axes[name] = {0: "batch", 1: "positions"}
        elif name in ("last_hidden_state", "start_logits", "end_logits") or (name == "logits" and cls_name == "AlbertForTokenClassification"):
            dynamic_axes[name] = {0: "batch", 1: "sequence"}
        else:
            dynamic_axes[name] = {0: "batch"}
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp, torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with _fusable_spelling(model) if fuse else contextlib.nullcontext():
            torch.onnx.export(
                wrapper,
                example,
                str(tmp),
                input_names=list(inputs),
                output_names=list(outputs),
                dynamic_axes=dynamic_axes,
                opset_version=opset,
                dynamo=False,  # the TorchScript exporter handles the dynamic axes of this graph without a guard per shape
            )
        proto = onnx.load(str(tmp))
        _share_weights(proto)
        if fuse:
            proto = fuse_transformer_ops(proto, model.config)
        meta = {"albertkit_class": cls_name, "albertkit_config": model.config.to_json_string()}
        for key, value in meta.items():
            entry = proto.metadata_props.add()
            entry.key, entry.value = key, value
        onnx.save(proto, str(tmp))
        if int8:
            quantize_onnx_int8(tmp, tmp)
    return path


def fuse_transformer_ops(proto: Any, config: AlbertConfig, *, skip_layer_norm: bool = False) -> Any:
    """ONNX Runtime's transformer optimizer (``model_type="bert"``) on an exported ALBERT graph.

        >>> fused = fuse_transformer_ops(onnx.load("albert.onnx"), model.config)  # doctest: +SKIP

    Fuses each layer application's Q/K/V projections, scores, mask and softmax into one ``Attention``
    op (one [H, 3H] GEMM) and the FFN's GELU into ``FastGelu`` -- the graph ONNX Runtime's docs advise
    for BERT-like models, and the one its int8 quantizer turns into ``QAttention``. Unlike the docs'
    recipe, the residual adds and LayerNorms are not fused into ``SkipLayerNormalization`` unless
    ``skip_layer_norm=True``: ONNX Runtime 1.32's CPU kernel for it is slower than the Add, Add and
    LayerNormalization it replaces (4.2 vs 1.5 ms of CPU on [1024, 768], one thread; 12% of the CPU
    time of the whole int8 forward at 8 x 128, Zen 4). :class:`OrtModel` keeps the session from fusing
    them back. The raw 0/1 attention mask is kept (not the
    optimizer's default "length of the unpadded prefix"), so any mask means what it means in torch.
    The optimizer writes the concatenated Q/K/V weight once per Attention node; ALBERT's are one
    shared block, so identical initializers are merged again (:func:`_merge_identical_initializers`).
    Shapes are inferred first, so the int8 quantizer later sees every MatMul's float inputs.
    """
    import onnx
    from onnxruntime.transformers.fusion_options import FusionOptions
    from onnxruntime.transformers.optimizer import optimize_model

    proto = onnx.shape_inference.infer_shapes(proto)
    options = FusionOptions("bert")
    options.use_raw_attention_mask(True)
    options.enable_skip_layer_norm = options.enable_bias_skip_layer_norm = skip_layer_norm
    # From opset 20 the exporter writes gelu_new as Gelu(approximate="tanh"); the optimizer's bias fusion
    # would turn it into BiasGelu, which computes the erf GELU (measured: 2e-3 off the torch model).
    tanh_gelu = any(n.op_type == "Gelu" and any(a.name == "approximate" and a.s == b"tanh" for a in n.attribute) for n in proto.graph.node)
    if tanh_gelu:
        options.enable_bias_gelu = False
    # opt_level=0: the Python fusions only. ONNX Runtime's own graph optimizations run when a session
    # loads the file (for the CPU it runs on), and would here fold the tied decoder's Transpose of the
    # embedding table into a second copy of the table.
    fused = optimize_model(
        proto,
        model_type="bert",
        num_heads=config.num_attention_heads,
        hidden_size=config.hidden_size,
        optimization_options=options,
        opt_level=0,
    )
    stats = {k: v for k, v in fused.get_fused_operator_statistics().items() if v}
    logger.debug("ONNX Runtime transformer optimizer fused: %s", stats)
    fused.topological_sort()  # what its save_model_to_file does: fused nodes were appended at the end
    proto = fused.model
    if not any(o.domain == "com.microsoft" for o in proto.opset_import):
        proto.opset_import.add(domain="com.microsoft", version=1)
    _merge_identical_initializers(proto)
    return proto


def _merge_identical_initializers(proto: Any) -> None:
    """Make nodes that read byte-identical initializers read one of them (the others are dropped)."""
    import hashlib

    graph = proto.graph
    first: dict[tuple[Any, ...], str] = {}
    rename: dict[str, str] = {}
    for init in graph.initializer:
        if not init.raw_data:  # small constants stored as typed fields: not worth comparing
            continue
        key = (init.data_type, tuple(init.dims), hashlib.sha256(init.raw_data).digest())
        if key in first:
            rename[init.name] = first[key]
        else:
            first[key] = init.name
    if not rename:
        return
    outputs = {o.name for o in graph.output}
    rename = {k: v for k, v in rename.items() if k not in outputs}
    for node in graph.node:
        for i, name in enumerate(node.input):
            if name in rename:
                node.input[i] = rename[name]
    kept = [i for i in graph.initializer if i.name not in rename]
    del graph.initializer[:]
    graph.initializer.extend(kept)
    kept_names = {i.name for i in kept}
    infos = [v for v in graph.value_info if v.name not in rename or v.name in kept_names]
    del graph.value_info[:]
    graph.value_info.extend(infos)


def _share_weights(proto: Any) -> None:
    """Make every use of a shared weight read the one initializer, with nothing in between.

    ALBERT applies one block L times. The exporter stores its weights once but feeds layers 2..L
    through ``Identity`` nodes, behind which ONNX Runtime's quantizer cannot see a weight (it then
    quantizes only layer 1): those Identity nodes are removed. And the tied MLM decoder multiplies
    by the word-embedding table transposed, which the exporter folds into a second copy of the
    table (15 MB at albert-base): that copy becomes a Transpose node of the table, which ONNX
    Runtime folds once when the session loads.
    """
    import numpy as np
    from onnx import helper, numpy_helper

    graph = proto.graph
    names = {i.name for i in graph.initializer}
    alias = {n.output[0]: n.input[0] for n in graph.node if n.op_type == "Identity" and n.input[0] in names}
    outputs = {o.name for o in graph.output}
    alias = {k: v for k, v in alias.items() if k not in outputs}
    if alias:
        nodes = [n for n in graph.node if not (n.op_type == "Identity" and n.output[0] in alias)]
        for node in nodes:
            for i, name in enumerate(node.input):
                if name in alias:
                    node.input[i] = alias[name]
        del graph.node[:]
        graph.node.extend(nodes)
    by_shape: dict[tuple[int, ...], list[Any]] = {}
    for init in graph.initializer:
        if len(init.dims) == 2 and init.dims[0] != init.dims[1] and init.dims[0] * init.dims[1] >= 4096:
            by_shape.setdefault(tuple(init.dims), []).append(init)
    replaced: list[str] = []
    for shape, group in by_shape.items():
        for a in group:
            for b in by_shape.get(shape[::-1], []):
                if a.name in replaced or b.name in replaced or a.name > b.name:  # each pair once
                    continue
                if np.array_equal(numpy_helper.to_array(a), numpy_helper.to_array(b).T):
                    # keep the one named after a parameter (the embedding table), derive the other
                    table, copy_ = (b, a) if b.name.startswith("model.") else (a, b)
                    graph.node.insert(0, helper.make_node("Transpose", [table.name], [copy_.name], perm=[1, 0], name=f"{copy_.name}_shared"))
                    replaced.append(copy_.name)
    for name in replaced:
        graph.initializer.remove(next(i for i in graph.initializer if i.name == name))


def quantize_onnx_int8(
    src: str | os.PathLike, dst: str | os.PathLike, *, unsigned_weights: bool | None = None, nodes: Collection[str] | None = None
) -> Path:
    """ONNX Runtime dynamic int8 quantization of every weight MatMul (per-channel 8-bit weights, uint8 activations).

        >>> quantize_onnx_int8("albert.onnx", "albert-int8.onnx")  # doctest: +SKIP

    ``quant_pre_process`` runs first: without its shape inference ONNX Runtime cannot see that the
    encoder's MatMul inputs are float and quantizes only a handful of them. The weights are int8
    (symmetric) on CPUs with VNNI. Without VNNI, ONNX Runtime's u8 x s8 kernels sum products in
    saturating 16-bit pairs (error 0.43 instead of 0.05 on a test model); its docs advise 7-bit
    weights (``reduce_range``) or the U8U8 format, whose kernels widen to 16 bits before multiplying.
    ``unsigned_weights`` (default: no VNNI) takes U8U8: uint8 weights per channel with a zero point,
    all 8 bits. With 7-bit weights the 33.4% albert-mini-en's fill-mask top-1 fell below the 97%
    bound (96.4% of 166 clear sentences in tests/test_cpu_paths.py, forced avx2); with U8U8 it passes.
    Only the shared block's weight MatMuls (6 per layer application) are quantized, each weight once;
    the embeddings, the E -> H mapping and the heads stay fp32, the tied MLM decoder reading the one
    fp32 word-embedding table through a Transpose (it decides the top-1 prediction). ``nodes``: only
    these of the block's nodes (by name; default all), to measure one group's share of the error
    (``bench/int8_error_sources.py``).
    """
    _require_onnx()
    from onnxruntime.quantization import QuantType, quantize_dynamic
    from onnxruntime.quantization.shape_inference import quant_pre_process

    if unsigned_weights is None:
        unsigned_weights = not cpu_capability().vnni
    src, dst = Path(src), Path(dst)
    with tempfile.TemporaryDirectory() as tmpdir:
        prepared, out = Path(tmpdir) / "prepared.onnx", Path(tmpdir) / "int8.onnx"
        # Shape inference only: ONNX Runtime's graph optimizer would fold the decoder's Transpose
        # back into a second copy of the embedding table; the session optimizes at load anyway.
        quant_pre_process(str(src), str(prepared), skip_optimization=True, skip_symbolic_shape=True)
        # The shared block's MatMuls only, as quantize_int8 does in torch: keeping the E -> H mapping
        # and the heads in fp32 costs 0.2 M weights and lifts fill-mask top-1 agreement with fp32
        # from 96.5% to 98.5% with 7-bit weights (albert-mini-en, 200 real sentences).
        import onnx

        # In a fused graph (export_onnx's default) every Attention node is a block's fused Q/K/V.
        block = [
            n.name
            for n in onnx.load(str(prepared)).graph.node
            if (n.op_type == "MatMul" and "/albert_layers" in n.name) or n.op_type == "Attention"
        ]
        if nodes is not None:
            unknown = sorted(set(nodes) - set(block))
            if unknown:
                raise ValueError(f"{src}: not weight MatMul/Attention nodes of the shared block: {', '.join(unknown)}")
            block = [n for n in block if n in nodes]
        quantize_dynamic(
            str(prepared),
            str(out),
            weight_type=QuantType.QUInt8 if unsigned_weights else QuantType.QInt8,
            per_channel=True,
            reduce_range=False,
            op_types_to_quantize=["MatMul", "Attention"],
            nodes_to_quantize=block,
        )
        os.replace(out, dst)
    logger.debug("%s: int8 with %s weights", dst, "uint8" if unsigned_weights else "int8")
    return dst


def ort_session_options(threads: int | None = None) -> Any:
    """ONNX Runtime CPU session options as albertkit runs them beside torch (bench's ORT peers too).

        >>> session = ort.InferenceSession(path, ort_session_options())   # doctest: +SKIP
    """
    _require_onnx()
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    # Pinned to torch's thread count, so the two share the cores alike (and are compared alike).
    options.intra_op_num_threads = threads or torch.get_num_threads()
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    # No spin-waiting after a run: torch (tokenizer, post-processing, the next model) runs right
    # after on the same cores, and ORT's spinning workers would take their time slices.
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    return options


class OrtModel:
    """An exported graph run by ONNX Runtime, called like the torch model it came from.

        >>> ort_model = OrtModel("albert-mlm.onnx")                       # doctest: +SKIP
        >>> ort_model(input_ids, attention_mask=mask).logits.shape        # doctest: +SKIP

    Returns the same output dataclass as the torch class (torch tensors). Arguments the graph does
    not take (labels, output_attentions...) raise, as do missing mandatory ones.
    """

    def __init__(self, path: str | os.PathLike, *, threads: int | None = None) -> None:
        _require_onnx()
        import onnxruntime as ort

        self.path = Path(path)
        if not self.path.is_file():
            raise FileNotFoundError(f"{self.path}: no such ONNX file")
        options = ort_session_options(threads)
        # ONNX Runtime's own SkipLayerNormFusion would put back the SkipLayerNormalization that
        # fuse_transformer_ops leaves out: slower on CPU than the Add + LayerNormalization it replaces.
        self.session = ort.InferenceSession(
            str(self.path), options, providers=["CPUExecutionProvider"], disabled_optimizers=list(SLOW_CPU_FUSIONS)
        )
        meta = self.session.get_modelmeta().custom_metadata_map
        if "albertkit_class" not in meta:
            raise ValueError(f"{self.path}: not exported by albertkit (no albertkit_class metadata)")
        self.class_name = meta["albertkit_class"]
        self.config = AlbertConfig.from_dict(__import__("json").loads(meta["albertkit_config"]))
        self.input_names = [i.name for i in self.session.get_inputs()]
        self.output_names = [o.name for o in self.session.get_outputs()]
        self._output_cls = MODEL_CLASSES[self.class_name].output_class

    # torch-model look-alikes used by pipelines
    device = torch.device("cpu")
    dtype = torch.float32
    training = False

    def eval(self) -> "OrtModel":
        return self

    def to(self, *args: Any, **kwargs: Any) -> "OrtModel":
        return self  # the session lives on the CPU; dtype is fixed at export

    def __call__(
        self,
        input_ids: Tensor,
        attention_mask: Tensor | None = None,
        token_type_ids: Tensor | None = None,
        masked_lm_positions: Tensor | None = None,
        **unused: Any,
    ) -> Any:
        unused.pop("return_dict", None)
        if unused:
            raise TypeError(f"the ONNX Runtime backend does not take: {', '.join(sorted(unused))}")
        ids = input_ids.to(torch.long)
        feeds = {
            "input_ids": ids,
            "attention_mask": torch.ones_like(ids) if attention_mask is None else attention_mask.to(torch.long),
            "token_type_ids": torch.zeros_like(ids) if token_type_ids is None else token_type_ids.to(torch.long),
        }
        if "masked_lm_positions" in self.input_names:
            if masked_lm_positions is None:  # every position, as the torch model without positions
                masked_lm_positions = torch.arange(ids.shape[-1]).expand(ids.shape[0], -1)
            feeds["masked_lm_positions"] = masked_lm_positions.to(torch.long)
        elif masked_lm_positions is not None:
            raise TypeError(f"{self.class_name} does not take masked_lm_positions")
        results = self.session.run(self.output_names, {k: v.contiguous().numpy() for k, v in feeds.items()})
        return self._output_cls(**{name: torch.from_numpy(value) for name, value in zip(self.output_names, results)})

    def __repr__(self) -> str:
        return f"OrtModel({self.class_name}, {str(self.path)!r})"


# ----------------------------------------------------------------------------- entry
def auto_mode(device: torch.device | str = "cpu") -> str:
    """The fastest path that is correct on this device, by capability class (what ``"auto"`` picks).

    bf16 where bf16 GEMMs run natively (AMX, AVX512-BF16, a bf16 GPU); on an x86 CPU without them,
    torch's int8 (fbgemm runs int8 GEMMs with AVX2 or AVX-512, and keeps the weights to 7 bits
    where u8 x s8 products could saturate: :func:`~albertkit.quantization.int8_weight_bits`); fp32 elsewhere (x86 without AVX2,
    aarch64 without bf16, other devices). Each meets the agreement bounds the tests assert
    (tests/test_cpu_paths.py).
    """
    device = torch.device(device)
    if bf16_supported(device):
        return "bf16"
    if device.type != "cpu":
        return "fp32"
    cap = cpu_capability()
    if cap.level in ("avx2", "avx512", "avx512_bf16", "amx") and "fbgemm" in torch.backends.quantized.supported_engines:
        return "int8"
    return "fp32"


def optimize(
    model: nn.Module,
    mode: str = "fp32",
    *,
    cache_dir: str | os.PathLike | None = None,
    calibration: Iterable[Mapping[str, Tensor]] | None = None,
) -> Any:
    """``model`` on the fast path ``mode`` (one of :data:`MODES`); the hook pipelines and the CLI use.

        >>> fast = optimize(model, "auto")  # bf16 with AMX / AVX512-BF16, int8 on AVX2  # doctest: +SKIP

    ``"fp32"`` returns the model itself in eval mode with the fused oneDNN CPU block swapped in
    (:mod:`albertkit.fused`, same parameters and state-dict keys); ``"bf16"`` casts it in place (fused
    too where the CPU has native bf16); ``"int8"`` returns a quantized copy; ``"onnx"`` /
    ``"onnx-int8"`` export it (into ``cache_dir`` or a temporary folder kept for the process's life)
    and return an :class:`OrtModel`; ``"auto"`` picks by :func:`auto_mode` and logs its choice.
    ``calibration``: batches of text like the text to come (``input_ids``, ``attention_mask``;
    :func:`~albertkit.quantization.calibration_from_texts` makes them), which set int8's smoothing
    (:func:`~albertkit.quantization.quantize_int8`); for ``"int8"``, or ``"auto"`` where it picks int8.
    """
    if mode not in MODES:
        raise ValueError(f"unknown fast path {mode!r}; use one of {', '.join(MODES)}")
    if calibration is not None and mode not in ("int8", "auto"):
        raise ValueError(f"calibration applies to the int8 path only, not {mode!r}")
    model.eval()
    if mode == "auto":
        device = next(model.parameters()).device
        mode = auto_mode(device)
        where = cpu_capability().describe() if device.type == "cpu" else str(device)
        logger.info("fast path auto -> %s (CPU class %s)", mode, where)
        if calibration is not None and mode != "int8":
            logger.info("calibration unused: the %s path needs none", mode)
    if mode == "fp32":
        return fuse_cpu_layers(model)
    if mode == "bf16":
        return fuse_cpu_layers(to_bf16(model))
    if mode == "int8":
        # On a copy without the fused block, whose packed GEMMs would hide the Linears from smoothing's
        # calibration hooks (and from the quantizer); the caller's model stays as it was.
        return quantize_int8(unfuse_cpu_layers(copy.deepcopy(model)), inplace=True, calibration=calibration)
    folder = Path(cache_dir) if cache_dir is not None else Path(tempfile.mkdtemp(prefix="albertkit-onnx-"))
    path = export_onnx(model, folder / f"{type(model).__name__}{'-int8' if mode == 'onnx-int8' else ''}.onnx", int8=mode == "onnx-int8")
    return OrtModel(path)
