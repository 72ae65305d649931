"""Fast inference paths: the fused oneDNN kernels, bf16 and int8 agree with the plain fp32 model."""

from __future__ import annotations

import pytest
import torch

import albertkit.fused as fused
import albertkit.modeling as am
from albertkit import AlbertConfig
from albertkit.fast import optimize, quantize_int8


fused_attend_bf16 = fused.attend_bf16


def test_attend_bf16_matches_fp32_attention():
    # The explicit bf16 attention against fp32 SDPA (torch's reference), with a padding mask as the
    # model builds it; it runs on every CPU (bf16 matmul is emulated where not native).
    g = torch.Generator().manual_seed(0)
    B, A, T, D = 3, 4, 24, 16
    q, k, v = (torch.randn(B, A, T, D, generator=g) for _ in range(3))
    mask = torch.zeros(B, 1, 1, T)
    mask[1, ..., 17:] = torch.finfo(torch.float32).min
    ref = torch.nn.functional.scaled_dot_product_attention(q, k, v, attn_mask=mask).transpose(1, 2).reshape(B, T, A * D)
    ours = fused.attend_bf16(q.bfloat16(), k.bfloat16(), v.bfloat16(), mask.bfloat16()).float()
    assert ours.shape == ref.shape
    assert float((ours - ref).abs().max()) < 3e-2
    cos = torch.nn.functional.cosine_similarity(ours, ref, dim=-1)
    assert float(cos.min()) > 0.999


def small_config(**kw) -> AlbertConfig:
    # Wider than "tiny" so that the GEMMs take oneDNN's blocked kernels, still milliseconds per forward.
    return AlbertConfig.from_name("tiny", **{"hidden_size": 64, "num_attention_heads": 4, "intermediate_size": 128, "embedding_size": 32, **kw})


def inputs(cfg: AlbertConfig, B: int = 3, T: int = 12, seed: int = 0) -> dict:
    g = torch.Generator().manual_seed(seed)
    ids = torch.randint(5, cfg.vocab_size, (B, T), generator=g)
    mask = torch.ones(B, T, dtype=torch.long)
    mask[1, 8:] = 0
    return {"input_ids": ids, "attention_mask": mask}


def plain_forward(model, batch):
    """The reference: same model, the fused kernels off (they are skipped while gradients are recorded)."""
    with torch.enable_grad():
        return model(**batch)


def test_onednn_in_this_torch_build():
    # The fused block needs oneDNN's private linear op; every x86/aarch64 torch wheel has it. If a
    # torch update drops it, the fused layer falls back to the plain block: this says so loudly.
    assert fused.onednn_available()


@pytest.mark.parametrize("act", ["gelu_new", "gelu", "relu", "silu"])
def test_fused_kernels_match_plain_path(act, monkeypatch):
    cfg = small_config(hidden_act=act)
    torch.manual_seed(0)
    model = am.AlbertForMaskedLM(cfg).eval()
    batch = inputs(cfg)
    with torch.inference_mode():
        ref = model(**batch).logits  # the plain architecture (modeling.py)
    keys = list(model.state_dict())
    assert optimize(model, "fp32") is model  # swapped in place
    assert all(type(m) is fused.FusedAlbertLayer for m in model.albert.encoder.blocks())
    assert list(model.state_dict()) == keys  # a drop-in: the same state-dict keys
    calls = []
    real = fused._linear
    monkeypatch.setattr(fused, "_linear", lambda *a, **k: calls.append(1) or real(*a, **k))
    with torch.inference_mode():
        out = model(**batch).logits
    assert len(calls) == 4 * cfg.num_hidden_layers  # QKV, dense+residual, FFN(+act), FFN out+residual
    calls.clear()
    plain = plain_forward(model, batch).logits
    assert not calls  # gradients recorded: the plain block
    torch.testing.assert_close(out, ref, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(plain.detach(), ref, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("level,dtype,rows,sizes", [
    ("amx", torch.bfloat16, 1024, [342, 342, 340]),
    ("amx", torch.bfloat16, 500, [250, 250]),
    ("amx", torch.bfloat16, 384, None),  # few rows: one call
    ("amx", torch.bfloat16, 4096, [373] * 10 + [366]),
    ("amx", torch.float32, 1024, None),
    ("avx512_bf16", torch.bfloat16, 1024, None),
])
def test_row_chunks_only_where_amx_bf16_gemms_slow_down(monkeypatch, level, dtype, rows, sizes):
    from albertkit.cpu import CpuCapability

    monkeypatch.setattr(fused, "cpu_capability", lambda: CpuCapability(level, True, True, "cpu"))
    chunks = fused.row_chunks(rows, dtype)
    assert (None if chunks is None else [c.stop - c.start for c in chunks]) == sizes
    if chunks:  # a partition of the rows, in order
        assert chunks[0].start == 0 and chunks[-1].stop == rows
        assert all(a.stop == b.start for a, b in zip(chunks, chunks[1:]))


def test_fused_block_on_row_chunks_matches_all_rows_at_once(monkeypatch):
    # The post-attention ops are row-wise: running them on chunks of rows gives the same result
    # (forced on here for fp32 on any CPU; by itself only AMX bf16 with over 384 rows chunks)
    cfg = small_config()
    torch.manual_seed(0)
    model = optimize(am.AlbertModel(cfg).eval(), "fp32")
    batch = inputs(cfg, B=3, T=12)
    with torch.inference_mode():
        ref = model(**batch).last_hidden_state
        calls = []
        monkeypatch.setattr(fused, "row_chunks", lambda rows, dtype: calls.append(rows) or [slice(0, 7), slice(7, 20), slice(20, rows)])
        out = model(**batch).last_hidden_state
    assert calls == [36] * cfg.num_hidden_layers
    torch.testing.assert_close(out, ref, atol=1e-5, rtol=1e-5)


def test_block_called_again_on_its_own_output_rechecks_after_train_grad_or_update():
    # Within a forward the fused block trusts its previous checks when its input is its own last
    # output; called again on that output after load_state_dict, with autograd or after .train(),
    # it must take the path those call for (fresh packed weights; the plain block).
    cfg = small_config(num_hidden_layers=1, hidden_dropout_prob=0.5)
    torch.manual_seed(0)
    model = optimize(am.AlbertModel(cfg).eval(), "fp32")
    layer = model.encoder.albert_layer_groups[0].albert_layers[0]
    x = torch.randn(2, 5, cfg.hidden_size)
    with torch.no_grad():
        out, _ = layer(x)
        again, _ = layer(out)  # the chained call: fused, same as the plain block
        torch.testing.assert_close(again, plain_block(layer, out), atol=1e-5, rtol=1e-5)
        layer.load_state_dict({k: v * 0.5 for k, v in layer.state_dict().items()})  # in place
        changed, _ = layer(again)  # the fused QKV weight is a copy: it must be re-made
        torch.testing.assert_close(changed, plain_block(layer, again), atol=1e-5, rtol=1e-5)
        last, _ = layer(changed)
    model.train()
    with torch.no_grad():
        dropped, _ = layer(last)  # training mode: the plain block, with its dropout
    assert not torch.allclose(dropped, plain_block(layer.eval(), last))
    with torch.no_grad():
        last, _ = layer(last)
    grad_out, _ = layer(last)  # eval mode, autograd on: the plain block, gradients reach the weights
    grad_out.sum().backward()
    assert layer.attention.query.weight.grad is not None


def plain_block(layer, x):
    return am.AlbertLayer.forward(layer, x)[0]


def test_packed_weight_cache_follows_weight_updates():
    cfg = small_config()
    torch.manual_seed(0)
    model = optimize(am.AlbertModel(cfg), "fp32")
    batch = inputs(cfg)
    with torch.inference_mode():
        before = model(**batch).last_hidden_state
    other = am.AlbertModel(cfg)
    model.load_state_dict(other.state_dict())  # in-place copies: same storage, new version
    with torch.inference_mode():
        after = model(**batch).last_hidden_state
    ref = plain_forward(model, batch).last_hidden_state.detach()
    assert not torch.allclose(before, after)
    torch.testing.assert_close(after, ref, atol=1e-5, rtol=1e-5)
    # New storage and dtype: repacked (natively) or run by the plain block, never served stale
    # and never a oneDNN bf16 pack on a CPU that refuses it.
    model.to(torch.bfloat16)
    with torch.inference_mode():
        out = model(**batch).last_hidden_state
    assert out.dtype == torch.bfloat16
    cos = torch.nn.functional.cosine_similarity(out.float().flatten(1), ref.flatten(1)).min()
    assert cos > 0.99, cos


def test_training_mode_and_gradients_skip_fused_kernels():
    cfg = small_config()
    model = am.AlbertForMaskedLM(cfg).train()
    batch = inputs(cfg)
    out = model(**batch, labels=batch["input_ids"])
    out.loss.backward()
    assert model.albert.encoder.albert_layer_groups[0].albert_layers[0].ffn.weight.grad is not None


def _margin_agreement(ref: torch.Tensor, test: torch.Tensor, k: int, tol: float) -> tuple[int, int]:
    """Positions whose fp32 top-k is separated from rank k+1 by more than ``tol`` (a decision the
    error bound cannot flip), and how many of those keep the same top-k set under the fast path."""
    top = ref.topk(k + 1, dim=-1)
    decided = (top.values[..., k - 1] - top.values[..., k]) > tol
    same = (ref.topk(k, dim=-1).indices.sort(-1).values == test.topk(k, dim=-1).indices.sort(-1).values).all(-1)
    return int(decided.sum()), int((same & decided).sum())


@pytest.mark.filterwarnings("ignore:bf16 on this CPU")  # no native bf16 here: plain kernels, same bound
@pytest.mark.parametrize("attention", ["sdpa", "explicit bf16"])
def test_bf16_logits_close_and_top5_stable(attention, monkeypatch):
    calls = []
    if attention == "explicit bf16":  # the large-batch attention, forced on for this small batch
        monkeypatch.setattr(fused, "use_explicit_bf16", lambda batch, length: True)
        monkeypatch.setattr(fused, "attend_bf16", lambda *a: calls.append(1) or fused_attend_bf16(*a))
    cfg = small_config(initializer_range=0.1)  # sharper logits than the default init
    torch.manual_seed(0)
    model = am.AlbertForMaskedLM(cfg).eval()
    batch = inputs(cfg, B=8, T=16)
    with torch.inference_mode():
        ref = model(**batch).logits
        fast = optimize(model, "bf16")(**batch).logits.float()  # the fused bf16 block where native
    native = fused.cpu_capability().native_bf16  # elsewhere the fused block (and this path) is off
    assert len(calls) == (cfg.num_hidden_layers if attention == "explicit bf16" and native else 0)
    scale = ref.std()
    err = (fast - ref).abs().max() / scale
    assert err < 0.1, f"bf16 logits off by {err:.3f} std"
    decided, same = _margin_agreement(ref, fast, 5, tol=2 * float((fast - ref).abs().max()))
    assert decided > 20 and same == decided


def test_int8_quantizes_encoder_and_keeps_top1():
    cfg = small_config(initializer_range=0.1)
    torch.manual_seed(0)
    model = am.AlbertForMaskedLM(cfg).eval()
    q = quantize_int8(model)
    layer = q.albert.encoder.albert_layer_groups[0].albert_layers[0]
    assert all(isinstance(m, torch.ao.nn.quantized.dynamic.Linear) for m in (layer.ffn, layer.attention.query))
    assert type(model.albert.encoder.albert_layer_groups[0].albert_layers[0].ffn) is torch.nn.Linear  # copy by default
    assert type(q.predictions.decoder) is torch.nn.Linear  # tied decoder stays fp32
    batch = inputs(cfg, B=8, T=16)
    with torch.inference_mode():
        ref = model(**batch).logits
        test = q(**batch).logits
    err = (test - ref).abs().max()
    assert err / ref.std() < 0.2  # per-batch uint8 activations: coarser than bf16
    decided, same = _margin_agreement(ref, test, 1, tol=2 * float(err))
    assert decided > 20 and same == decided


@pytest.mark.parametrize(
    "level,vnni,bits",
    [("avx512_bf16", True, 8), ("amx", True, 8), ("avx512", False, 7), ("avx2", True, 7), ("avx2", False, 7)],
)
def test_int8_weight_range_follows_the_cpu(monkeypatch, level, vnni, bits):
    # 8-bit weights only where fbgemm's kernels accumulate in 32 bits (AVX512-VNNI, AMX); AVX2 (with
    # or without AVX-VNNI, which fbgemm does not use) keeps 7 against vpmaddubsw saturation of
    # 2 x 255 x w; activations have 8 bits everywhere
    from albertkit import quantization
    from albertkit.cpu import CpuCapability

    monkeypatch.setattr(quantization, "cpu_capability", lambda: CpuCapability(level, False, vnni, "cpu"))
    monkeypatch.delenv("FBGEMM_ENABLE_INSTRUCTIONS", raising=False)  # the CI's forced-AVX2 pass sets it
    q = quantize_int8(am.AlbertModel(small_config()))
    ffn = q.encoder.albert_layer_groups[0].albert_layers[0].ffn
    assert type(ffn) is quantization.Int8Linear and ffn.weight_bits == bits
    w = ffn.weight().int_repr()
    assert int(w.min()) >= -(2 ** (bits - 1)) and int(w.max()) <= 2 ** (bits - 1) - 1
    assert int(w.abs().max()) >= 2 ** (bits - 1) - 1  # the range is used, not only allowed


@pytest.mark.parametrize("isa,bits", [("AVX2", 7), ("AVX512", 7), ("AVX512_E1", 8), ("", 8)])
def test_int8_weight_bits_follow_fbgemms_own_isa_variable(monkeypatch, isa, bits):
    # fbgemm held below its VNNI kernels saturates like AVX2: 7-bit weights even on a VNNI class
    from albertkit import quantization
    from albertkit.cpu import CpuCapability

    monkeypatch.setattr(quantization, "cpu_capability", lambda: CpuCapability("avx512_bf16", True, True, "cpu"))
    monkeypatch.setattr(torch.backends.quantized, "engine", "x86")
    monkeypatch.setenv("FBGEMM_ENABLE_INSTRUCTIONS", isa)
    assert quantization.int8_weight_bits() == bits


def _int8_linear(lin: torch.nn.Linear, bits: int = 8, engine: str | None = None, smoothing: torch.Tensor | None = None) -> torch.nn.Module:
    from torch.ao.quantization import quantize_dynamic

    from albertkit.quantization import Int8Linear, _packing_for, int8_engine, int8_qconfig

    with _packing_for(engine or int8_engine()):  # the kernels quantize_int8 picks on this CPU by default
        q = quantize_dynamic(torch.nn.Sequential(lin), {torch.nn.Linear: int8_qconfig(bits)})
        Int8Linear.adopt(q[0], bits, smoothing)
    return q


@pytest.mark.parametrize(
    "level,engine", [("amx", "onednn"), ("avx512_bf16", "default"), ("avx512", "default"), ("avx2", "default")]
)
def test_int8_engine_follows_the_cpu(monkeypatch, level, engine):
    # oneDNN's AMX int8 kernels on the AMX class only (fbgemm has none); torch's default elsewhere
    from albertkit import quantization
    from albertkit.cpu import CpuCapability

    monkeypatch.setattr(quantization, "cpu_capability", lambda: CpuCapability(level, True, True, "cpu"))
    default = torch.backends.quantized.engine
    assert quantization.int8_engine() == (default if engine == "default" else engine)
    assert torch.backends.quantized.engine == default  # choosing (and packing) leaves the global alone
    quantize_int8(am.AlbertModel(small_config()))
    assert torch.backends.quantized.engine == default


def test_int8_linear_onednn_and_fbgemm_agree_at_base_width():
    # The two engines packed from the same 7-bit weights (exact on every ISA: no 16-bit saturation)
    # compute the same integer sums; albert-base's FFN output Linear, per-token scales, real kernels
    # of this CPU, whatever its class. Their gap is float rounding, far below the int8 error itself.
    if "onednn" not in torch.backends.quantized.supported_engines:
        pytest.fail("this torch build has no oneDNN quantized engine")
    torch.manual_seed(0)
    lin = torch.nn.Linear(3072, 768)
    x = torch.nn.functional.gelu(torch.randn(64, 3072) * torch.logspace(-1, 0.5, 64)[:, None])
    with torch.inference_mode():
        ref = lin(x)
        onednn, fbgemm = _int8_linear(lin, 7, "onednn")(x), _int8_linear(lin, 7, "fbgemm")(x)
    quant_err = float((fbgemm - ref).abs().max())
    assert 0 < quant_err < 0.1 * float(ref.abs().max())
    assert float((onednn - fbgemm).abs().max()) < 1e-3 * quant_err


def test_int8_linear_at_base_width_per_token_scales_and_this_cpus_range():
    # albert-base's FFN output Linear (3072 -> 768) on GELU activations whose scale varies from token
    # to token by 30x, on this machine's real kernels, against torch's own dynamic Linear (one scale
    # per batch, 7-bit activations): per-token scales are clearly closer to fp32, and a token's
    # output hardly depends on the tokens batched with it; the weight range quantize_int8 picks on
    # this CPU is never worse than 7 bits (a saturating kernel would be far worse instead).
    from torch.ao.quantization import per_channel_dynamic_qconfig, quantize_dynamic

    from albertkit.quantization import int8_weight_bits

    torch.manual_seed(0)
    lin = torch.nn.Linear(3072, 768)
    x = torch.nn.functional.gelu(torch.randn(256, 3072) * torch.logspace(-1, 0.5, 256)[:, None])
    with torch.inference_mode():
        ref = lin(x)
        torch_own = quantize_dynamic(torch.nn.Sequential(lin), {torch.nn.Linear: per_channel_dynamic_qconfig})
        # error relative to each token's own output, averaged over tokens
        rms = lambda m: float(((m(x) - ref).pow(2).mean(-1) / ref.pow(2).mean(-1)).sqrt().mean())  # noqa: E731
        seven, picked = _int8_linear(lin, 7), _int8_linear(lin, int8_weight_bits())
        assert rms(seven) < 0.25 * rms(torch_own)  # measured 0.08x on an AMX Xeon
        assert rms(picked) <= rms(seven) * 1.001  # 8-bit weights on fbgemm's AVX2 kernels: 4.8x (saturation)
        if int8_weight_bits() == 8:
            assert rms(picked) < 0.9 * rms(seven)  # measured 0.84x on an AMX Xeon
        # a quiet token alone and batched beside loud ones: per-batch scales change its result ~10x more
        moved = lambda m: float((m(x[3:4]) - m(x)[3:4]).abs().max())  # noqa: E731
        assert moved(picked) < 0.2 * moved(torch_own)


def test_smoothing_factors_follow_smoothquants_formula():
    # s_j = max|X_j|^a / max|W_:j|^(1-a) (Xiao et al. 2023, eq. 4), computed independently in numpy;
    # a channel never active (or a zero weight column) keeps s = 1
    import numpy as np

    from albertkit.quantization import smoothing_factors

    g = torch.Generator().manual_seed(0)
    a, w = torch.rand(48, generator=g) * 10, torch.randn(16, 48, generator=g)
    a[5], w[:, 7] = 0.0, 0.0
    for alpha in (0.35, 0.5, 0.8):
        with np.errstate(divide="ignore", invalid="ignore"):  # channels 5 and 7: set below
            want = a.numpy().astype(np.float64) ** alpha / np.abs(w.numpy()).max(axis=0).astype(np.float64) ** (1 - alpha)
        want[[5, 7]] = 1.0
        assert np.allclose(smoothing_factors(a, w, alpha).numpy(), want, rtol=1e-5)


def _with_outlier_channels(cfg: AlbertConfig) -> am.AlbertModel:
    # LayerNorm gains of 40 on three channels: the Q/K/V and FFN inputs get the systematic outlier
    # channels that trained transformers have (what smoothing is for)
    torch.manual_seed(0)
    model = am.AlbertModel(cfg).eval()
    block = model.encoder.albert_layer_groups[0].albert_layers[0]
    with torch.no_grad():
        for ln in (block.attention.LayerNorm, block.full_layer_layer_norm):
            ln.weight[[3, 17, 40]] = 40.0
    return model


def test_int8_smoothing_is_applied_and_deterministic():
    cfg = small_config()
    model = _with_outlier_channels(cfg)
    batch = inputs(cfg, B=4, T=16)
    with torch.inference_mode():
        ref = model(**batch).last_hidden_state
        err = {}
        for name, kw in (("off", {"smoothing": None}), ("default", {}), ("own text", {"calibration": [inputs(cfg, B=4, T=16, seed=1)]})):
            q = quantize_int8(model, **kw)
            err[name] = float((q(**batch).last_hidden_state - ref).pow(2).mean().sqrt() / ref.std())
            ffn = q.encoder.albert_layer_groups[0].albert_layers[0].ffn
            assert (ffn.input_smoothing is None) == (name == "off")
    # plumbing on a random tiny model (uniform random weights: with 7-bit weights moving range into
    # them can cost more than it saves here): every variant stays close to fp32; that smoothing
    # helps is checked at base width below and on the trained model (test_cpu_paths)
    assert max(err.values()) < 0.01, err
    # the same calibration gives the same factors (seeded random ids by default)
    one, two = (quantize_int8(model).encoder.albert_layer_groups[0].albert_layers[0].ffn.input_smoothing for _ in range(2))
    assert torch.equal(one, two)


def test_int8_smoothing_at_base_width():
    # albert-base's FFN input Linear (768 -> 3072) on LayerNorm-like activations with four outlier
    # channels (x30), this CPU's kernels and weight range: smoothing with the maxima of other
    # tokens from the same distribution cuts the error against fp32 by more than half
    from albertkit.quantization import int8_weight_bits, smoothing_factors

    torch.manual_seed(0)
    lin = torch.nn.Linear(768, 3072)
    gain = torch.ones(768)
    gain[[11, 200, 409, 700]] = 30.0
    x, calib = torch.randn(128, 768) * gain, torch.randn(256, 768) * gain
    s = smoothing_factors(calib.abs().amax(0), lin.weight, 0.35)
    smooth = torch.nn.Linear(768, 3072)
    with torch.no_grad():
        smooth.weight.copy_(lin.weight * s)
        smooth.bias.copy_(lin.bias)
    bits = int8_weight_bits()
    plain, smoothed = _int8_linear(lin, bits), _int8_linear(smooth, bits, smoothing=s)
    with torch.inference_mode():
        ref = lin(x)
        rms = lambda m: float((m(x) - ref).pow(2).mean().sqrt())  # noqa: E731
        assert rms(smoothed) < 0.5 * rms(plain), (rms(smoothed), rms(plain))


def test_optimize_modes():
    cfg = small_config()
    model = am.AlbertModel(cfg)
    assert optimize(model, "fp32") is model and not model.training
    with pytest.raises(ValueError, match="unknown fast path"):
        optimize(model, "int4")


def test_from_pretrained_quantize_int8(tmp_path):
    cfg = small_config()
    torch.manual_seed(0)
    am.AlbertForSequenceClassification(cfg).save_pretrained(str(tmp_path))
    model = am.AlbertForSequenceClassification.from_pretrained(str(tmp_path), quantize="int8")
    assert isinstance(model.albert.encoder.albert_layer_groups[0].albert_layers[0].ffn, torch.ao.nn.quantized.dynamic.Linear)
    with pytest.raises(ValueError, match="quantize"):
        am.AlbertForSequenceClassification.from_pretrained(str(tmp_path), quantize="int4")
    # saving it says what to do instead of failing inside the serializer
    from albertkit.checkpoint import CheckpointError

    with pytest.raises(CheckpointError, match="int8-quantized.*quantize='int8'"):
        model.save_pretrained(str(tmp_path / "int8"))
    assert not (tmp_path / "int8").exists()


def test_model_copied_under_inference_mode_runs_fused():
    # Weights made inside inference_mode have no version counter; the packed-weight cache must cope.
    import copy

    model = am.AlbertModel(small_config()).eval()
    batch = inputs(model.config)
    with torch.inference_mode():
        ref = model(**batch).last_hidden_state
        out = optimize(copy.deepcopy(model), "fp32")(**batch).last_hidden_state
    torch.testing.assert_close(out, ref, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("shape, bias", [((5, 7, 48), True), ((6, 48), False), ((2, 1, 48), True)])
@pytest.mark.parametrize("cpu_class", ["this CPU", "avx2"])
def test_onednn_linear_matches_torch_linear_forward_and_backward(shape, bias, cpu_class, monkeypatch):
    # The reference is torch's own nn.Linear (MKL's GEMMs); the oneDNN subclass runs the same fp32
    # arithmetic with another kernel, so only rounding may differ. Forced to the AVX2 class, the
    # input gradient takes torch.mm instead of oneDNN.
    if cpu_class == "avx2":
        monkeypatch.setenv("ALBERTKIT_CPU_CAPABILITY", "avx2")
    torch.manual_seed(0)
    ref = torch.nn.Linear(48, 40, bias=bias)
    ours = torch.nn.Linear(48, 40, bias=bias)
    ours.load_state_dict(ref.state_dict())
    ours.__class__ = fused.OneDnnLinear
    x_ref = torch.randn(*shape, requires_grad=True)
    x_ours = x_ref.detach().clone().requires_grad_()
    y_ref, y_ours = ref(x_ref), ours(x_ours)
    grad = torch.randn_like(y_ref)
    y_ref.backward(grad)
    y_ours.backward(grad)
    torch.testing.assert_close(y_ours, y_ref, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(x_ours.grad, x_ref.grad, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(ours.weight.grad, ref.weight.grad, rtol=1e-5, atol=1e-5)
    if bias:
        torch.testing.assert_close(ours.bias.grad, ref.bias.grad, rtol=1e-5, atol=1e-5)
    with torch.no_grad():  # the inference call (bias fused, no graph)
        torch.testing.assert_close(ours(x_ours), ref(x_ref), rtol=1e-5, atol=1e-5)


@pytest.mark.filterwarnings("ignore:bf16 on this CPU")
def test_onednn_linear_bf16_inference_on_packed_weights_follows_updates():
    # bf16 inference runs oneDNN on a packed copy where the CPU has native bf16 (elsewhere
    # nn.Linear's own path); the copy is re-made when the weight changes
    torch.manual_seed(0)
    ref = torch.nn.Linear(128, 300).bfloat16()
    ours = torch.nn.Linear(128, 300).bfloat16()
    ours.load_state_dict(ref.state_dict())
    ours.__class__ = fused.OneDnnLinear
    x = torch.randn(3, 128).bfloat16()
    with torch.no_grad():
        torch.testing.assert_close(ours(x).float(), ref(x).float(), atol=2e-2, rtol=2e-2)
        packed = fused.cpu_capability().native_bf16 and fused.onednn_available()
        assert (ours._packed_cache is not None) == packed
        ref.weight.mul_(-1.0)
        ours.weight.mul_(-1.0)  # in place: the version counter moves
        torch.testing.assert_close(ours(x).float(), ref(x).float(), atol=2e-2, rtol=2e-2)
    y = ours(x.requires_grad_())  # gradients wanted: nn.Linear's path
    assert y.grad_fn is not None


def test_onednn_linear_runs_in_training_and_leaves_autocast_to_torch(monkeypatch):
    calls = []
    original = fused._OneDnnLinearFunction.apply
    monkeypatch.setattr(fused._OneDnnLinearFunction, "apply", lambda *a: calls.append(1) or original(*a))
    cfg = small_config()
    model = fused.fuse_cpu_layers(am.AlbertForPreTraining(cfg).train())
    batch = inputs(cfg)
    labels = {"labels": batch["input_ids"], "sentence_order_label": torch.tensor([0, 1, 0])}
    model(**batch, **labels).loss.backward()
    # 6 Linears of the shared block x 2 layers; embedding mapping, pooler, MLM dense, decoder, SOP
    # classifier (x86 with AVX2 or more; elsewhere torch's own Linear runs)
    x86 = fused.cpu_capability().level in fused._X86_LEVELS
    assert len(calls) == (6 * cfg.num_hidden_layers + 5 if x86 else 0)
    calls.clear()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = model(**batch, **labels)
    assert calls == [] and out.prediction_logits.dtype == torch.bfloat16  # autocast's own bf16 linears


@pytest.mark.parametrize("width", ["small", "base"])
def test_fused_model_trains_like_the_plain_model(width):
    # Loss and every gradient of a pretraining step with the oneDNN Linears against the same model
    # with torch's (what albertkit.training.Trainer runs on CPU vs plain torch). "base" is one
    # albert-base-width layer (768 / 3072 / 12 heads, E 128) on a short batch.
    if width == "base":
        cfg = AlbertConfig.from_name("tiny", hidden_size=768, num_attention_heads=12, intermediate_size=3072,
                                     embedding_size=128, num_hidden_layers=1, vocab_size=2000)
    else:
        cfg = small_config()
    torch.manual_seed(0)
    plain = am.AlbertForPreTraining(cfg).train()
    ours = am.AlbertForPreTraining(cfg).train()
    ours.load_state_dict(plain.state_dict())
    fused.fuse_cpu_layers(ours)
    for m in list(plain.modules()) + list(ours.modules()):
        if isinstance(m, torch.nn.Dropout):
            m.p = 0.0
    batch = inputs(cfg, B=2, T=16)
    labels = {"labels": batch["input_ids"], "sentence_order_label": torch.tensor([0, 1])}
    loss_plain = plain(**batch, **labels).loss
    loss_ours = ours(**batch, **labels).loss
    loss_plain.backward()
    loss_ours.backward()
    torch.testing.assert_close(loss_ours, loss_plain, rtol=1e-5, atol=1e-5)
    # against the largest gradient: some are 0 up to rounding (the key bias: softmax ignores it)
    scale = max(float(p.grad.abs().max()) for p in plain.parameters())
    for (name, p), q in zip(plain.named_parameters(), ours.parameters()):
        assert float((q.grad - p.grad).abs().max()) / scale < 1e-5, name
