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

__all__ = [
    "Check",
    "Row",
    "interleaved",
    "matmul_peak",
    "encoder_flops",
    "format_table",
    "hf_albert",
    "same_weights_models",
    "header",
    "max_abs_diff",
    "min_token_cosine",
    "fp32_check",
    "lowp_check",
    "top1_check",
    "FP32_TOL",
    "MIN_COSINE",
    "MIN_TOP1",
]

# Agreement bounds a row must meet before its ratio is printed (issue 12).
FP32_TOL = 1e-4  # max |diff| of fp32 hidden states against the peer's, at real (non-pad) tokens
MIN_COSINE = 0.99  # bf16 / int8: min per-token cosine of the hidden states against fp32
MIN_TOP1 = 0.97  # bf16 / int8: fill-mask top-1 identical to fp32 on real sentences


@dataclass
class Check:
    """The agreement check a row passed (or failed) before it was timed.

        >>> Check("max|diff| 3e-06 <= 1e-04", True).text
        'max|diff| 3e-06 <= 1e-04'
    """

    text: str
    passed: bool

    @staticmethod
    def all(*checks: "Check") -> "Check":
        texts = list(dict.fromkeys(c.text for c in checks))  # a check shared by both sides once
        return Check("; ".join(texts), all(c.passed for c in checks))


def max_abs_diff(a: torch.Tensor, b: torch.Tensor, mask: torch.Tensor | None = None) -> float:
    """Largest |a - b| over the real tokens (``mask`` [B, T] of 1/0; padding rows are free to differ)."""
    d = (a.float() - b.float()).abs()
    if mask is not None:
        d = d[mask.bool()]
    return float(d.max())


def min_token_cosine(a: torch.Tensor, b: torch.Tensor, mask: torch.Tensor | None = None) -> float:
    """Smallest cosine between the hidden-state vectors of the same token in ``a`` and ``b``."""
    a, b = a.float(), b.float()
    if mask is not None:
        a, b = a[mask.bool()], b[mask.bool()]
    return float(torch.nn.functional.cosine_similarity(a.reshape(-1, a.shape[-1]), b.reshape(-1, b.shape[-1]), dim=-1).min())


def fp32_check(who: str, got: torch.Tensor, ref: torch.Tensor, mask: torch.Tensor | None = None) -> Check:
    d = max_abs_diff(got, ref, mask)
    return Check(f"{who} max|diff| {d:.1e}", d <= FP32_TOL)


def lowp_check(who: str, got: torch.Tensor, ref: torch.Tensor, mask: torch.Tensor | None = None) -> Check:
    c = min_token_cosine(got, ref, mask)
    return Check(f"{who} cos {c:.4f}", c >= MIN_COSINE)


def top1_check(who: str, agree: float) -> Check:
    return Check(f"{who} top-1 {agree:.1%}", agree >= MIN_TOP1)


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
    check: Check | None = None

    @property
    def failed(self) -> bool:
        return self.check is not None and not self.check.passed

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
    """GFLOP/s of a square GEMM of the encoder's typical size: the faster of ``torch.mm`` (MKL on x86)
    and oneDNN's linear (what albertkit's CPU paths call), best of ``repeats`` each.

    On the AVX-512 EPYC of bench/RESULTS.md the two differ by 1.7x in fp32 (MKL ~120, oneDNN ~210
    GFLOP/s), so "% of peak" against MKL alone overstated how close a oneDNN path was to the CPU's limit.
    """
    a = torch.randn(n, n).to(dtype)
    b = torch.randn(n, n).to(dtype)
    calls = [lambda: torch.mm(a, b)]
    from albertkit.cpu import cpu_capability
    from albertkit.fused import onednn_available

    # oneDNN has no bf16 inner product below AVX512-BF16 when held to AVX2 (ONEDNN_MAX_CPU_ISA): it
    # refuses to create the primitive, so bf16 is timed there with torch.mm alone
    if onednn_available() and (dtype == torch.float32 or cpu_capability().native_bf16):
        w = b.t().contiguous()
        calls.append(lambda: torch.ops.mkldnn._linear_pointwise.default(a, w, None, "none", [], ""))
    best = float("inf")
    for call in calls:
        call()
        for _ in range(repeats):
            t0 = time.perf_counter()
            call()
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
    out.append("| benchmark (albertkit side vs peer side) | albertkit | peer | ratio | albertkit GFLOP/s (% of peak) | checked before timing | note |")
    out.append("|---|---:|---:|---:|---:|---|---|")
    for r in rows:
        ratio = "FAILED" if r.failed else (f"{r.ratio:.2f}x" if r.ratio is not None else "-")
        if r.gflops_ours is not None:
            pct = f" ({100 * r.gflops_ours / r.peak_gflops:.0f}%)" if r.peak_gflops else ""
            gf = f"{r.gflops_ours:.0f}{pct}"
        else:
            gf = "-"
        check = "-" if r.check is None else ("FAILED: " if r.failed else "ok: ") + r.check.text
        out.append(f"| {r.name} | {_fmt(r.ours, r.unit)} | {_fmt(r.theirs, r.unit)} | {ratio} | {gf} | {check} | {r.note} |")
    return "\n".join(out)


def _lscpu() -> dict[str, str]:
    import subprocess

    try:
        text = subprocess.run(["lscpu"], capture_output=True, text=True, timeout=10).stdout
    except (OSError, subprocess.SubprocessError):
        return {}
    return {k.strip(): v.strip() for k, _, v in (line.partition(":") for line in text.splitlines()) if v}


# What holds torch's dispatch, oneDNN, fbgemm, MKL and albertkit's detection to AVX2 on a newer CPU
# (ONNX Runtime has no such switch); a header names the ones set.
AVX2_ENV = {"ATEN_CPU_CAPABILITY": "avx2", "ONEDNN_MAX_CPU_ISA": "AVX2", "FBGEMM_ENABLE_INSTRUCTIONS": "AVX2",
            "MKL_ENABLE_INSTRUCTIONS": "AVX2", "ALBERTKIT_CPU_CAPABILITY": "avx2"}

# The flags that decide the fast paths (albertkit.cpu and the kernels under it), in the order printed.
_KEY_FLAGS = ("avx2", "fma", "avx512f", "avx512bw", "avx512vl", "avx512_vnni", "avx_vnni", "avx512_bf16",
              "avx_ne_convert", "amx_tile", "amx_bf16", "amx_int8")


def header(command: str | None = None) -> str:
    """The lines every results table starts with: date, command, CPU (lscpu model and the flags that
    matter), albertkit's capability class, threads, versions and the load average.

        >>> print(header("python -m bench.run_all"))  # doctest: +SKIP
    """
    import datetime
    import os
    import shlex
    import sys

    from albertkit.cpu import cpu_capability

    info = _lscpu()
    flags = set(info.get("Flags", "").split())
    have = [f for f in _KEY_FLAGS if f in flags]
    lacks = [f for f in _KEY_FLAGS if f not in flags]
    forced = {k: os.environ[k] for k in AVX2_ENV if os.environ.get(k)}
    try:
        import onnxruntime

        ort = onnxruntime.__version__
    except ImportError:
        ort = "not installed"
    import transformers

    lines = [
        f"- date: {datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC",
        f"- command: `{command or ' '.join(shlex.quote(a) for a in [os.path.basename(sys.executable), *sys.argv])}`"
        + (f" with {' '.join(f'{k}={v}' for k, v in forced.items())}" if forced else ""),
        f"- CPU: {info.get('Model name', 'unknown')} ({info.get('CPU(s)', '?')} CPUs); flags: {' '.join(have) or 'none'}"
        f" (lacks: {' '.join(lacks) or 'none'})",
        f"- albertkit class: {cpu_capability().describe()}; torch dispatch {torch.backends.cpu.get_cpu_capability()}",
        f"- torch {torch.__version__} ({torch.get_num_threads()} threads), transformers {transformers.__version__}, onnxruntime {ort}",
        f"- load average at start: {' '.join(f'{x:.2f}' for x in os.getloadavg())}",
    ]
    return "\n".join(lines)
