"""fp32 GEMM throughput at albert-base's training shapes: torch's CPU GEMM (MKL) against oneDNN's.

The evidence behind :class:`albertkit.fused.OneDnnLinear`: for every Linear of the albert-base
pretraining step (4,096 token rows at 32x128) the three GEMMs of its forward and backward
(Y = X W^T, dX = dY W, dW = dY^T X), each as torch computes it for ``nn.Linear`` and as oneDNN's
linear does. The two alternate; median of ``--repeats`` after two warm-up calls; GFLOP/s.

    python bench/gemm_peak.py              # 2 threads, 4,096 rows
    python bench/gemm_peak.py --rows 1024
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import interleaved  # noqa: E402

SHAPES = ((768, 768, "Q/K/V/output"), (768, 3072, "FFN in"), (3072, 768, "FFN out"), (128, 768, "E->H"), (128, 30000, "MLM decoder"))


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
        cells = []
        for torch_fn, onednn_fn in pairs:
            t = interleaved({"torch": torch_fn, "oneDNN": onednn_fn}, repeats=args.repeats, warmup=2)
            cells.append(f"{flops / t['torch'] / 1e9:.0f} / {flops / t['oneDNN'] / 1e9:.0f}")
        print(f"| {name} ({k} -> {n}) | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
