"""Where int8's fill-mask disagreement with fp32 comes from: weights or activations, and which layer.

Issue 12's int8 rows need >= 97% fill-mask top-1 agreement with fp32 (bench/agreement.py's
sentences on the shipped albert-mini-en). This script splits the error of dynamic int8 into its
sources, with each source alone (KL of the [MASK] distributions to fp32, and top-1 agreement):

* a simulation in torch (fake quantization, rounding as the kernels do it, every other op fp32) of
  the shared block's Linears: weights only (symmetric int8 per output channel); activations with
  one asymmetric uint8 scale per tensor (ONNX Runtime's ``DynamicQuantizeLinear``, so the whole
  batch shares it); one symmetric scale per token (what albertkit's torch int8 approximates); each
  also after SmoothQuant smoothing (``quantization.smoothing_factors``, calibrated as
  ``quantize_int8`` does by default);
* ONNX Runtime itself (albertkit's ``export_onnx`` + the quantizer of ``quantize_onnx_int8``) with
  one group of the block's MatMuls quantized at a time: the fused Q/K/V (``Attention``), the
  attention output (``dense``), FFN in (``ffn``), FFN out (``ffn_output``), then all of them;
* albertkit bf16 and transformers bf16, for scale (a format with 8 significant bits per value), and
  albertkit's torch int8 as ``optimize(model, "int8")`` builds it (and, with ``--calibration N``,
  calibrated on N other corpus sentences).

    python -m bench.int8_error_sources [--n 1000] [--alphas 0.35,0.5] [--no-ort] [--calibration 256]
"""

from __future__ import annotations

import argparse
import copy
import re
import sys
import tempfile
import warnings
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor, nn

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bench.agreement import _folder, agreement_batches, mask_logits  # noqa: E402

__all__ = ["FakeInt8Linear", "compare", "simulate", "ort_groups"]


class FakeInt8Linear(nn.Module):
    """A Linear with int8 rounding simulated in fp32. ``activations``: ``"none"`` (weights only),
    ``"tensor"`` (one asymmetric uint8 scale and zero point for the whole input, ONNX Runtime's
    dynamic scheme) or ``"token"`` (one symmetric scale per row). ``smoothing``: SmoothQuant factors
    s (input divided by s, weight columns multiplied by it)."""

    def __init__(self, linear: nn.Linear, activations: str, smoothing: Tensor | None = None) -> None:
        super().__init__()
        self.activations, self.smoothing, self.bias = activations, smoothing, linear.bias
        w = linear.weight.detach() * (1 if smoothing is None else smoothing)
        scale = w.abs().amax(dim=1, keepdim=True).clamp(min=1e-12) / 127
        self.weight = (w / scale).round().clamp(-128, 127) * scale

    def forward(self, x: Tensor) -> Tensor:
        if self.smoothing is not None:
            x = x / self.smoothing
        if self.activations == "tensor":
            lo, hi = min(x.min().item(), 0.0), max(x.max().item(), 0.0)
            scale = max(hi - lo, 1e-12) / 255
            zero = round(-lo / scale)
            x = (((x / scale).round() + zero).clamp(0, 255) - zero) * scale
        elif self.activations == "token":
            scale = x.abs().amax(dim=-1, keepdim=True).clamp(min=1e-12) / 127
            x = (x / scale).round().clamp(-127, 127) * scale
        return F.linear(x, self.weight, self.bias)


def compare(logits: Tensor, ref: Tensor) -> tuple[float, float]:
    """(KL(fp32 || path) per [MASK] position, top-1 agreement) of two [positions, vocab] logits."""
    kl = F.kl_div(logits.log_softmax(-1), ref.log_softmax(-1), log_target=True, reduction="batchmean").item()
    return kl, (logits.argmax(-1) == ref.argmax(-1)).float().mean().item()


def simulate(model: nn.Module, activations: str, alpha: float | None) -> nn.Module:
    """A copy of ``model`` (an AlbertForMaskedLM) whose shared block's Linears are FakeInt8Linear."""
    from albertkit.quantization import calibration_batch, input_absmax, smoothing_factors

    model = copy.deepcopy(model).eval()
    block = model.albert.encoder.albert_layer_groups
    linears = {name: m for name, m in block.named_modules() if isinstance(m, nn.Linear)}
    factors: dict[str, Tensor] = {}
    if alpha:
        cfg = model.config
        maxima = input_absmax(model.albert, linears, [calibration_batch(cfg.vocab_size, cfg.max_position_embeddings)])
        factors = {name: smoothing_factors(maxima[name], linears[name].weight, alpha) for name in maxima}
    for name, linear in linears.items():
        parent, _, attr = name.rpartition(".")
        setattr(block.get_submodule(parent) if parent else block, attr, FakeInt8Linear(linear, activations, factors.get(name)))
    return model


def ort_groups(model: nn.Module, workdir: Path) -> dict[str, Path]:
    """albertkit's fused fp32 export, quantized by ``quantize_onnx_int8`` one group of the shared
    block's MatMuls at a time and then all: {label: int8 file}."""
    import onnx
    from albertkit.fast import export_onnx, quantize_onnx_int8

    fp32 = export_onnx(model, workdir / "fp32.onnx")
    groups: dict[str, list[str]] = {}
    for node in onnx.load(str(fp32)).graph.node:
        if node.op_type == "Attention":
            groups.setdefault("Q/K/V (Attention) only", []).append(node.name)
        elif node.op_type == "MatMul" and "/albert_layers" in node.name:
            groups.setdefault(re.sub(r"_\d+$", "", node.name.split("/")[-2]) + " only", []).append(node.name)
    out = {f"ORT int8, {label}": quantize_onnx_int8(fp32, workdir / f"int8-{i}.onnx", nodes=names) for i, (label, names) in enumerate(groups.items())}
    out["ORT int8, all (albertkit onnx-int8)"] = quantize_onnx_int8(fp32, workdir / "int8-all.onnx")
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=1000, help="sentences (default 1000, bench/agreement.py's)")
    ap.add_argument("--alphas", default="0.35,0.5", help="SmoothQuant alphas to simulate besides none")
    ap.add_argument("--no-ort", action="store_true", help="skip the ONNX Runtime rows")
    ap.add_argument("--calibration", type=int, default=0, metavar="N",
                    help="also albertkit int8 with its smoothing calibrated on N other corpus sentences")
    args = ap.parse_args()

    from albertkit import AlbertForMaskedLM
    from albertkit.fast import OrtModel, optimize
    from bench.peers import transformers_model

    folder = _folder()
    batches, mask_id = agreement_batches(args.n)
    model = AlbertForMaskedLM.from_pretrained(str(folder)).eval()
    ref = mask_logits(model, batches, mask_id)
    paths: dict[str, object] = {
        "albertkit bf16": optimize(copy.deepcopy(model), "bf16"),
        "transformers bf16": transformers_model("AlbertForMaskedLM", folder, torch.bfloat16),
        "albertkit int8 (torch: per-token scales, smoothing 0.35)": optimize(copy.deepcopy(model), "int8"),
    }
    if args.calibration:
        from albertkit import AlbertTokenizer
        from albertkit.quantization import calibration_from_texts
        from bench.agreement import SHARED
        from bench.fill_mask_agreement import corpus_mask_sentences

        # other sentences than the measured ones (seed 99), their [MASK] filled with a common word
        texts = [t.replace("[MASK]", "the") for t in corpus_mask_sentences(SHARED / "corpus", args.calibration, seed=99)]
        calibration = calibration_from_texts(AlbertTokenizer.from_pretrained(str(folder)), texts)
        paths[f"albertkit int8, smoothing calibrated on {len(texts)} corpus sentences"] = optimize(copy.deepcopy(model), "int8", calibration=calibration)
    alphas = [None] + [float(a) for a in args.alphas.split(",") if a]
    for activations in ("none", "tensor", "token"):
        for alpha in alphas:
            if activations == "none" and alpha:
                continue
            what = {"none": "weights only", "tensor": "weights + activations per tensor", "token": "weights + activations per token"}[activations]
            paths[f"simulated: {what}" + (f", smoothed (alpha {alpha})" if alpha else "")] = simulate(model, activations, alpha)
    if not args.no_ort:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            for label, path in ort_groups(model, Path(tempfile.mkdtemp(prefix="int8-sources-"))).items():
                paths[label] = OrtModel(path)
    print(f"{sum(int((b['input_ids'] == mask_id).sum()) for b in batches)} [MASK] positions, albert-mini-en ({folder})")
    print("| path | KL to fp32 (nats) | top-1 identical to fp32 |\n|---|---:|---:|")
    for name, path in paths.items():
        kl, top1 = compare(mask_logits(path, batches, mask_id), ref)
        print(f"| {name} | {kl:.5f} | {top1:.1%} |", flush=True)


if __name__ == "__main__":
    main()
