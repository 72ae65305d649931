"""Where albertkit's forward time goes: torch.profiler's top operators and the gap to the matmul peak.

For a missed target (issue 12 asks for the profile and the distance to the CPU's measured matmul
peak): runs one albertkit path on one input a few times under torch.profiler and prints the
operators with the most self CPU time, the achieved GFLOP/s and the peak a square GEMM reaches in
the same process.

    python -m bench.profile_forward --mode fp32 --shape 32x128
    python -m bench.profile_forward --mode bf16 --shape real32
"""

from __future__ import annotations

import argparse
import copy
import sys
import tempfile
import time
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bench.common import encoder_flops, matmul_peak  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--mode", default="fp32", choices=["fp32", "bf16", "int8"])
    ap.add_argument("--shape", default="32x128", help="BxT or realN (bench_forward's inputs)")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--top", type=int, default=12)
    args = ap.parse_args()

    from albertkit import AlbertConfig, AlbertModel
    from albertkit.fast import optimize

    from bench.bench_forward import SHARED, make_inputs
    from bench.peers import save_checkpoint

    folder = save_checkpoint(Path(tempfile.mkdtemp(prefix="albertkit-prof-")) / "base", SHARED / "albert-base-v2" / "spiece.model")
    model = optimize(copy.deepcopy(AlbertModel.from_pretrained(str(folder)).eval()), args.mode)
    label, x = make_inputs(args.shape)
    flops = encoder_flops(AlbertConfig.from_name("albert-base-v2"), *x["input_ids"].shape)
    with torch.inference_mode():
        model(**x)
        t0 = time.perf_counter()
        with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU]) as prof:
            for _ in range(args.repeats):
                model(**x)
        took = (time.perf_counter() - t0) / args.repeats
    peak = matmul_peak(torch.bfloat16 if args.mode == "bf16" else torch.float32)
    print(f"albertkit {args.mode}, {label}: {took * 1e3:.0f} ms per forward (under the profiler), "
          f"{flops / took / 1e9:.0f} GFLOP/s = {100 * flops / took / 1e9 / peak:.0f}% of the measured "
          f"{'bf16' if args.mode == 'bf16' else 'fp32'} GEMM peak {peak:.0f} GFLOP/s")
    print(prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=args.top))


if __name__ == "__main__":
    main()
