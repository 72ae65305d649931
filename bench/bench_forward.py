"""Encoder forward, albertkit vs transformers AlbertModel (sdpa), same random albert-base-v2 weights.

Rows per shape: fp32 vs transformers fp32; bf16 vs transformers bf16 (note: ratio against
transformers fp32, the issue's target); and, with onnxruntime installed, albertkit's ONNX Runtime
fp32 / int8 backends and torch int8 against ONNX Runtime run the plain way: the transformers model
exported with ``torch.onnx.export`` (dynamic axes) and, for int8, ``quantize_dynamic`` with its
defaults, one InferenceSession with default options -- what a user who wants speed does today.

    python -m bench.bench_forward --quick
    python bench/bench_forward.py --shapes 1x16,8x128
"""

from __future__ import annotations

import argparse
import copy
import logging
import tempfile
from pathlib import Path

import sys
import warnings

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # also runnable as a script

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


def _plain_ort(model: torch.nn.Module, folder: Path) -> tuple[object, object]:
    """ONNX Runtime sessions (fp32, dynamic int8) of the transformers model, exported the plain way."""
    import onnxruntime
    from onnxruntime.quantization import QuantType, quantize_dynamic

    x = _inputs(1, 16)
    axes = {0: "batch", 1: "sequence"}
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            model, (x["input_ids"], x["attention_mask"], x["token_type_ids"]), str(folder / "hf.onnx"),
            input_names=list(x), output_names=["last_hidden_state", "pooler_output"],
            dynamic_axes={**{k: axes for k in x}, "last_hidden_state": axes, "pooler_output": {0: "batch"}},
            opset_version=17, dynamo=False,
        )
    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.ERROR)  # quantize_dynamic's "consider pre-processing" notice
    try:
        quantize_dynamic(str(folder / "hf.onnx"), str(folder / "hf-int8.onnx"), weight_type=QuantType.QInt8)
    finally:
        root.setLevel(level)
    sessions = [onnxruntime.InferenceSession(str(folder / f), providers=["CPUExecutionProvider"]) for f in ("hf.onnx", "hf-int8.onnx")]

    def runner(session):
        return lambda **inputs: session.run(None, {k: v.numpy() for k, v in inputs.items()})

    return runner(sessions[0]), runner(sessions[1])


def run(quick: bool = False, repeats: int | None = None, onnx: bool = True, shapes: tuple[tuple[int, int], ...] | None = None) -> list[Row]:
    from albertkit import AlbertConfig

    repeats = repeats or (2 if quick else 5)
    shapes = shapes or (QUICK_SHAPES if quick else SHAPES)
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
            ort["plain32"], ort["plain8"] = _plain_ort(theirs, tmp)
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
        ort_fns = {}
        if ort:
            fns["tq8"] = lambda: ort["torch_int8"](**x)
            ort_fns["ort32"] = lambda: ort["fp32"](**x)
            ort_fns["ort8"] = lambda: ort["int8"](**x)
            ort_fns["pl32"] = lambda: ort["plain32"](**x)
            ort_fns["pl8"] = lambda: ort["plain8"](**x)
        # torch and ONNX Runtime candidates alternate in separate groups: ORT's worker threads keep
        # spinning for a while after each run, which would slow whichever torch call came next (a
        # 1 x 16 forward took 65 ms instead of 22 ms right after an ORT call).
        with torch.inference_mode():
            t = interleaved(fns, repeats=repeats)
            if ort_fns:
                t.update(interleaved(ort_fns, repeats=repeats))
        ms = {k: v * 1e3 for k, v in t.items()}
        shape = f"{B} x {T}"
        tok_s = B * T / t["ak32"]
        rows.append(
            Row(f"forward fp32 {shape}", "ms", ms["ak32"], ms["hf32"], gflops_ours=flops / t["ak32"] / 1e9, peak_gflops=peak32,
                note=f"transformers {flops / t['hf32'] / 1e9:.0f} GFLOP/s; {tok_s:,.0f} tok/s"
                + (f"; ratio vs plain ORT fp32 {ms['pl32'] / ms['ak32']:.2f}x ({ms['pl32']:.1f} ms)" if ort else ""))
        )
        rows.append(
            Row(f"forward bf16 {shape}", "ms", ms["ak16"], ms["hf16"], gflops_ours=flops / t["ak16"] / 1e9, peak_gflops=peak16,
                note=f"vs transformers **fp32**: {ms['hf32'] / ms['ak16']:.2f}x")
        )
        if ort:
            best8 = min(ms["ort8"], ms["tq8"])
            rows.append(
                Row(f"forward ORT fp32 (albertkit export) {shape}", "ms", ms["ort32"], ms["pl32"], gflops_ours=flops / t["ort32"] / 1e9,
                    peak_gflops=peak32, note="other column: plain ORT fp32 (transformers export)")
            )
            rows.append(
                Row(f"forward int8 {shape}", "ms", best8, ms["pl8"], gflops_ours=flops / (best8 / 1e3) / 1e9,
                    note=f"best albertkit int8 (onnx-int8 {ms['ort8']:.1f} ms, torch int8 {ms['tq8']:.1f} ms) vs plain ORT int8 "
                    f"(transformers export + quantize_dynamic); vs transformers fp32 {ms['hf32'] / best8:.2f}x; "
                    f"albertkit bf16 vs plain ORT int8: {ms['pl8'] / ms['ak16']:.2f}x")
            )
    rows.insert(0, Row("matmul peak fp32 / bf16 (1536^3 GEMM)", "GFLOP/s", peak32, None, higher_is_better=True, note=f"bf16 {peak16:.0f} GFLOP/s"))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="two shapes, two repeats")
    parser.add_argument("--repeats", type=int)
    parser.add_argument("--no-onnx", action="store_true")
    parser.add_argument("--shapes", help="comma list of BxT, e.g. 1x16,8x128 (default: all four)")
    args = parser.parse_args()
    shapes = tuple(tuple(int(v) for v in s.split("x")) for s in args.shapes.split(",")) if args.shapes else None
    print(format_table(run(args.quick, args.repeats, onnx=not args.no_onnx, shapes=shapes), "encoder forward"))  # type: ignore[arg-type]


if __name__ == "__main__":
    main()
