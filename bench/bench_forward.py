"""Encoder forward (AlbertModel, albert-base-v2 shape), albertkit against each peer, like for like.

One random albert-base-v2-shaped checkpoint is saved once and loaded by each side with its own
``from_pretrained``. albertkit runs its documented paths (``optimize(model, "fp32" | "bf16" | "int8"
| "onnx-int8")``); the peers are set up as their docs advise (bench/peers.py). Inputs: random ids at
8 x 128 and 32 x 128 without padding, and a padded batch of 32 real corpus sentences of mixed
length; every candidate gets the same tensors.

Before a row is timed its two sides are checked against transformers fp32 on the same input: fp32
max |diff| <= 1e-4 at real tokens; bf16 / int8 per-token hidden-state cosine >= 0.99 and (given
``agreement`` from bench/agreement.py) fill-mask top-1 identical on >= 97% of real sentences. A row
whose check fails prints FAILED instead of a ratio. All candidates of a shape run in alternation
(A, B, C, ..., A, B, C, ...; ONNX Runtime does not spin, so it does not slow the next torch call);
the median of the repeats is reported.

    python -m bench.bench_forward --quick
    python -m bench.bench_forward --shapes 8x128,32x128,real32 --repeats 3
"""

from __future__ import annotations

import argparse
import copy
import logging
import sys
import tempfile
import warnings
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))  # also runnable as a script

from bench.common import Check, Row, encoder_flops, format_table, fp32_check, interleaved, lowp_check, matmul_peak, top1_check  # noqa: E402

SHARED = REPO.parent / "shared" / "data"
SHAPES = ("8x128", "32x128", "real32")
QUICK_SHAPES = ("1x16", "real8")


def real_batch(n: int, seed: int = 0, max_length: int = 128) -> dict[str, torch.Tensor]:
    """``n`` corpus sentences of mixed length (6..90 words, the longest cut at ``max_length`` tokens),
    in corpus-sample order, padded to the longest: the batch an embedding loop without sorting sees."""
    from albertkit import AlbertTokenizer

    from bench.fill_mask_agreement import corpus_mask_sentences

    texts = [t.replace("[MASK]", "the") for t in corpus_mask_sentences(SHARED / "corpus", n, seed=seed, max_words=90)]
    tok = AlbertTokenizer(str(SHARED / "albert-base-v2" / "spiece.model"))
    enc = tok(texts, padding=True, truncation=True, max_length=max_length, return_tensors="pt")
    ids = enc["input_ids"]
    return {"input_ids": ids, "attention_mask": enc["attention_mask"], "token_type_ids": torch.zeros_like(ids)}


def make_inputs(spec: str) -> tuple[str, dict[str, torch.Tensor]]:
    """"BxT" -> random ids, no padding; "realN" -> N real sentences padded (see :func:`real_batch`)."""
    if spec.startswith("real"):
        x = real_batch(int(spec[4:]))
        lengths = x["attention_mask"].sum(1)
        label = (f"{len(lengths)} real sentences padded to {x['input_ids'].shape[1]} "
                 f"(lengths {int(lengths.min())}-{int(lengths.max())}, mean {float(lengths.float().mean()):.0f})")
        return label, x
    B, T = (int(v) for v in spec.split("x"))
    g = torch.Generator().manual_seed(0)
    ids = torch.randint(5, 30000, (B, T), generator=g)
    return f"{B} x {T} (random ids, no padding)", {
        "input_ids": ids, "attention_mask": torch.ones(B, T, dtype=torch.long), "token_type_ids": torch.zeros(B, T, dtype=torch.long)}


def build(folder: Path, workdir: Path, onnx: bool = True) -> tuple[dict[str, object], str]:
    """Every candidate, keyed by a short name, and a note on how the ONNX Runtime peer was built."""
    from albertkit import AlbertModel
    from albertkit.fast import optimize

    from bench.peers import ort_peers, transformers_int8, transformers_model

    ours = AlbertModel.from_pretrained(str(folder)).eval()
    hf32 = transformers_model("AlbertModel", folder)
    c: dict[str, object] = {
        "ak fp32": optimize(copy.deepcopy(ours), "fp32"),
        "ak bf16": optimize(copy.deepcopy(ours), "bf16"),
        "ak int8": optimize(copy.deepcopy(ours), "int8"),
        "hf fp32": hf32,
        "hf bf16": transformers_model("AlbertModel", folder, torch.bfloat16),
        "hf int8": transformers_int8(hf32),
        "hf int8 enc": transformers_int8(hf32, encoder_only=True),
    }
    note = ""
    if onnx:
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                c["ak onnx-int8"] = optimize(copy.deepcopy(ours), "onnx-int8", cache_dir=workdir)
                c["ort fp32"], c["ort int8"], c["ort int8 enc"], note = ort_peers(folder, workdir)
                note += "\n\n" + _graph_note(c["ak onnx-int8"].path)
        except ImportError as exc:
            logging.warning("ONNX rows skipped: %s", exc)
    return c, note


def _graph_note(path: Path) -> str:
    """What albertkit's onnx-int8 graph runs: its fused and quantized node counts."""
    import collections

    import onnx

    ops = collections.Counter(n.op_type for n in onnx.load(str(path)).graph.node)
    keys = ("QAttention", "Attention", "MatMulInteger", "FastGelu", "LayerNormalization", "SkipLayerNormalization", "MatMul")
    return ("albertkit onnx-int8 (export_onnx: ORT transformer optimizer without SkipLayerNormalization, then quantize_dynamic "
            "of the shared block): " + ", ".join(f"{k} {ops[k]}" for k in keys if ops[k]))


def _hidden(out: object) -> torch.Tensor:
    return out if isinstance(out, torch.Tensor) else out.last_hidden_state  # type: ignore[attr-defined]


# (row label, albertkit candidate, peer candidate, precision) -- like for like first, then the unlike
# rows that are features.
PAIRS = (
    ("fp32: albertkit fp32 vs transformers fp32 (sdpa)", "ak fp32", "hf fp32", "fp32"),
    ("fp32: albertkit fp32 vs ORT fp32 (transformers export + ORT transformer optimizer)", "ak fp32", "ort fp32", "fp32"),
    ("bf16: albertkit bf16 vs transformers bf16 (sdpa)", "ak bf16", "hf bf16", "lowp"),
    ("int8: albertkit torch int8 vs transformers + quantize_dynamic (all Linear, per-tensor)", "ak int8", "hf int8", "lowp"),
    ("int8: albertkit torch int8 vs transformers + quantize_dynamic (encoder Linear, per-channel: same layers)", "ak int8", "hf int8 enc", "lowp"),
    ("int8: albertkit onnx-int8 vs ORT int8 (optimizer + quant_pre_process + quantize_dynamic, all MatMul)", "ak onnx-int8", "ort int8", "lowp"),
    ("int8: albertkit onnx-int8 vs ORT int8, same recipe, E->H and heads fp32 (same layers)", "ak onnx-int8", "ort int8 enc", "lowp"),
)
# agreement.py's names for the candidates' fill-mask top-1 figures
TOP1_NAME = {
    "ak bf16": "albertkit bf16", "ak int8": "albertkit int8", "ak onnx-int8": "albertkit onnx-int8",
    "hf bf16": "transformers bf16", "hf int8": "transformers int8", "hf int8 enc": "transformers int8 encoder-only",
    "ort int8": "ORT int8", "ort int8 enc": "ORT int8 encoder-only",
}


def run(
    quick: bool = False,
    repeats: int | None = None,
    onnx: bool = True,
    shapes: tuple[str, ...] | None = None,
    agreement: dict[str, float] | None = None,
) -> tuple[list[Row], str]:
    """The rows and a note on the peers. ``agreement``: fill-mask top-1 per path (bench/agreement.py)."""
    from albertkit import AlbertConfig

    from bench.peers import save_checkpoint

    repeats = repeats or (2 if quick else 3)
    shapes = shapes or (QUICK_SHAPES if quick else SHAPES)
    cfg = AlbertConfig.from_name("albert-base-v2")
    workdir = Path(tempfile.mkdtemp(prefix="albertkit-bench-"))
    folder = save_checkpoint(workdir / "checkpoint", SHARED / "albert-base-v2" / "spiece.model")
    cands, note = build(folder, workdir, onnx)
    peak32, peak16 = matmul_peak(torch.float32), matmul_peak(torch.bfloat16)
    labels = []
    rows = [Row("matmul peak fp32 / bf16 (1536^3 GEMM, best of torch.mm and oneDNN)", "GFLOP/s", peak32, None, higher_is_better=True, note=f"bf16 {peak16:.0f} GFLOP/s")]

    def top1(name: str) -> list[Check]:
        if agreement is None or TOP1_NAME.get(name) not in agreement:
            return []
        return [top1_check(name, agreement[TOP1_NAME[name]])]

    for spec in shapes:
        label, x = make_inputs(spec)
        labels.append(f"[{spec}]: {label}")
        mask = x["attention_mask"]
        fns = {name: (lambda m=m: m(**x)) for name, m in cands.items()}
        with torch.inference_mode():
            ref = _hidden(cands["hf fp32"](**x)).float()
            outs = {name: _hidden(fn()).float() for name, fn in fns.items()}
        checks: dict[str, Check] = {}
        for name, out in outs.items():
            if name.endswith("fp32"):
                checks[name] = fp32_check(name, out, ref, mask)
            else:
                checks[name] = Check.all(lowp_check(name, out, ref, mask), *top1(name))
        with torch.inference_mode():
            t = interleaved(fns, repeats=repeats, warmup=1)
        ms = {k: v * 1e3 for k, v in t.items()}
        flops = encoder_flops(cfg, *x["input_ids"].shape)  # padded work, as both sides compute it
        tokens = int(mask.sum())
        for title, a, b, kind in PAIRS:
            if a not in ms or b not in ms:
                continue
            peak = peak32 if kind == "fp32" else (peak16 if "bf16" in a else None)
            rows.append(Row(f"[{spec}] {title}", "ms", ms[a], ms[b], gflops_ours=flops / t[a] / 1e9, peak_gflops=peak,
                            check=Check.all(checks[a], checks[b]), note=f"{tokens / t[a]:,.0f} real tok/s"))
        # The int8 target: each side's fastest int8 path that passed its checks.
        ak8 = [k for k in ("ak int8", "ak onnx-int8") if k in ms and checks[k].passed]
        ort8 = [k for k in ("ort int8", "ort int8 enc") if k in ms and checks[k].passed]
        if ak8 and ort8:
            a, b = min(ak8, key=ms.get), min(ort8, key=ms.get)
            rows.append(Row(f"[{spec}] int8 target: best albertkit int8 ({a[3:]}) vs best ORT int8 ({b})", "ms", ms[a], ms[b],
                            gflops_ours=flops / t[a] / 1e9, check=Check.all(checks[a], checks[b]),
                            note=", ".join(f"{k} {ms[k]:.0f}" for k in ak8 + ort8)))
        # Each side's fastest path that passed its checks (unlike precisions: named in the row).
        ok_ours = [k for k in ms if k.startswith("ak") and checks[k].passed]
        ok_theirs = [k for k in ms if not k.startswith("ak") and checks[k].passed]
        if ok_ours and ok_theirs:
            a, b = min(ok_ours, key=ms.get), min(ok_theirs, key=ms.get)
            rows.append(Row(f"[{spec}] best checked path each side: albertkit {a[3:]} vs {b}", "ms", ms[a], ms[b],
                            gflops_ours=flops / t[a] / 1e9, check=Check.all(checks[a], checks[b]),
                            note="unlike precisions where named so; all times: " + ", ".join(f"{k} {v:.0f}" for k, v in sorted(ms.items(), key=lambda kv: kv[1]))))
    return rows, "inputs: " + "; ".join(labels) + "\n\n" + note


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="1x16 and 8 real sentences, two repeats")
    parser.add_argument("--repeats", type=int)
    parser.add_argument("--no-onnx", action="store_true")
    parser.add_argument("--shapes", help="comma list of BxT or realN, e.g. 8x128,real32 (default 8x128,32x128,real32)")
    parser.add_argument("--agreement", action="store_true", help="also run bench/agreement.py's fill-mask top-1 check first")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    from bench.common import header

    agreement = None
    if args.agreement:
        from bench.agreement import mlm_top1_agreement

        agreement = mlm_top1_agreement()
    rows, note = run(args.quick, args.repeats, onnx=not args.no_onnx, shapes=tuple(args.shapes.split(",")) if args.shapes else None,
                     agreement=agreement)
    print(header())
    print()
    print(format_table(rows, "encoder forward (AlbertModel, albert-base-v2 shape, random weights)"))
    print(f"\n{note}")


if __name__ == "__main__":
    main()
