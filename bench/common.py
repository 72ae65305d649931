"""Shared pieces of the benchmark suite: timing, FLOP counts, the matmul peak, table rows.

Every comparison is measured side by side: the candidates of one row run in alternation
(A, B, A, B, ...) so that a neighbour's load on the shared cores hits both alike, and the
median of the repeats is reported.

    >>> from bench.common import interleaved, Row
    >>> times = interleaved({"a": lambda: None, "b": lambda: None}, repeats=3)
"""

from __future__ import annotations

import statistics
import time
from dataclasses import dataclass
from typing import Callable

import torch

__all__ = ["Row", "interleaved", "matmul_peak", "encoder_flops", "format_table", "hf_albert", "same_weights_models"]


@dataclass
class Row:
    """One line of the results table.

    ``ours`` / ``theirs`` are in ``unit``; ``higher_is_better`` says which way the ratio reads
    (the ratio is always printed as "how many times better albertkit is").
    """

    name: str
    unit: str
    ours: float | None
    theirs: float | None
    higher_is_better: bool = False
    gflops_ours: float | None = None
    peak_gflops: float | None = None
    note: str = ""

    @property
    def ratio(self) -> float | None:
        if self.ours is None or self.theirs is None or self.ours == 0 or self.theirs == 0:
            return None
        return self.ours / self.theirs if self.higher_is_better else self.theirs / self.ours


def interleaved(fns: dict[str, Callable[[], object]], repeats: int = 5, warmup: int = 1) -> dict[str, float]:
    """Median wall seconds of each callable, run in alternation ``repeats`` times after ``warmup``."""
    for _ in range(warmup):
        for fn in fns.values():
            fn()
    samples: dict[str, list[float]] = {k: [] for k in fns}
    for _ in range(repeats):
        for key, fn in fns.items():
            t0 = time.perf_counter()
            fn()
            samples[key].append(time.perf_counter() - t0)
    return {k: statistics.median(v) for k, v in samples.items()}


def matmul_peak(dtype: torch.dtype = torch.float32, n: int = 1536, repeats: int = 5) -> float:
    """GFLOP/s of a square GEMM of the encoder's typical size (best of ``repeats``)."""
    a = torch.randn(n, n).to(dtype)
    b = torch.randn(n, n).to(dtype)
    torch.mm(a, b)
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        torch.mm(a, b)
        best = min(best, time.perf_counter() - t0)
    return 2 * n**3 / best / 1e9


def encoder_flops(config, batch: int, seq: int, backward: bool = False) -> float:
    """Multiply-add FLOPs (x2) of AlbertModel's forward on [batch, seq] (x3 with the backward pass).

    Counts the E->H mapping, per layer Q/K/V/output projections, the two attention matmuls and the
    FFN, and the pooler; LayerNorm/softmax/GELU are a rounding error next to these.
    """
    H, I, E, L = config.hidden_size, config.intermediate_size, config.embedding_size, config.num_hidden_layers
    tokens = batch * seq
    per_layer = tokens * 2 * (4 * H * H + 2 * H * I) + batch * 2 * 2 * seq * seq * H
    total = tokens * 2 * E * H + L * per_layer + batch * 2 * H * H
    return total * (3 if backward else 1)


def hf_albert(cls_name: str, config, attn: str = "sdpa"):
    """The transformers twin of an albertkit config (random weights, eval mode)."""
    import transformers

    transformers.logging.set_verbosity_error()
    hc = transformers.AlbertConfig(**config.to_dict())
    hc._attn_implementation = attn
    return getattr(transformers, cls_name)(hc).eval()


def same_weights_models(cls_name: str, config, seed: int = 0):
    """(albertkit model, transformers model) with identical random weights."""
    import albertkit.modeling as am

    torch.manual_seed(seed)
    ours = getattr(am, cls_name)(config).eval()
    theirs = hf_albert(cls_name, config)
    missing, unexpected = theirs.load_state_dict(ours.state_dict(), strict=False)
    bad = [k for k in missing if not k.endswith(("decoder.weight", "decoder.bias", "position_ids"))]
    if bad or unexpected:
        raise RuntimeError(f"weights did not transfer: missing {bad}, unexpected {unexpected}")
    if hasattr(theirs, "tie_weights"):
        theirs.tie_weights()
    from albertkit.fused import fuse_cpu_layers

    fuse_cpu_layers(ours)  # albertkit's CPU inference path (what optimize() and the pipelines use)
    return ours, theirs


def _fmt(value: float | None, unit: str) -> str:
    if value is None:
        return "-"
    if unit == "ms":
        return f"{value:.1f} ms" if value < 100 else f"{value:.0f} ms"
    if unit == "s":
        return f"{value:.2f} s"
    if unit == "MiB":
        return f"{value:.0f} MiB"
    return f"{value:,.0f} {unit}"


def format_table(rows: list[Row], title: str = "") -> str:
    """The markdown table: both figures, the ratio, achieved GFLOP/s against the peak."""
    out = []
    if title:
        out.append(f"### {title}\n")
    out.append("| benchmark | albertkit | transformers | ratio | albertkit GFLOP/s (% of peak) | note |")
    out.append("|---|---:|---:|---:|---:|---|")
    for r in rows:
        ratio = f"{r.ratio:.2f}x" if r.ratio is not None else "-"
        if r.gflops_ours is not None:
            pct = f" ({100 * r.gflops_ours / r.peak_gflops:.0f}%)" if r.peak_gflops else ""
            gf = f"{r.gflops_ours:.0f}{pct}"
        else:
            gf = "-"
        out.append(f"| {r.name} | {_fmt(r.ours, r.unit)} | {_fmt(r.theirs, r.unit)} | {ratio} | {gf} | {r.note} |")
    return "\n".join(out)
