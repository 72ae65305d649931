"""ONNX file sizes of albert-base (random weights): fp32 and int8 exports against the safetensors weights.

    PYTHONPATH=src python bench/onnx_sizes.py [--task fill-mask] [--keep DIR]

Prints the sizes, the ratios to the fp32 safetensors file, and how many MatMuls the int8 graph
quantized (ONNX Runtime quantizes only what its shape inference can see without quant_pre_process).
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import torch


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--keep", help="write the files here instead of a temporary folder")
    args = parser.parse_args()
    import onnx

    from albertkit import AlbertConfig, AlbertForMaskedLM
    from albertkit.fast import export_onnx

    torch.manual_seed(0)
    model = AlbertForMaskedLM(AlbertConfig.from_name("albert-base-v2")).eval()
    folder = Path(args.keep or tempfile.mkdtemp(prefix="albertkit-sizes-"))
    model.save_pretrained(str(folder / "pt"))
    weights = (folder / "pt" / "model.safetensors").stat().st_size
    fp32 = export_onnx(model, folder / "fp32.onnx")
    int8 = export_onnx(model, folder / "int8.onnx", int8=True)
    print(f"safetensors fp32 weights: {weights / 1e6:.1f} MB")
    for path in (fp32, int8):
        graph = onnx.load(str(path)).graph
        ops = [n.op_type for n in graph.node]
        quantized = sum(op in ("MatMulInteger", "DynamicQuantizeMatMul", "MatMulIntegerToFloat") for op in ops)
        size = path.stat().st_size
        print(
            f"{path.name}: {size / 1e6:.1f} MB = {size / weights:.2f}x weights; "
            f"MatMul {ops.count('MatMul')}, quantized MatMul {quantized}, initializers {len(graph.initializer)}"
        )


if __name__ == "__main__":
    main()
