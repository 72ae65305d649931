"""Fill-mask: albertkit's pipeline against transformers' pipeline, same checkpoint, same sentences, same order.

The checkpoint: random weights at albert-base-v2 shape with the real vocabulary (bench/peers.py),
loaded by each pipeline from the same folder. albertkit runs fp32, bf16, int8 and onnx-int8
(``pipeline(..., fast=mode)``); transformers runs its pipeline in fp32 and in bf16
(``dtype=torch.bfloat16``), with ``batch_size`` equal to albertkit's.

Rows: one sentence (latency, all candidates alternating) and 256 corpus sentences (throughput), each
like for like (fp32 vs fp32, bf16 vs bf16) and each side's best checked path (the issue's target).
Throughput is measured with both sides given the same length-sorted list (albertkit's pipeline
sorts by length itself, so it processes the same batches), and separately in corpus order, where
albertkit's own sorting is the feature being measured (labelled so); each the median of three passes,
the candidates alternating.

Checks before timing: fp32 top-5 scores within 1e-4 of transformers' on the timed sentences; bf16 /
int8 fill-mask top-1 agreement >= 97% with fp32 on 1,000 real sentences (bench/agreement.py, with the
trained albert-mini-en: a random base-width checkpoint gives no meaningful top-1).

    python -m bench.bench_fill_mask --quick
    python -m bench.bench_fill_mask --n 256 --agreement
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import warnings
from pathlib import Path
from typing import Any, Callable

import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bench.common import FP32_TOL, Check, Row, format_table, interleaved, top1_check  # noqa: E402

SHARED = REPO.parent / "shared" / "data"
ONE = "Hello I'm a [MASK] model."
AK_MODES = ("fp32", "bf16", "int8", "onnx-int8")
TOP1_NAME = {"ak bf16": "albertkit bf16", "ak int8": "albertkit int8", "ak onnx-int8": "albertkit onnx-int8", "hf bf16": "transformers bf16"}


def _hf_pipeline(folder: Path, dtype: torch.dtype, batch_size: int) -> Any:
    import transformers

    transformers.logging.set_verbosity_error()
    tok = transformers.AutoTokenizer.from_pretrained(str(folder))
    return transformers.pipeline("fill-mask", model=str(folder), tokenizer=tok, device="cpu", dtype=dtype, batch_size=batch_size)


def _scores(out: Any) -> list[tuple[int, float]]:
    if out and isinstance(out[0], list):  # several masks in one sentence: the first one's
        out = out[0]
    return [(d["token"], d["score"]) for d in out]


def fp32_scores_check(ak: Callable, hf: Any, texts: list[str]) -> Check:
    """Same top-5 tokens and scores within FP32_TOL for every sentence both tokenizers encode alike.

    transformers 5 has only the fast ALBERT tokenizer, which differs from the original (slow)
    SentencePiece one that albertkit follows on some punctuation and digits (e.g. '1965,' and
    curly quotes); a sentence encoded differently is a different input, so it is left out of the
    comparison (and counted)."""
    from albertkit import AlbertTokenizer

    ours = AlbertTokenizer(str(SHARED / "albert-base-v2" / "spiece.model"))
    alike = [t for t in texts if ours(t)["input_ids"] == hf.tokenizer(t)["input_ids"]]
    texts, skipped = alike, len(texts) - len(alike)
    worst, same = 0.0, True
    for a, b in zip(ak(texts, top_k=5), hf(texts, top_k=5)):
        sa, sb = _scores(a), _scores(b)
        same &= [t for t, _ in sa] == [t for t, _ in sb]
        worst = max(worst, max(abs(x - y) for (_, x), (_, y) in zip(sa, sb)))
    return Check(f"fp32 top-5 {'same' if same else 'DIFFER'}, scores max|diff| {worst:.1e} on {len(texts)} sentences"
                 f" ({skipped} tokenized differently, left out)", same and worst <= FP32_TOL and len(texts) > 0)


def run(quick: bool = False, n: int = 256, batch_size: int = 32, repeat: int = 15, agreement: dict[str, float] | None = None) -> tuple[list[Row], str]:
    from albertkit import AlbertTokenizer, pipeline

    from bench.fill_mask_agreement import corpus_mask_sentences
    from bench.peers import save_checkpoint

    folder = save_checkpoint(Path(tempfile.mkdtemp(prefix="albertkit-fm-")) / "base", SHARED / "albert-base-v2" / "spiece.model")
    modes = ("fp32", "bf16") if quick else AK_MODES
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        cands: dict[str, Any] = {f"ak {m}": pipeline("fill-mask", model=str(folder), batch_size=batch_size, progress=False,
                                                     fast=None if m == "fp32" else m) for m in modes}
        cands["hf fp32"] = _hf_pipeline(folder, torch.float32, batch_size)
        cands["hf bf16"] = _hf_pipeline(folder, torch.bfloat16, batch_size)
    texts = corpus_mask_sentences(SHARED / "corpus", n, seed=7, max_words=40)
    tok = AlbertTokenizer(str(SHARED / "albert-base-v2" / "spiece.model"))
    lengths = [len(ids) for ids in tok.encode_batch(texts)]
    by_length = [texts[i] for i in sorted(range(len(texts)), key=lambda i: -lengths[i])]  # albertkit's own order

    checks: dict[str, Check] = {}
    fp32 = fp32_scores_check(cands["ak fp32"], cands["hf fp32"], [ONE, *texts[:24]])
    checks["ak fp32"] = checks["hf fp32"] = fp32
    for name in cands:
        if name not in checks:
            top1 = (agreement or {}).get(TOP1_NAME.get(name, ""))
            checks[name] = top1_check(name, top1) if top1 is not None else Check(f"{name}: top-1 not measured", False)

    # Latency: every candidate alternates, median of `repeat` calls each.
    seconds = interleaved({k: (lambda p=pipe: p(ONE)) for k, pipe in cands.items()}, repeats=repeat, warmup=1)
    lat = {k: s * 1e3 for k, s in seconds.items()}

    def throughput(order: list[str]) -> dict[str, float]:
        # Median of three passes over the list, the candidates alternating, as the latency rows do:
        # one pass each moved a side's figure by 10-20% between runs (AMX Xeon).
        for pipe in cands.values():
            pipe(order[:8])
        seconds = interleaved({k: (lambda p=pipe: p(order)) for k, pipe in cands.items()}, repeats=1 if quick else 3, warmup=0)
        return {k: len(order) / s for k, s in seconds.items()}

    tp_sorted = throughput(by_length)
    tp_input = throughput(texts)

    def best(prefix: str, values: dict[str, float], lower: bool) -> str | None:
        ok = [k for k in values if k.startswith(prefix) and checks[k].passed]
        return (min if lower else max)(ok, key=values.get) if ok else None

    rows: list[Row] = []
    for title, unit, values, lower in (
        ("one sentence", "ms", lat, True),
        (f"{len(texts)} sentences, both given the same length-sorted list", "sent/s", tp_sorted, False),
    ):
        for a, b in (("ak fp32", "hf fp32"), ("ak bf16", "hf bf16")):
            rows.append(Row(f"{title}: albertkit {a[3:]} vs transformers {b[3:]}", unit, values[a], values[b], not lower,
                            check=checks[a] if a == "ak fp32" else Check.all(checks[a], checks[b])))
        a, b = best("ak", values, lower), best("hf", values, lower)
        if a and b:
            rows.append(Row(f"{title}, best checked path each side: albertkit {a[3:]} vs transformers {b[3:]}", unit, values[a], values[b],
                            not lower, check=Check.all(checks[a], checks[b]),
                            note="all: " + ", ".join(f"{k} {v:.1f}" for k, v in values.items())))
    a, b = best("ak", tp_input, False), best("hf", tp_input, False)
    if a and b:
        rows.append(Row(f"{len(texts)} sentences in corpus order, best each side (albertkit {a[3:]}, transformers {b[3:]}): "
                        "albertkit's length sorting is the feature measured", "sent/s", tp_input[a], tp_input[b], True,
                        check=Check.all(checks[a], checks[b]),
                        note="all: " + ", ".join(f"{k} {v:.1f}" for k, v in tp_input.items())))
    return rows, f"threads {torch.get_num_threads()}, batch size {batch_size} both sides, {len(texts)} corpus sentences (one or two [MASK] each)"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="fp32 and bf16 only, 32 sentences")
    ap.add_argument("--n", type=int, default=None)
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--repeat", type=int, default=15)
    ap.add_argument("--agreement", action="store_true", help="run bench/agreement.py's top-1 check first (else low-precision rows FAIL)")
    args = ap.parse_args()
    from bench.common import header

    agreement = None
    if args.agreement:
        from bench.agreement import mlm_top1_agreement

        agreement = mlm_top1_agreement()
    rows, note = run(args.quick, args.n or (32 if args.quick else 256), args.batch_size, 3 if args.quick else args.repeat, agreement)
    print(header())
    print()
    print(format_table(rows, "fill-mask pipeline"))
    print(f"\n{note}")


if __name__ == "__main__":
    main()
