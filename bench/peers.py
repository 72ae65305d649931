"""The peers albertkit is measured against, each set up the way its own documentation advises.

* transformers fp32 and bf16: ``from_pretrained(folder, dtype=..., attn_implementation="sdpa")``.
* transformers int8: ``torch.ao.quantization.quantize_dynamic(model, {nn.Linear}, dtype=torch.qint8)``
  (PyTorch's dynamic-quantization recipe for BERT; the same fbgemm kernels as albertkit's torch int8).
* ONNX Runtime fp32: the transformers model exported with ``torch.onnx.export`` (eager attention: the
  graph pattern ONNX Runtime's transformer optimizer fuses), then
  ``onnxruntime.transformers.optimizer.optimize_model(model_type="bert")``. There is no "albert"
  model type; the BERT fusions apply to ALBERT's graph (fused Attention, SkipLayerNormalization and
  FastGelu; the fusion counts are reported): 11 of the 12 attention blocks fuse, the first one's
  Q/K/V read the E -> H projection's bias Add where the BERT pattern expects a LayerNorm. The
  session runs with all graph optimizations.
* ONNX Runtime int8: ``quant_pre_process`` on the export (symbolic shape inference needs the
  standard ops, so it runs before the transformer optimizer), the optimizer, then ``quantize_dynamic`` (int8 weights; ``reduce_range`` where the CPU lacks VNNI,
  as ONNX Runtime's quantization docs advise for u8 x s8 on AVX2/AVX-512 without VNNI).
* Every ONNX Runtime session: ``intra_op_num_threads`` pinned to torch's thread count, one inter-op
  thread, and ``session.intra_op.allow_spinning = 0`` because torch runs on the same cores next.

    >>> from bench.peers import transformers_model, ort_peers
    >>> hf = transformers_model("AlbertModel", folder, torch.bfloat16)        # doctest: +SKIP
    >>> fp32, int8, stats = ort_peers(folder, workdir)                        # doctest: +SKIP
"""

from __future__ import annotations

import copy
import logging
import warnings
from pathlib import Path
from typing import Any, Callable

import torch

__all__ = ["transformers_model", "transformers_int8", "ort_session", "ort_peers", "OrtRunner", "save_checkpoint"]

logger = logging.getLogger(__name__)


def save_checkpoint(folder: Path, spiece: Path, cls_name: str = "AlbertForPreTraining", seed: int = 0, **overrides: Any) -> Path:
    """A random albert-base-v2-shaped transformers checkpoint (default init) with the real vocabulary,
    saved where both libraries load it from with their own ``from_pretrained``."""
    import json
    import shutil

    import transformers

    from albertkit import AlbertConfig

    transformers.logging.set_verbosity_error()
    cfg = transformers.AlbertConfig(**{**AlbertConfig.from_name("albert-base-v2").to_dict(), **overrides})
    torch.manual_seed(seed)
    getattr(transformers, cls_name)(cfg).eval().save_pretrained(str(folder))
    shutil.copy(spiece, folder / "spiece.model")
    (folder / "tokenizer_config.json").write_text(
        json.dumps({"do_lower_case": True, "keep_accents": False, "remove_space": True, "model_max_length": 512})
    )
    return folder


def transformers_model(cls_name: str, folder: Path, dtype: torch.dtype = torch.float32, attn: str = "sdpa") -> torch.nn.Module:
    """transformers' ``cls_name`` loaded the documented way (eval mode)."""
    import transformers

    transformers.logging.set_verbosity_error()
    return getattr(transformers, cls_name).from_pretrained(str(folder), dtype=dtype, attn_implementation=attn).eval()


def transformers_int8(model: torch.nn.Module, encoder_only: bool = False) -> torch.nn.Module:
    """PyTorch's dynamic int8 quantization (a copy).

    ``encoder_only=False``: every nn.Linear, per-tensor (the recipe of PyTorch's BERT tutorial).
    ``encoder_only=True``: only the shared block's Linears, per channel -- the layers albertkit's
    int8 quantizes (the E -> H mapping, pooler and heads stay fp32), the recipe a user turns to when
    the first one misses the accuracy bound.
    """
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch 2.13 marks torch.ao.quantization deprecated
        from torch.ao.quantization import per_channel_dynamic_qconfig, quantize_dynamic

        model = copy.deepcopy(model).float().eval()
        if not encoder_only:
            return quantize_dynamic(model, {torch.nn.Linear}, dtype=torch.qint8)
        spec = {n: per_channel_dynamic_qconfig for n, m in model.named_modules() if type(m) is torch.nn.Linear and "albert_layer_groups" in n}
        return quantize_dynamic(model, spec, dtype=torch.qint8)


def ort_session(path: Path, threads: int | None = None) -> Any:
    import onnxruntime as ort

    from albertkit.fast import ort_session_options  # the same settings as albertkit's own sessions

    return ort.InferenceSession(str(path), ort_session_options(threads), providers=["CPUExecutionProvider"])


class OrtRunner:
    """Calls a session like ``model(input_ids=..., attention_mask=..., token_type_ids=...)``; returns
    the first output (the last hidden state) as a torch tensor."""

    def __init__(self, session: Any) -> None:
        self.session = session
        self.inputs = [i.name for i in session.get_inputs()]

    def __call__(self, **feeds: torch.Tensor) -> torch.Tensor:
        out = self.session.run(None, {k: v.numpy() for k, v in feeds.items() if k in self.inputs})
        return torch.from_numpy(out[0])


def ort_peers(
    folder: Path, workdir: Path, cls_name: str = "AlbertModel", vnni: bool | None = None
) -> tuple[OrtRunner, OrtRunner, OrtRunner, str]:
    """``_ort_peers`` run inside ``workdir``: ONNX Runtime's quantizer leaves temporary files
    (sym_shape_infer_temp.onnx, *.data) in the working directory."""
    import contextlib

    folder, workdir = Path(folder).resolve(), Path(workdir).resolve()
    with contextlib.chdir(workdir):
        return _ort_peers(folder=folder, workdir=workdir, cls_name=cls_name, vnni=vnni)


def _ort_peers(
    folder: Path, workdir: Path, cls_name: str = "AlbertModel", vnni: bool | None = None
) -> tuple[OrtRunner, OrtRunner, OrtRunner, str]:
    """(ORT fp32, ORT int8, ORT int8 of the encoder only, a line saying what the optimizer fused and
    what the quantizer quantized) for transformers' ``cls_name`` (``AlbertModel``: last hidden state;
    ``AlbertForMaskedLM``: logits).

    "int8" quantizes every MatMul/Attention (the docs' recipe); "encoder only" leaves the MatMuls
    with the embedding width or the vocabulary on a side (E -> H mapping, MLM head) in fp32, as
    albertkit's int8 does, via ``quantize_dynamic(nodes_to_exclude=...)``.
    """
    import onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic
    from onnxruntime.quantization.shape_inference import quant_pre_process
    from onnxruntime.transformers.optimizer import optimize_model

    from albertkit.cpu import cpu_capability

    model = transformers_model(cls_name, folder, attn="eager")  # the pattern the BERT fusions match
    cfg = model.config
    x = {
        "input_ids": torch.randint(5, cfg.vocab_size, (2, 8)),
        "attention_mask": torch.tensor([[1] * 8, [1] * 6 + [0] * 2]),
        "token_type_ids": torch.zeros(2, 8, dtype=torch.long),
    }
    axes = {0: "batch", 1: "sequence"}
    outputs = {"AlbertModel": ["last_hidden_state", "pooler_output"], "AlbertForMaskedLM": ["logits"]}[cls_name]
    raw, opt, pre, int8 = (workdir / f"hf-{cls_name}-{n}.onnx" for n in ("raw", "opt", "pre", "int8"))
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            model, (x["input_ids"], x["attention_mask"], x["token_type_ids"]), str(raw),
            input_names=list(x), output_names=outputs,
            dynamic_axes={**{k: axes for k in x}, outputs[0]: axes, **({"pooler_output": {0: "batch"}} if len(outputs) > 1 else {})},
            opset_version=17, dynamo=False,
        )
    # Symbolic shape inference (what lets the quantizer see every MatMul's float inputs) needs the
    # standard ops, so quant_pre_process runs on the export and the transformer optimizer after it.
    quant_pre_process(str(raw), str(pre), skip_optimization=True, skip_symbolic_shape=True)
    optimized = optimize_model(str(pre), model_type="bert", num_heads=cfg.num_attention_heads, hidden_size=cfg.hidden_size)
    fused = {k: v for k, v in optimized.get_fused_operator_statistics().items() if v}
    optimized.save_model_to_file(str(opt))
    reduce_range = not (cpu_capability().vnni if vnni is None else vnni)
    quantize_dynamic(str(opt), str(int8), weight_type=QuantType.QInt8, per_channel=True, reduce_range=reduce_range)
    graph = onnx.load(str(opt)).graph
    shapes = {i.name: tuple(i.dims) for i in graph.initializer}
    edge = {cfg.embedding_size, cfg.vocab_size}
    exclude = [n.name for n in graph.node if n.op_type in ("MatMul", "Gemm") and edge & set(shapes.get(n.input[1], ()))]
    enc8 = workdir / f"hf-{cls_name}-int8-encoder.onnx"
    quantize_dynamic(str(opt), str(enc8), weight_type=QuantType.QInt8, per_channel=True, reduce_range=reduce_range,
                     nodes_to_exclude=exclude)
    ops = [n.op_type for n in onnx.load(str(int8)).graph.node]
    quantized = sum(op in ("MatMulInteger", "DynamicQuantizeMatMul", "MatMulIntegerToFloat", "QAttention") for op in ops)
    left = ops.count("MatMul")
    note = (
        f"ORT optimizer (bert) fused {', '.join(f'{k} {v}' for k, v in fused.items())}; "
        f"int8: {quantized} quantized MatMul/Attention nodes, {left} fp32 MatMul left, reduce_range={reduce_range}; "
        f"encoder-only int8 keeps {len(exclude)} more fp32"
    )
    return OrtRunner(ort_session(opt)), OrtRunner(ort_session(int8)), OrtRunner(ort_session(enc8)), note


def last_hidden(fn: Callable[..., Any]) -> Callable[..., torch.Tensor]:
    """``fn(**inputs)`` -> its last hidden state (torch models return an output object, ORT a tensor)."""

    def call(**inputs: torch.Tensor) -> torch.Tensor:
        out = fn(**inputs)
        return out if isinstance(out, torch.Tensor) else out.last_hidden_state

    return call
