"""PyTorch's dynamic int8 Linear on its two x86 engines, fbgemm and oneDNN, at albert-base's shapes.

The evidence behind :func:`albertkit.quantization.int8_engine`: the same quantized weight (8-bit,
per channel) packed once per engine, the same fp32 input, ``torch.ops.quantized.linear_dynamic``
timed for each, with the bf16 oneDNN Linear of the fused block beside them for scale. Outputs are
compared first (the two engines do the same integer arithmetic: max |diff| must stay at float
rounding). The candidates alternate; median of ``--repeats``; microseconds per call.

    python bench/int8_engines.py                    # 10 rows (one sentence) and 1,024 (8 x 128)
    python bench/int8_engines.py --rows 10 4096
"""

from __future__ import annotations

import argparse
import sys
import warnings
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import interleaved  # noqa: E402

SHAPES = ((768, 2304, "Q/K/V (one GEMM)"), (768, 768, "attention output"), (768, 3072, "FFN in"), (3072, 768, "FFN out"))


def packed(weight: torch.Tensor, bias: torch.Tensor, engine: str) -> object:
    from albertkit.quantization import _packing_for

    q = torch.quantize_per_channel(weight, weight.abs().amax(1) / 127, torch.zeros(weight.shape[0], dtype=torch.long), 0, torch.qint8)
    with _packing_for(engine):
        return torch.ops.quantized.linear_prepack(q, bias)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, nargs="+", default=[10, 1024])
    ap.add_argument("--repeats", type=int, default=21)
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    warnings.simplefilter("ignore")
    engines = [e for e in ("fbgemm", "onednn") if e in torch.backends.quantized.supported_engines]
    print(f"threads {args.threads}; engines {', '.join(engines)}; microseconds per call (median of {args.repeats})")
    print("| rows | Linear (in -> out) | " + " | ".join(f"int8 {e}" for e in engines) + " | bf16 oneDNN | max abs diff between engines |")
    print("|---:|---|" + "---:|" * (len(engines) + 2))
    torch.manual_seed(0)
    for rows in args.rows:
        for k, n, name in SHAPES:
            w, b, x = torch.randn(n, k) * 0.02, torch.randn(n) * 0.02, torch.randn(rows, k)
            packs = {e: packed(w, b, e) for e in engines}
            outs = {e: torch.ops.quantized.linear_dynamic(x, p, reduce_range=False) for e, p in packs.items()}
            ref = outs[engines[0]]
            diff = max((o - ref).abs().max().item() for o in outs.values())
            calls = {f"int8 {e}": (lambda p=p: torch.ops.quantized.linear_dynamic(x, p, reduce_range=False)) for e, p in packs.items()}
            if torch.backends.mkldnn.is_available() and torch.ops.mkldnn._is_mkldnn_bf16_supported():
                xb, bb = x.bfloat16(), b.bfloat16()
                wb = torch.ops.mkldnn._reorder_linear_weight(w.bfloat16(), None)
                calls["bf16"] = lambda: torch.ops.mkldnn._linear_pointwise.default(xb, wb, bb, "none", [], "")
            seconds = interleaved(calls, repeats=args.repeats, warmup=3)
            cells = [f"{seconds[c] * 1e6:.0f}" for c in calls if c.startswith("int8")]
            cells.append(f"{seconds['bf16'] * 1e6:.0f}" if "bf16" in seconds else "-")
            print(f"| {rows} | {name}: {k} -> {n} | " + " | ".join(cells) + f" | {diff:.1e} |")


if __name__ == "__main__":
    main()
