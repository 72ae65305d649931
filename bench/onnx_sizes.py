"""ONNX file sizes of albert-base (random weights): fp32 and int8 exports against the safetensors weights.

    PYTHONPATH=src python bench/onnx_sizes.py [--keep DIR]

Prints the sizes, the ratios to the fp32 safetensors file and of int8 to fp32 (target <= 0.7x: the
shared block stored once, also after ONNX Runtime's optimizer concatenated Q/K/V per Attention node),
and how many MatMul / Attention nodes the int8 graph quantized.
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
            f"MatMul {ops.count('MatMul')}, quantized MatMul {quantized}, Attention {ops.count('Attention')}, "
            f"QAttention {ops.count('QAttention')}, initializers {len(graph.initializer)}"
        )
    print(f"int8 / fp32 ONNX: {int8.stat().st_size / fp32.stat().st_size:.2f}x")


if __name__ == "__main__":
    main()
