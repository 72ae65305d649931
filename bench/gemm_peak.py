"""fp32 GEMM throughput at albert-base's training shapes: torch's CPU GEMM (MKL) against oneDNN's.

The evidence behind :class:`albertkit.fused.OneDnnLinear`: for every Linear of the albert-base
pretraining step (4,096 token rows at 32x128) the three GEMMs of its forward and backward
(Y = X W^T, dX = dY W, dW = dY^T X), each as torch computes it for ``nn.Linear`` and as oneDNN's
linear does. Median of ``--repeats`` after two warm-up calls; GFLOP/s, higher is better.

    python bench/gemm_peak.py              # 2 threads, 4,096 rows
    python bench/gemm_peak.py --rows 1024
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

SHAPES = ((768, 768, "Q/K/V/output"), (768, 3072, "FFN in"), (3072, 768, "FFN out"), (128, 768, "E->H"), (128, 30000, "MLM decoder"))


def _median_s(fn, repeats: int) -> float:
    fn()
    fn()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=4096, help="token rows (batch x sequence length)")
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    onednn = torch.ops.mkldnn._linear_pointwise.default
    print("| Linear (in -> out) | forward torch / oneDNN | dX torch / oneDNN | dW torch / oneDNN |")
    print("|---|---:|---:|---:|")
    for k, n, name in SHAPES:
        x, w, dy = torch.randn(args.rows, k), torch.randn(n, k), torch.randn(args.rows, n)
        flops = 2 * args.rows * k * n
        pairs = (
            (lambda: torch.nn.functional.linear(x, w), lambda: onednn(x, w, None, "none", [], "")),
            (lambda: dy.mm(w), lambda: onednn(dy, w.t(), None, "none", [], "")),
            (lambda: dy.t().mm(x), lambda: onednn(dy.t(), x.t(), None, "none", [], "")),
        )
        cells = [" / ".join(f"{flops / _median_s(f, args.repeats) / 1e9:.0f}" for f in pair) for pair in pairs]
        print(f"| {name} ({k} -> {n}) | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
