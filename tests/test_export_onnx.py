"""ONNX export (every head, dynamic axes) and the ONNX Runtime backend agree with the torch model."""

from __future__ import annotations

import pytest
import torch

import albertkit.modeling as am
from albertkit import AlbertConfig
from conftest import require_reference

require_reference("onnx")
require_reference("onnxruntime")

from albertkit.fast import OrtModel, export_onnx, optimize  # noqa: E402

CLASSES = [
    "AlbertModel",
    "AlbertForPreTraining",
    "AlbertForMaskedLM",
    "AlbertForSequenceClassification",
    "AlbertForTokenClassification",
    "AlbertForQuestionAnswering",
    "AlbertForMultipleChoice",
]


def batch(cfg: AlbertConfig, B: int, T: int, choices: int | None = None, seed: int = 0) -> dict:
    g = torch.Generator().manual_seed(seed)
    shape = (B, choices, T) if choices else (B, T)
    ids = torch.randint(5, cfg.vocab_size, shape, generator=g)
    mask = torch.ones(shape, dtype=torch.long)
    mask.view(-1, T)[0, T // 2 :] = 0
    tt = torch.zeros(shape, dtype=torch.long)
    tt[..., T // 3 :] = 1
    return {"input_ids": ids, "attention_mask": mask, "token_type_ids": tt}


@pytest.mark.parametrize("name", CLASSES)
def test_export_every_head_with_dynamic_axes(name, tmp_path, tiny_config):
    torch.manual_seed(0)
    model = getattr(am, name)(tiny_config).eval()
    path = export_onnx(model, tmp_path / f"{name}.onnx")
    ort_model = OrtModel(path)
    assert ort_model.class_name == name and ort_model.config.hidden_size == tiny_config.hidden_size
    choices = 3 if name == "AlbertForMultipleChoice" else None
    # Shapes other than the export example (2 x 8): batch and sequence axes must be dynamic.
    for B, T in ((1, 5), (4, 13), (1, 1)):
        b = batch(tiny_config, B, T, choices)
        b["attention_mask"].view(-1, T)[:, 0] = 1  # keep every row non-empty
        with torch.no_grad():
            ref = model(**b)
        got = ort_model(**b)
        assert type(got) is type(ref)
        for key in ref.keys():
            torch.testing.assert_close(got[key], ref[key], atol=1e-5, rtol=1e-4, msg=f"{name}.{key} at {B}x{T}")


def test_masked_lm_positions_input(tmp_path, tiny_config):
    torch.manual_seed(0)
    model = am.AlbertForMaskedLM(tiny_config).eval()
    ort_model = OrtModel(export_onnx(model, tmp_path / "mlm.onnx"))
    b = batch(tiny_config, 3, 10)
    positions = torch.tensor([[1, 4, 0], [2, 3, 5], [9, 0, 0]])
    with torch.no_grad():
        ref = model(**b, masked_lm_positions=positions).logits
    torch.testing.assert_close(ort_model(**b, masked_lm_positions=positions).logits, ref, atol=1e-5, rtol=1e-4)
    assert ort_model(**b).logits.shape == (3, 10, tiny_config.vocab_size)  # no positions: every token
    with pytest.raises(TypeError, match="labels"):
        ort_model(**b, labels=b["input_ids"])


def test_int8_export_close_to_fp32(tmp_path):
    cfg = AlbertConfig.from_name("tiny", hidden_size=64, num_attention_heads=4, intermediate_size=128, initializer_range=0.1)
    torch.manual_seed(0)
    model = am.AlbertForMaskedLM(cfg).eval()
    fp32 = OrtModel(export_onnx(model, tmp_path / "fp32.onnx"))
    int8 = OrtModel(export_onnx(model, tmp_path / "int8.onnx", int8=True))
    import onnx

    ops = {node.op_type for node in onnx.load(str(tmp_path / "int8.onnx")).graph.node}
    assert "DynamicQuantizeLinear" in ops and ("MatMulInteger" in ops or "DynamicQuantizeMatMul" in ops), ops
    b = batch(cfg, 8, 16)
    ref, got = fp32(**b).logits, int8(**b).logits
    err = (got - ref).abs().max()
    from albertkit.cpu import cpu_capability

    # All 8 bits either way: int8 weights with VNNI, uint8 (U8U8 kernels, no saturation) without.
    assert cpu_capability().vnni in (True, False) and 0 < err < 0.2 * ref.std()
    top = ref.topk(2, -1).values
    decided = (top[..., 0] - top[..., 1]) > 2 * err  # top-1 decisions the error bound cannot flip
    assert decided.sum() > 20
    assert (ref.argmax(-1) == got.argmax(-1))[decided].all()


def test_optimize_onnx_mode(tmp_path, tiny_config):
    model = am.AlbertForSequenceClassification(tiny_config)
    fast = optimize(model, "onnx", cache_dir=tmp_path)
    assert isinstance(fast, OrtModel) and (tmp_path / "AlbertForSequenceClassification.onnx").is_file()
    b = batch(tiny_config, 2, 6)
    with torch.no_grad():
        torch.testing.assert_close(fast(**b).logits, model(**b).logits, atol=1e-5, rtol=1e-4)


def test_cli_export(tmp_path, tiny_config):
    from albertkit.cli import main

    torch.manual_seed(0)
    model = am.AlbertForMaskedLM(tiny_config)
    model.save_pretrained(str(tmp_path / "m"))
    out = tmp_path / "out" / "m.onnx"
    assert main(["export", "onnx", str(tmp_path / "m"), str(out), "--task", "fill-mask"]) == 0
    b = batch(tiny_config, 2, 7)
    with torch.no_grad():
        torch.testing.assert_close(OrtModel(out)(**b).logits, model.eval()(**b).logits, atol=1e-5, rtol=1e-4)
    import onnx

    assert "com.microsoft" in {n.domain for n in onnx.load(str(out)).graph.node}  # ONNX Runtime's fused ops
    plain = tmp_path / "out" / "plain.onnx"
    assert main(["export", "onnx", str(tmp_path / "m"), str(plain), "--task", "fill-mask", "--plain"]) == 0
    assert {n.domain for n in onnx.load(str(plain)).graph.node} <= {"", "ai.onnx"}
    assert main(["export", "onnx", str(tmp_path / "m"), str(tmp_path / "m.txt")]) == 2
    assert main(["export", "onnx", str(tmp_path / "missing"), str(out)]) == 2


def test_not_an_albertkit_graph(tmp_path):
    import onnx
    from onnx import TensorProto, helper

    graph = helper.make_graph(
        [helper.make_node("Identity", ["x"], ["y"])], "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1])], [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1])],
    )
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), str(tmp_path / "x.onnx"))
    with pytest.raises(ValueError, match="not exported by albertkit"):
        OrtModel(tmp_path / "x.onnx")
    with pytest.raises(FileNotFoundError):
        OrtModel(tmp_path / "nope.onnx")


def _quantized_weights(path) -> dict:
    import onnx
    from onnx import numpy_helper

    graph = onnx.load(str(path)).graph
    inits = {i.name: numpy_helper.to_array(i) for i in graph.initializer}
    int8_ops = ("MatMulInteger", "QAttention")  # weight is input 1 of both
    return {n.input[1]: inits[n.input[1]] for n in graph.node if n.op_type in int8_ops and n.input[1] in inits}


@pytest.mark.parametrize("forced", [None, "avx2"])
def test_int8_export_quantizes_every_shared_weight_once(tmp_path, forced, monkeypatch):
    """Every weight MatMul of every layer application is int8 (not only layer 1), each shared weight is stored
    once, the tied decoder reads the one fp32 embedding table, and the weight format follows VNNI."""
    import onnx

    import albertkit.cpu as cpu

    if forced:
        monkeypatch.setenv(cpu.OVERRIDE_ENV, forced)
    cfg = AlbertConfig.from_name("tiny", hidden_size=64, num_attention_heads=4, intermediate_size=128, embedding_size=32,
                                 vocab_size=1000, num_hidden_layers=3)
    torch.manual_seed(0)
    model = am.AlbertForMaskedLM(cfg).eval()
    fp32_path = export_onnx(model, tmp_path / "fp32.onnx")
    int8_path = export_onnx(model, tmp_path / "int8.onnx", int8=True)
    graph = onnx.load(str(int8_path)).graph
    ops = [n.op_type for n in graph.node]
    # Per layer application: one QAttention (Q, K, V as one GEMM) and 3 MatMuls (dense, FFN in and
    # out); E -> H and the heads stay fp32
    assert ops.count("QAttention") == cfg.num_hidden_layers, ops.count("QAttention")
    assert ops.count("MatMulInteger") == 3 * cfg.num_hidden_layers, ops.count("MatMulInteger")
    weights = _quantized_weights(int8_path)
    assert len(weights) == 4  # the shared block's weights once ([H, 3H] Q/K/V, dense, FFN in, out), not once per layer
    tables = [i for i in graph.initializer if sorted(i.dims) == sorted([cfg.vocab_size, cfg.embedding_size])]
    assert len(tables) == 1, [i.name for i in tables]  # no transposed copy of the embedding table
    assert len(onnx.load(str(fp32_path)).graph.initializer) < len(list(model.state_dict()))
    # int8 weights with VNNI (symmetric, peak 127); uint8 without (per channel with a zero point,
    # U8U8 kernels: no 16-bit saturation), every channel spanning all 8 bits
    dtypes = {w.dtype.name for w in weights.values()}
    if cpu.cpu_capability().vnni:
        assert dtypes == {"int8"} and max(int(abs(w.astype(int)).max()) for w in weights.values()) == 127
    else:
        assert dtypes == {"uint8"} and all(int(w.min()) == 0 and int(w.max()) == 255 for w in weights.values())
    b = batch(cfg, 4, 11)
    ref, got = OrtModel(fp32_path)(**b).logits, OrtModel(int8_path)(**b).logits
    cos = torch.nn.functional.cosine_similarity(got.flatten(1), ref.flatten(1))
    assert cos.min() > 0.99, cos


def test_int8_export_of_chosen_nodes_only(tmp_path):
    """quantize_onnx_int8(nodes=...) quantizes those of the block's nodes and no others; a name that
    is not one of them is refused by name."""
    import onnx

    from albertkit.fast import quantize_onnx_int8

    cfg = AlbertConfig.from_name("tiny", hidden_size=64, num_attention_heads=4, intermediate_size=128, embedding_size=32,
                                 vocab_size=1000, num_hidden_layers=3)
    torch.manual_seed(0)
    fp32_path = export_onnx(am.AlbertForMaskedLM(cfg).eval(), tmp_path / "fp32.onnx")
    ffn = [n.name for n in onnx.load(str(fp32_path)).graph.node if n.op_type == "MatMul" and "/ffn/" in n.name]
    assert len(ffn) == 1  # the first layer application's FFN-in MatMul (the others are ffn_1, ffn_2)
    ops = _op_counts(quantize_onnx_int8(fp32_path, tmp_path / "ffn.onnx", nodes=ffn))
    assert ops["MatMulInteger"] == 1 and ops["QAttention"] == 0
    with pytest.raises(ValueError, match="not weight MatMul/Attention nodes of the shared block: nope"):
        quantize_onnx_int8(fp32_path, tmp_path / "bad.onnx", nodes=["nope"])


def _op_counts(path) -> dict[str, int]:
    import collections

    import onnx

    return collections.Counter(n.op_type for n in onnx.load(str(path)).graph.node)


def _transformers_pair(tmp_path, **overrides):
    """A random transformers AlbertModel saved and loaded back by albertkit (the outside reference)."""
    transformers = require_reference("transformers")
    transformers.logging.set_verbosity_error()
    cfg = transformers.AlbertConfig(**{**AlbertConfig.from_name("tiny").to_dict(), **overrides})
    torch.manual_seed(0)
    hf = transformers.AlbertModel(cfg, add_pooling_layer=True).eval()
    hf.save_pretrained(str(tmp_path / "hf"))
    return hf, am.AlbertModel.from_pretrained(str(tmp_path / "hf")).eval()


def test_fused_export_every_layer_matches_transformers(tmp_path):
    """ONNX Runtime's transformer optimizer fuses every layer application (the first one included) into one
    Attention op and the GELU into FastGelu, and leaves the residual LayerNorms unfused (ORT's CPU
    SkipLayerNormalization is the slower one); the fused Q/K/V weight is stored once; and the graph still matches transformers to 1e-4 with padding anywhere
    (left, right, holes: the raw 0/1 mask is kept, not the optimizer's default prefix length)."""
    hf, ours = _transformers_pair(tmp_path, hidden_size=64, num_attention_heads=4, intermediate_size=128,
                                  embedding_size=32, num_hidden_layers=3)
    path = export_onnx(ours, tmp_path / "fused.onnx")
    ops = _op_counts(path)
    L = hf.config.num_hidden_layers
    assert ops["Attention"] == L and ops["FastGelu"] == L, ops
    assert ops["SkipLayerNormalization"] == 0 and ops["LayerNormalization"] == 2 * L + 1, ops  # + the embeddings' one
    assert ops["Softmax"] == 0 and ops["MatMul"] == 3 * L + 1, ops  # dense, FFN in, out per layer; E -> H
    import onnx

    qkv = [i for i in onnx.load(str(path)).graph.initializer if list(i.dims) == [64, 3 * 64]]
    assert len(qkv) == 1, [i.name for i in qkv]
    b = batch(hf.config, 4, 12)
    b["attention_mask"][1, :5] = 0  # left padding
    b["attention_mask"][2, 3:6] = 0  # a hole
    with torch.no_grad():
        ref = hf(**b)
    got = OrtModel(path)(**b)
    keep = b["attention_mask"].bool()
    torch.testing.assert_close(got.last_hidden_state[keep], ref.last_hidden_state[keep], atol=1e-4, rtol=1e-4)
    torch.testing.assert_close(got.pooler_output, ref.pooler_output, atol=1e-4, rtol=1e-4)


@pytest.mark.parametrize("opset", [14, 20])
def test_fused_export_other_opsets(tmp_path, opset):
    """Opset 14 (LayerNorm decomposed) still fuses; at opset 20 gelu_new is exported as Gelu(tanh), which must
    not become the erf BiasGelu (large weights, so a GELU mismatch shows)."""
    cfg = AlbertConfig.from_name("tiny", hidden_size=64, num_attention_heads=4, intermediate_size=128, num_hidden_layers=2,
                                 initializer_range=0.5)
    torch.manual_seed(0)
    model = am.AlbertForMaskedLM(cfg).eval()
    path = export_onnx(model, tmp_path / f"op{opset}.onnx", opset=opset)
    assert _op_counts(path)["Attention"] == 2
    b = batch(cfg, 2, 9)
    with torch.no_grad():
        ref = model(**b).logits
    torch.testing.assert_close(OrtModel(path)(**b).logits, ref, atol=1e-4 * ref.abs().max().item(), rtol=1e-4)


def test_unfused_export_is_plain_onnx(tmp_path, tiny_config):
    """``fuse=False``: standard ONNX ops only (for runtimes other than ONNX Runtime), same outputs."""
    torch.manual_seed(0)
    model = am.AlbertForSequenceClassification(tiny_config).eval()
    path = export_onnx(model, tmp_path / "plain.onnx", fuse=False)
    import onnx

    assert {n.domain for n in onnx.load(str(path)).graph.node} <= {"", "ai.onnx"}
    b = batch(tiny_config, 3, 9)
    with torch.no_grad():
        torch.testing.assert_close(OrtModel(path)(**b).logits, model(**b).logits, atol=1e-5, rtol=1e-4)


@pytest.mark.slow
def test_albert_base_onnx_fused_sizes_and_agreement(tmp_path):
    """albert-base width (random weights): the fused fp32 graph matches transformers to 1e-4, int8 keeps
    hidden-state cosine >= 0.99, and the files stay small: fp32 ONNX <= 1.3x the safetensors weights (the
    shared block once, no per-layer Q/K/V copies), int8 <= 0.7x the fp32 ONNX file.
    Run with: pytest -m slow tests/test_export_onnx.py"""
    base = AlbertConfig.from_name("albert-base-v2").to_dict()
    hf, ours = _transformers_pair(tmp_path, **{k: base[k] for k in (
        "vocab_size", "embedding_size", "hidden_size", "num_hidden_layers", "num_attention_heads", "intermediate_size")})
    weights = (tmp_path / "hf" / "model.safetensors").stat().st_size
    fp32, int8 = export_onnx(ours, tmp_path / "fp32.onnx"), export_onnx(ours, tmp_path / "int8.onnx", int8=True)
    assert fp32.stat().st_size <= 1.3 * weights and int8.stat().st_size <= 0.7 * fp32.stat().st_size
    assert _op_counts(int8)["QAttention"] == 12
    b = batch(hf.config, 2, 64)
    with torch.no_grad():
        ref = hf(**b).last_hidden_state
    keep = b["attention_mask"].bool()
    torch.testing.assert_close(OrtModel(fp32)(**b).last_hidden_state[keep], ref[keep], atol=1e-4, rtol=1e-4)
    cos = torch.nn.functional.cosine_similarity(OrtModel(int8)(**b).last_hidden_state[keep], ref[keep], dim=-1)
    assert cos.min() >= 0.99, cos.min()
