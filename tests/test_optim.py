"""LAMB against hand computations of Google's lamb_optimizer formulas; the warmup/decay schedule."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch import nn

from albertkit.optim import Lamb, WarmupLinearDecay, build_optimizer, linear_warmup_decay, param_groups


class _Tiny(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.dense = nn.Linear(2, 2)
        self.LayerNorm = nn.LayerNorm(2)
        self.zero = nn.Parameter(torch.zeros(3))


def _numpy_lamb(w, grads, lr, wd, adapt, b1=0.9, b2=0.999, eps=1e-6, correct=False):
    """Google's LAMBOptimizer.apply_gradients, one tensor, written out in numpy float64
    (``correct``: with Adam's bias correction of m and v, You et al. 2019 Algorithm 2)."""
    w = np.array(w, dtype=np.float64)
    m = np.zeros_like(w)
    v = np.zeros_like(w)
    for t, g in enumerate(grads, start=1):
        g = np.asarray(g, dtype=np.float64)
        m = b1 * m + (1 - b1) * g
        v = b2 * v + (1 - b2) * g * g
        mh, vh = (m / (1 - b1**t), v / (1 - b2**t)) if correct else (m, v)
        u = mh / (np.sqrt(vh) + eps) + wd * w
        r = 1.0
        if adapt:
            wn, un = np.linalg.norm(w), np.linalg.norm(u)
            r = wn / un if wn > 0 and un > 0 else 1.0
        w = w - lr * r * u
    return w


def test_lamb_first_step_by_hand() -> None:
    # One tensor w = [3, 4] (||w|| = 5), g = [1, -2], lr 0.1, wd 0.01.
    # m = 0.1 g, v = 0.001 g^2, so u = 0.1 g / (sqrt(0.001)|g| + 1e-6) + 0.01 w.
    w0 = torch.tensor([3.0, 4.0], dtype=torch.float64)
    p = nn.Parameter(w0.clone())
    opt = Lamb([p], lr=0.1, weight_decay=0.01)
    p.grad = torch.tensor([1.0, -2.0], dtype=torch.float64)
    opt.step()
    s = math.sqrt(0.001)
    u = [0.1 * 1.0 / (s * 1.0 + 1e-6) + 0.03, 0.1 * -2.0 / (s * 2.0 + 1e-6) + 0.04]
    un = math.hypot(*u)
    expected = [3.0 - 0.1 * (5.0 / un) * u[0], 4.0 - 0.1 * (5.0 / un) * u[1]]
    # No bias correction: with it, u would be about +-1 per element instead of +-3.16.
    assert abs(u[0] - 0.03 - 3.1623) < 1e-3
    torch.testing.assert_close(p.detach(), torch.tensor(expected, dtype=torch.float64), rtol=0, atol=1e-12)


@pytest.mark.parametrize("bias_correction", [False, True])
def test_lamb_matches_numpy_reference_with_excluded_params(bias_correction: bool) -> None:
    torch.manual_seed(0)
    model = _Tiny().double()
    with torch.no_grad():
        model.dense.bias.copy_(torch.tensor([0.5, -0.25]))
        model.LayerNorm.weight.copy_(torch.tensor([1.5, 0.5]))
    start = {n: p.detach().clone().numpy() for n, p in model.named_parameters()}
    groups = param_groups(model, weight_decay=0.01, bias_correction=bias_correction)
    names = {id(p): n for n, p in model.named_parameters()}
    assert sorted(names[id(p)] for p in groups[0]["params"]) == ["dense.weight", "zero"]
    assert sorted(names[id(p)] for p in groups[1]["params"]) == ["LayerNorm.bias", "LayerNorm.weight", "dense.bias"]
    opt = Lamb(groups, lr=0.05)
    rng = np.random.default_rng(1)
    grads = {n: [rng.normal(size=p.shape) for _ in range(3)] for n, p in model.named_parameters()}
    grads["zero"][1][:] = 0.0  # a zero gradient step on a zero tensor: both norms hit the "1" branch
    for k in range(3):
        for n, p in model.named_parameters():
            p.grad = torch.from_numpy(grads[n][k])
        opt.step()
    for n, p in model.named_parameters():
        excluded = n in ("LayerNorm.bias", "LayerNorm.weight", "dense.bias")
        # Excluded tensors (no trust ratio) always get bias-corrected steps; the rest only on request.
        ref = _numpy_lamb(
            start[n], grads[n], lr=0.05, wd=0.0 if excluded else 0.01, adapt=not excluded, correct=excluded or bias_correction
        )
        np.testing.assert_allclose(p.detach().numpy(), ref, rtol=1e-12, atol=1e-12, err_msg=n)
    # An excluded tensor's first step is lr * sign(g) (bias-corrected), not 3.16 lr * sign(g).
    first = np.abs(_numpy_lamb(start["dense.bias"], grads["dense.bias"][:1], 0.05, 0.0, False, correct=True) - start["dense.bias"])
    np.testing.assert_allclose(first, 0.05, rtol=1e-4)


def test_adamw_option_decays_only_weights_and_matches_numpy() -> None:
    # build_optimizer("adamw"): Adam with bias correction + decoupled decay w -= lr * wd * w,
    # no decay on LayerNorm/bias tensors; betas (0.9, 0.98), eps 1e-6 as issue #14's recipe.
    torch.manual_seed(0)
    model = _Tiny().double()
    start = {n: p.detach().clone().numpy() for n, p in model.named_parameters()}
    opt = build_optimizer(model, "adamw", lr=0.01, weight_decay=0.1, betas=(0.9, 0.98), eps=1e-6)
    rng = np.random.default_rng(2)
    grads = {n: [rng.normal(size=p.shape) for _ in range(4)] for n, p in model.named_parameters()}
    for k in range(4):
        for n, p in model.named_parameters():
            p.grad = torch.from_numpy(grads[n][k])
        opt.step()
    for n, p in model.named_parameters():
        wd = 0.0 if n in ("LayerNorm.bias", "LayerNorm.weight", "dense.bias") else 0.1
        w, m, v = start[n].copy(), 0.0, 0.0
        for t, g in enumerate(grads[n], start=1):
            w = w * (1 - 0.01 * wd)
            m = 0.9 * m + 0.1 * g
            v = 0.98 * v + 0.02 * g * g
            w = w - 0.01 * (m / (1 - 0.9**t)) / (np.sqrt(v / (1 - 0.98**t)) + 1e-6)
        np.testing.assert_allclose(p.detach().numpy(), w, rtol=1e-10, atol=1e-12, err_msg=n)


def test_lamb_zero_weight_uses_ratio_one() -> None:
    p = nn.Parameter(torch.zeros(4, dtype=torch.float64))
    opt = Lamb([p], lr=0.1, weight_decay=0.01)
    p.grad = torch.tensor([1.0, 1.0, -1.0, 2.0], dtype=torch.float64)
    opt.step()
    # ||w|| = 0 -> ratio 1 -> plain step of lr * u, u ~ sign(g) * 3.1623 (no bias correction).
    expected = -0.1 * (0.1 * p.grad) / (torch.sqrt(0.001 * p.grad**2) + 1e-6)
    torch.testing.assert_close(p.detach(), expected, rtol=0, atol=1e-12)


def test_optimizer_state_roundtrip() -> None:
    model = nn.Linear(3, 2)
    opt = build_optimizer(model, "lamb", lr=1e-2)
    model(torch.ones(1, 3)).sum().backward()
    opt.step()
    again = build_optimizer(model, "lamb", lr=1e-2)
    again.load_state_dict(opt.state_dict())
    assert again.param_groups[1]["adapt"] is False and again.param_groups[0]["weight_decay"] == 0.01
    with pytest.raises(ValueError, match="unknown optimizer"):
        build_optimizer(model, "sgd", lr=1e-2)


def test_schedule_values() -> None:
    f = WarmupLinearDecay(warmup_steps=3125, num_train_steps=125_000)
    assert f(0) == 0.0
    assert f(1) == pytest.approx(1 / 3125)
    assert f(3124) == pytest.approx(3124 / 3125)
    # Google's polynomial_decay counts from step 0: at warmup end the factor is 1 - 3125/125000.
    assert f(3125) == pytest.approx(1 - 3125 / 125_000)
    assert f(62_500) == pytest.approx(0.5)
    assert f(125_000) == 0.0 and f(200_000) == 0.0
    assert WarmupLinearDecay(0, 10)(0) == 1.0


def test_scheduler_drives_optimizer_lr() -> None:
    model = nn.Linear(2, 2)
    opt = build_optimizer(model, "adamw", lr=1.0)
    sched = linear_warmup_decay(opt, warmup_steps=4, num_train_steps=10)
    seen = []
    for _ in range(11):
        seen.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    assert seen == pytest.approx([0.0, 0.25, 0.5, 0.75, 0.6, 0.5, 0.4, 0.3, 0.2, 0.1, 0.0])
