"""Optimisers and the learning-rate schedule of ALBERT's recipe.

``Lamb`` follows Google's ``lamb_optimizer.LAMBOptimizer`` (google-research/albert): Adam moments
without bias correction, weight decay added to the update, then a per-tensor trust ratio
``||w|| / ||update||`` (1 where either norm is 0). Parameters whose name contains ``LayerNorm``,
``layer_norm`` or ``bias`` get neither decay nor the trust ratio.

One deliberate departure from Google: those excluded tensors (LayerNorm gains, biases, the 30k
output bias) get *bias-corrected* Adam steps. Without the trust ratio, an uncorrected step is
``lr * m / sqrt(v)`` with ``m, v`` still near zero, i.e. 3-4x lr over the first hundreds of steps
at beta2 0.999, which is what drove albert-mini-en's LayerNorm gains negative (issue #14).
``bias_correction=True`` corrects the adapted tensors too (LAMB as in You et al. 2019, Alg. 2).

    >>> groups = param_groups(model, weight_decay=0.01)                    # doctest: +SKIP
    >>> opt = Lamb(groups, lr=1.76e-3)                                      # doctest: +SKIP
    >>> sched = linear_warmup_decay(opt, warmup_steps=3125, num_train_steps=125_000)  # doctest: +SKIP
"""

from __future__ import annotations

import re
from typing import Any, Callable, Iterable, Sequence

import torch
from torch import nn
from torch.optim import Optimizer
from torch.optim.lr_scheduler import LambdaLR

__all__ = [
    "Lamb",
    "NO_DECAY_PATTERNS",
    "param_groups",
    "build_optimizer",
    "WarmupLinearDecay",
    "linear_warmup_decay",
]

# Google's exclude_from_weight_decay list; its LAMB reuses it for exclude_from_layer_adaptation.
NO_DECAY_PATTERNS: tuple[str, ...] = ("LayerNorm", "layer_norm", "bias")


class Lamb(Optimizer):
    """LAMB as in Google's ALBERT code (no bias correction, per-tensor trust ratio).

    Per parameter ``w`` with gradient ``g``:
    ``m = b1 m + (1-b1) g``; ``v = b2 v + (1-b2) g^2``; ``u = m / (sqrt(v) + eps)``;
    ``u += weight_decay * w``; ``r = ||w|| / ||u||`` if ``adapt`` and both norms > 0, else 1;
    ``w -= lr * r * u``. With ``bias_correction``, ``m`` and ``v`` are divided by ``1 - b1^t`` and
    ``1 - b2^t`` first (Adam's correction for their zero start).

    Each param group may set ``weight_decay``, ``adapt`` (the trust ratio on/off) and
    ``bias_correction``, which is how :func:`param_groups` excludes LayerNorm and bias tensors from
    decay and the trust ratio and gives them bias-corrected steps.

        >>> opt = Lamb(model.parameters(), lr=1e-3, weight_decay=0.01)    # doctest: +SKIP
    """

    def __init__(
        self,
        params: Iterable[Any],
        lr: float = 1e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-6,
        weight_decay: float = 0.0,
        adapt: bool = True,
        bias_correction: bool = False,
    ) -> None:
        if lr < 0.0:
            raise ValueError(f"Lamb: lr must be >= 0, got {lr}")
        if not 0.0 <= betas[0] < 1.0 or not 0.0 <= betas[1] < 1.0:
            raise ValueError(f"Lamb: betas must be in [0, 1), got {betas}")
        if eps < 0.0:
            raise ValueError(f"Lamb: eps must be >= 0, got {eps}")
        if weight_decay < 0.0:
            raise ValueError(f"Lamb: weight_decay must be >= 0, got {weight_decay}")
        super().__init__(
            params, dict(lr=lr, betas=betas, eps=eps, weight_decay=weight_decay, adapt=adapt, bias_correction=bias_correction),
        )

    @torch.no_grad()
    def step(self, closure: Callable[[], torch.Tensor] | None = None) -> torch.Tensor | None:  # type: ignore[override]
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            beta1, beta2 = group["betas"]
            lr, eps, decay, adapt = group["lr"], group["eps"], group["weight_decay"], group["adapt"]
            correct = group.get("bias_correction", False)
            for p in group["params"]:
                if p.grad is None:
                    continue
                grad = p.grad
                if grad.is_sparse:
                    raise RuntimeError("Lamb does not support sparse gradients")
                # Moments and update in at least float32, even for bf16 parameters.
                dtype = torch.promote_types(p.dtype, torch.float32)
                state = self.state[p]
                if not state:
                    state["step"] = 0
                    state["exp_avg"] = torch.zeros_like(p, dtype=dtype, memory_format=torch.preserve_format)
                    state["exp_avg_sq"] = torch.zeros_like(p, dtype=dtype, memory_format=torch.preserve_format)
                state["step"] += 1
                m, v = state["exp_avg"], state["exp_avg_sq"]
                g = grad.to(dtype)
                m.mul_(beta1).add_(g, alpha=1.0 - beta1)
                v.mul_(beta2).addcmul_(g, g, value=1.0 - beta2)
                if correct:
                    t = state["step"]
                    update = (m / (1.0 - beta1**t)) / ((v / (1.0 - beta2**t)).sqrt() + eps)
                else:  # Google's LAMB skips it: the trust ratio rescales the step anyway.
                    update = m / (v.sqrt() + eps)
                w = p.to(dtype)
                if decay:
                    update.add_(w, alpha=decay)
                if adapt:
                    w_norm = torch.linalg.vector_norm(w)
                    u_norm = torch.linalg.vector_norm(update)
                    one = torch.ones_like(w_norm)
                    # torch.where keeps this free of host syncs on GPUs.
                    ratio = torch.where(w_norm > 0, torch.where(u_norm > 0, w_norm / u_norm, one), one)
                    update.mul_(ratio)
                p.add_(update.to(p.dtype), alpha=-lr)
        return loss


def param_groups(
    model: nn.Module,
    weight_decay: float,
    no_decay: Sequence[str] = NO_DECAY_PATTERNS,
    with_adapt: bool = True,
    bias_correction: bool = False,
) -> list[dict[str, Any]]:
    """Split trainable parameters into a decayed group and an excluded group by name.

    A parameter is excluded when any pattern in ``no_decay`` is found in its name (``re.search``,
    like Google's code). Tied parameters appear once. With ``with_adapt`` the groups also carry the
    ``adapt`` and ``bias_correction`` flags that :class:`Lamb` reads (excluded tensors skip the
    trust ratio and always get bias-corrected steps; ``bias_correction`` applies to the others).

        >>> [len(g["params"]) for g in param_groups(torch.nn.Linear(2, 2), 0.01)]
        [1, 1]
    """
    decay: list[nn.Parameter] = []
    excluded: list[nn.Parameter] = []
    for name, param in model.named_parameters():
        if not param.requires_grad:
            continue
        if any(re.search(pattern, name) for pattern in no_decay):
            excluded.append(param)
        else:
            decay.append(param)
    groups: list[dict[str, Any]] = [
        {"params": decay, "weight_decay": weight_decay},
        {"params": excluded, "weight_decay": 0.0},
    ]
    if with_adapt:
        groups[0].update(adapt=True, bias_correction=bias_correction)
        groups[1].update(adapt=False, bias_correction=True)
    return groups


def build_optimizer(
    model: nn.Module,
    name: str,
    lr: float,
    weight_decay: float = 0.01,
    betas: tuple[float, float] = (0.9, 0.999),
    eps: float = 1e-6,
    bias_correction: bool = False,
) -> Optimizer:
    """``"lamb"`` (Google's LAMB) or ``"adamw"`` (``torch.optim.AdamW``), with the name-based groups.

    AdamW decays the weights decoupled from the gradient step (``w -= lr * wd * w``) and always
    bias-corrects; LayerNorm/bias tensors are not decayed. ``bias_correction`` is LAMB's option
    for the adapted tensors (its excluded tensors are always corrected).

        >>> build_optimizer(torch.nn.Linear(2, 2), "adamw", lr=1e-3).__class__.__name__
        'AdamW'
    """
    key = name.lower()
    if key == "lamb":
        return Lamb(param_groups(model, weight_decay, bias_correction=bias_correction), lr=lr, betas=betas, eps=eps)
    if key == "adamw":
        return torch.optim.AdamW(param_groups(model, weight_decay, with_adapt=False), lr=lr, betas=betas, eps=eps)
    raise ValueError(f"unknown optimizer {name!r}; choose 'lamb' or 'adamw'")


class WarmupLinearDecay:
    """The lr multiplier of Google's ``optimization.create_optimizer`` at a given step.

    ``step / warmup_steps`` while ``step < warmup_steps``; afterwards ``1 - step / num_train_steps``
    (clamped at 0). As in Google's code the decay counts from step 0, not from the end of warmup
    (``tf.train.polynomial_decay`` on the global step), so right after warmup the multiplier is
    ``1 - warmup_steps / num_train_steps``, not 1. Step 0 (the first update) gets 0 when warming up.

        >>> f = WarmupLinearDecay(10, 100); f(5), f(10), f(100)
        (0.5, 0.9, 0.0)

    ``rewarm_from`` / ``rewarm_steps`` scale the multiplier by ``(step - rewarm_from) / rewarm_steps``
    for ``rewarm_steps`` steps after ``rewarm_from``: a run continued mid-schedule from weights
    alone (fresh Adam moments) ramps up again instead of taking full-size steps at once.

        >>> g = WarmupLinearDecay(10, 100, rewarm_from=50, rewarm_steps=4); g(50), g(52), g(60)
        (0.0, 0.24, 0.4)

    ``anneal_from`` / ``anneal_steps`` branch off the schedule: from ``anneal_from`` the multiplier
    falls linearly from the schedule's value there to 0 at ``anneal_from + anneal_steps`` (a release
    of weights mid-schedule that has had the low learning rates of a finished run; the schedule
    itself goes on from the un-annealed weights).

        >>> h = WarmupLinearDecay(10, 100, anneal_from=50, anneal_steps=10); h(50), h(55), h(60), h(70)
        (0.5, 0.25, 0.0, 0.0)
    """

    def __init__(
        self,
        warmup_steps: int,
        num_train_steps: int,
        rewarm_from: int = 0,
        rewarm_steps: int = 0,
        anneal_from: int = 0,
        anneal_steps: int = 0,
    ) -> None:
        if num_train_steps <= 0:
            raise ValueError(f"num_train_steps must be > 0, got {num_train_steps}")
        if min(warmup_steps, rewarm_from, rewarm_steps, anneal_from, anneal_steps) < 0:
            raise ValueError(
                f"warmup_steps, rewarm_from, rewarm_steps, anneal_from and anneal_steps must be >= 0, got "
                f"{warmup_steps}, {rewarm_from}, {rewarm_steps}, {anneal_from}, {anneal_steps}"
            )
        self.warmup_steps = int(warmup_steps)
        self.num_train_steps = int(num_train_steps)
        self.rewarm_from = int(rewarm_from)
        self.rewarm_steps = int(rewarm_steps)
        self.anneal_from = int(anneal_from)
        self.anneal_steps = int(anneal_steps)

    def _schedule(self, step: int) -> float:
        if self.warmup_steps and step < self.warmup_steps:
            return step / self.warmup_steps
        return max(0.0, 1.0 - min(step, self.num_train_steps) / self.num_train_steps)

    def __call__(self, step: int) -> float:
        value = self._schedule(step)
        if self.anneal_steps and step >= self.anneal_from:
            value = self._schedule(self.anneal_from) * max(0.0, 1.0 - (step - self.anneal_from) / self.anneal_steps)
        if self.rewarm_steps and self.rewarm_from <= step < self.rewarm_from + self.rewarm_steps:
            value *= (step - self.rewarm_from) / self.rewarm_steps
        return value


def linear_warmup_decay(optimizer: Optimizer, warmup_steps: int, num_train_steps: int) -> LambdaLR:
    """A ``LambdaLR`` with :class:`WarmupLinearDecay`; call ``scheduler.step()`` after each update.

        >>> sched = linear_warmup_decay(opt, warmup_steps=100, num_train_steps=1000)  # doctest: +SKIP
    """
    return LambdaLR(optimizer, WarmupLinearDecay(warmup_steps, num_train_steps))
