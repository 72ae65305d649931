"""bf16 self-attention on CPU: SDPA's flash kernel against albertkit's explicit form (``fused.attend_bf16``).

Per-layer time (the two alternate; median, ms) and max |error| against fp32 SDPA, at albert-base's 12 heads x 64, for
the shapes that decide ``fused._EXPLICIT_BF16_MIN_TOKENS`` / ``_EXPLICIT_BF16_MAX_LEN``. The last
row of each batch is padded to half its length.

    python bench/attention_bf16.py
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from albertkit.fused import attend_bf16  # noqa: E402

from bench.common import interleaved  # noqa: E402

SHAPES = ((1, 16), (1, 128), (4, 128), (8, 128), (32, 128), (32, 74), (8, 256), (8, 512))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=20)
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    heads, dim = 12, 64
    print("| B x T | SDPA bf16 ms | explicit bf16 ms | speed-up | max err SDPA / explicit (vs fp32) |")
    print("|---|---:|---:|---:|---|")
    for b, t in SHAPES:
        mixed = torch.randn(b, t, 3 * heads * dim).bfloat16()
        q, k, v = mixed.view(b, t, 3, heads, dim).permute(2, 0, 3, 1, 4).unbind(0)
        mask = torch.zeros(b, 1, 1, t)
        mask[-1, ..., t // 2 :] = torch.finfo(torch.float32).min
        mask16 = mask.bfloat16()

        def sdpa():
            return F.scaled_dot_product_attention(q, k, v, attn_mask=mask16).transpose(1, 2).reshape(b, t, heads * dim)

        def explicit():
            return attend_bf16(q, k, v, mask16)

        ref = F.scaled_dot_product_attention(q.float(), k.float(), v.float(), attn_mask=mask).transpose(1, 2).reshape(b, t, -1)
        errs = [float((f().float() - ref).abs().max()) for f in (sdpa, explicit)]
        secs = interleaved({"sdpa": sdpa, "explicit": explicit}, repeats=args.repeats, warmup=3)
        ms = [1e3 * secs["sdpa"], 1e3 * secs["explicit"]]
        print(f"| {b} x {t} | {ms[0]:.2f} | {ms[1]:.2f} | {ms[0] / ms[1]:.2f}x | {errs[0]:.1e} / {errs[1]:.1e} |")


if __name__ == "__main__":
    main()
