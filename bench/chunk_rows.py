"""oneDNN's fused linear (the kernels of ``fused.FusedAlbertLayer``) by number of rows, and the FFN on row chunks.

Prints GFLOP/s of each GEMM of an albert-base block (packed weights, as the fused block runs them)
for 64 to 4,096 rows, then the FFN (GEMM + GELU epilogue, GEMM + residual, LayerNorm) at 512 to
4,096 rows (``--ffn-rows``) run all at once and on chunks. The numbers behind ``fused._AMX_CHUNK_ROWS``.

    python bench/chunk_rows.py [--dtype bfloat16|float32]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Callable

import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import interleaved  # noqa: E402

ROWS = (64, 128, 256, 384, 512, 768, 1024, 1536, 2048, 4096)
SHAPES = ((768, 2304, "none"), (768, 768, "none"), (768, 3072, "gelu"), (3072, 768, "none"))  # QKV, dense, FFN, FFN out


def median_ms(fn: Callable[[], object], repeats: int = 20) -> float:
    return interleaved({"fn": fn}, repeats=repeats, warmup=3)["fn"] * 1e3


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dtype", default="bfloat16", choices=("bfloat16", "float32"))
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--ffn-rows", type=int, nargs="+", default=[512, 1024, 1536, 2048, 4096])
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    dtype = getattr(torch, args.dtype)
    linear = torch.ops.mkldnn._linear_pointwise

    def pack(w: torch.Tensor) -> torch.Tensor:
        return torch.ops.mkldnn._reorder_linear_weight(w, None) if dtype == torch.bfloat16 else w

    print(f"| in x out (epilogue) | {' | '.join(f'{m} rows' for m in ROWS)} |")
    print("|---|" + "---:|" * len(ROWS))
    for k, n, act in SHAPES:
        w, b = pack((torch.randn(n, k) * 0.02).to(dtype)), torch.zeros(n, dtype=dtype)
        cells = []
        for m in ROWS:
            x = torch.randn(m, k, dtype=dtype)
            ms = median_ms(lambda: linear.default(x, w, b, act, [], "tanh" if act == "gelu" else ""))
            cells.append(f"{2 * m * k * n / ms / 1e6:.0f}")
        print(f"| {k} x {n} ({act}) | {' | '.join(cells)} | GFLOP/s")

    h, i = 768, 3072
    w1, w2 = pack((torch.randn(i, h) * 0.02).to(dtype)), pack((torch.randn(h, i) * 0.02).to(dtype))
    b1, b2, g, beta = torch.zeros(i, dtype=dtype), torch.zeros(h, dtype=dtype), torch.ones(h, dtype=dtype), torch.zeros(h, dtype=dtype)

    def ffn(x: torch.Tensor) -> torch.Tensor:
        inter = linear.default(x, w1, b1, "gelu", [], "tanh")
        return F.layer_norm(linear.binary(inter, x, w2, b2, "add"), (h,), g, beta)

    for m in args.ffn_rows:
        x = torch.randn(m, h, dtype=dtype)
        row = [f"all at once {median_ms(lambda: ffn(x)):.2f} ms"]
        for size in (128, 256, 384):
            def chunked() -> torch.Tensor:
                out = torch.empty_like(x)
                for s in range(0, m, size):
                    out[s : s + size] = ffn(x[s : s + size])
                return out

            row.append(f"chunks of {size}: {median_ms(chunked):.2f} ms")
        print(f"FFN at {m} rows: " + ", ".join(row))


if __name__ == "__main__":
    main()
