"""bench/int8_error_sources.py's simulated int8 rounding against torch's own quantize/dequantize."""

from __future__ import annotations

import sys
from pathlib import Path

import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.int8_error_sources import FakeInt8Linear, compare, simulate  # noqa: E402


def _linear(seed: int = 0) -> torch.nn.Linear:
    torch.manual_seed(seed)
    lin = torch.nn.Linear(16, 8)
    with torch.no_grad():
        lin.weight[:, 3] *= 20  # an outlier input channel, as a trained transformer has
    return lin


def _symmetric_per_channel(w: torch.Tensor, axis: int) -> torch.Tensor:
    # torch's symmetric int8 on [-127, 127]: scale absmax / 127, as ONNX Runtime's weights
    absmax = w.abs().amax(dim=1 - axis)
    q = torch.quantize_per_channel(w, absmax / 127, torch.zeros_like(absmax, dtype=torch.long), axis, torch.qint8)
    return q.dequantize()


def test_weights_round_per_output_channel_like_torch() -> None:
    lin, x = _linear(), torch.randn(3, 16)
    want = F.linear(x, _symmetric_per_channel(lin.weight.detach(), 0), lin.bias)
    torch.testing.assert_close(FakeInt8Linear(lin, "none")(x), want)


def test_per_tensor_activations_match_torch_uint8_affine() -> None:
    from torch.ao.quantization.observer import MinMaxObserver

    lin, x = _linear(1), torch.randn(2, 5, 16) * 3 + 1
    obs = MinMaxObserver(dtype=torch.quint8, qscheme=torch.per_tensor_affine)
    obs(x)
    scale, zero = obs.calculate_qparams()
    xq = torch.quantize_per_tensor(x, float(scale), int(zero), torch.quint8).dequantize()
    want = F.linear(xq, _symmetric_per_channel(lin.weight.detach(), 0), lin.bias)
    torch.testing.assert_close(FakeInt8Linear(lin, "tensor")(x), want, atol=1e-5, rtol=1e-5)


def test_per_token_activations_match_torch_per_row_symmetric() -> None:
    lin, x = _linear(2), torch.randn(6, 16)
    x[0] *= 50  # one loud token must not coarsen the others' rounding
    want = F.linear(_symmetric_per_channel(x, 0), _symmetric_per_channel(lin.weight.detach(), 0), lin.bias)
    torch.testing.assert_close(FakeInt8Linear(lin, "token")(x), want)
    per_tensor = FakeInt8Linear(lin, "tensor")(x)
    exact = lin(x).detach()
    assert (FakeInt8Linear(lin, "token")(x) - exact)[1:].abs().max() < (per_tensor - exact)[1:].abs().max()


def test_smoothing_leaves_the_product_unchanged_before_rounding() -> None:
    lin, x = _linear(3), torch.randn(4, 16)
    s = torch.rand(16) + 0.5
    fake = FakeInt8Linear(lin, "none", s)
    # x / s times (W s)^T is x W^T; only the weights' rounding (now of W s) differs from fp32
    assert torch.allclose(fake(x), lin(x), atol=0.05 * lin(x).abs().max().item())
    torch.testing.assert_close(fake.weight, _symmetric_per_channel(lin.weight.detach() * s, 0))


def test_simulate_swaps_only_the_shared_block() -> None:
    from albertkit import AlbertConfig, AlbertForMaskedLM

    cfg = AlbertConfig(vocab_size=64, embedding_size=8, hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
                       intermediate_size=64, max_position_embeddings=32)
    torch.manual_seed(0)
    model = AlbertForMaskedLM(cfg).eval()
    sim = simulate(model, "token", 0.5)
    fakes = [m for m in sim.modules() if isinstance(m, FakeInt8Linear)]
    assert len(fakes) == 6 and all(isinstance(m, FakeInt8Linear) is False for m in model.modules())
    ids = torch.randint(5, 64, (2, 7))
    ref, got = model(ids).logits[0], sim(ids).logits[0]
    assert 0 < (got - ref).abs().max() < 0.1 * ref.abs().max()


def test_compare_is_kl_from_fp32_and_top1_agreement() -> None:
    ref = torch.tensor([[2.0, 0.0, -1.0], [0.0, 1.0, 0.5]])
    got = torch.tensor([[1.0, 0.5, -1.0], [0.2, 0.1, 0.9]])
    p, q = ref.softmax(-1), got.softmax(-1)
    kl, top1 = compare(got, ref)
    assert abs(kl - float((p * (p.log() - q.log())).sum(-1).mean())) < 1e-6
    assert top1 == 0.5
