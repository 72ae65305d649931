"""Encoder forward, albertkit vs transformers AlbertModel (sdpa), same random albert-base-v2 weights.

Rows per shape: fp32 vs transformers fp32; bf16 vs transformers bf16 (note: ratio against
transformers fp32, the issue's target); and, with onnxruntime installed, albertkit's ONNX Runtime
fp32 / int8 backends and torch int8 against ONNX Runtime run the plain way.

    python -m bench.bench_forward --quick
"""

from __future__ import annotations

import argparse
import copy
import logging
import tempfile
from pathlib import Path

import torch

from bench.common import Row, encoder_flops, format_table, interleaved, matmul_peak, same_weights_models

SHAPES = ((1, 16), (8, 128), (32, 128), (8, 512))
QUICK_SHAPES = ((1, 16), (8, 128))


def _inputs(B: int, T: int, seed: int = 0) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return {
        "input_ids": torch.randint(5, 30000, (B, T), generator=g),
        "attention_mask": torch.ones(B, T, dtype=torch.long),
        "token_type_ids": torch.zeros(B, T, dtype=torch.long),
    }


def run(quick: bool = False, repeats: int | None = None, onnx: bool = True) -> list[Row]:
    from albertkit import AlbertConfig

    repeats = repeats or (2 if quick else 5)
    shapes = QUICK_SHAPES if quick else SHAPES
    cfg = AlbertConfig.from_name("albert-base-v2")
    ours, theirs = same_weights_models("AlbertModel", cfg)
    ours_bf16 = copy.deepcopy(ours).to(torch.bfloat16)
    theirs_bf16 = copy.deepcopy(theirs).to(torch.bfloat16)
    peak32, peak16 = matmul_peak(torch.float32), matmul_peak(torch.bfloat16)
    rows: list[Row] = []

    ort = {}
    if onnx:
        try:
            from albertkit.fast import OrtModel, export_onnx, quantize_int8

            tmp = Path(tempfile.mkdtemp(prefix="albertkit-bench-"))
            ort["fp32"] = OrtModel(export_onnx(ours, tmp / "fp32.onnx"))
            ort["int8"] = OrtModel(export_onnx(ours, tmp / "int8.onnx", int8=True))
            ort["torch_int8"] = quantize_int8(ours)
        except ImportError as exc:
            logging.warning("ONNX rows skipped: %s", exc)
            ort = {}

    for B, T in shapes:
        x = _inputs(B, T)
        flops = encoder_flops(cfg, B, T)
        fns = {
            "ak32": lambda: ours(**x),
            "hf32": lambda: theirs(**x),
            "ak16": lambda: ours_bf16(**x),
            "hf16": lambda: theirs_bf16(**x),
        }
        if ort:
            fns["ort32"] = lambda: ort["fp32"](**x)
            fns["ort8"] = lambda: ort["int8"](**x)
            fns["tq8"] = lambda: ort["torch_int8"](**x)
        with torch.inference_mode():
            t = interleaved(fns, repeats=repeats)
        ms = {k: v * 1e3 for k, v in t.items()}
        shape = f"{B} x {T}"
        tok_s = B * T / t["ak32"]
        rows.append(
            Row(f"forward fp32 {shape}", "ms", ms["ak32"], ms["hf32"], gflops_ours=flops / t["ak32"] / 1e9, peak_gflops=peak32,
                note=f"transformers {flops / t['hf32'] / 1e9:.0f} GFLOP/s; {tok_s:,.0f} tok/s"
                + (f"; ratio vs ORT fp32 {ms['ort32'] / ms['ak32']:.2f}x" if ort else ""))
        )
        rows.append(
            Row(f"forward bf16 {shape}", "ms", ms["ak16"], ms["hf16"], gflops_ours=flops / t["ak16"] / 1e9, peak_gflops=peak16,
                note=f"vs transformers **fp32**: {ms['hf32'] / ms['ak16']:.2f}x")
        )
        if ort:
            best8 = min(ms["ort8"], ms["tq8"])
            rows.append(
                Row(f"forward ORT fp32 (albertkit export) {shape}", "ms", ms["ort32"], ms["hf32"], gflops_ours=flops / t["ort32"] / 1e9,
                    peak_gflops=peak32, note="transformers column: transformers fp32")
            )
            rows.append(
                Row(f"forward int8 {shape}", "ms", ms["ort8"], ms["hf32"], gflops_ours=flops / (ms["ort8"] / 1e3) / 1e9,
                    note=f"albertkit onnx-int8 vs transformers fp32; torch int8 {ms['tq8']:.0f} ms; "
                    f"bf16 vs ORT int8: {ms['ort8'] / ms['ak16']:.2f}x; best int8 {best8:.0f} ms")
            )
    rows.insert(0, Row("matmul peak fp32 / bf16 (1536^3 GEMM)", "GFLOP/s", peak32, None, higher_is_better=True, note=f"bf16 {peak16:.0f} GFLOP/s"))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="two shapes, two repeats")
    parser.add_argument("--repeats", type=int)
    parser.add_argument("--no-onnx", action="store_true")
    args = parser.parse_args()
    print(format_table(run(args.quick, args.repeats, onnx=not args.no_onnx), "encoder forward"))


if __name__ == "__main__":
    main()
