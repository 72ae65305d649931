"""The benchmark suite, one command: albertkit against each peer, like for like, as markdown tables.

    python -m bench.run_all            # issue 12's suite (~12 min on 2 quiet Zen 4 cores)
    python -m bench.run_all --quick    # smaller shapes and fewer repeats, for development
    python -m bench.run_all --extras   # also the tokenizer and fine-tuning benchmarks

Parts: the fill-mask top-1 agreement of every low-precision path (bench/agreement.py), which the
bf16/int8 rows below must pass; encoder forward against transformers fp32/bf16/int8 and ONNX Runtime
fp32/int8 (bench/bench_forward.py); sentence embeddings (both sides given the same batches, in the
same order); the fill-mask pipeline (bench/bench_fill_mask.py); the pretraining step (run as a
subprocess, its table printed as it is). Every table starts with the date, command, CPU and load.
"""

from __future__ import annotations

import argparse
import copy
import logging
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bench.common import Check, Row, format_table, fp32_check, header, interleaved, lowp_check, top1_check  # noqa: E402

SHARED = REPO.parent / "shared" / "data"

# Benchmark modules run as subprocesses: (file, arguments for --quick, arguments for the full run)
SUBSUITES = (("bench_pretraining.py", ["--quick", "--shapes", "2x64", "--repeats", "1"], ["--shapes", "32x128", "--repeats", "3"]),)
EXTRAS = (
    ("bench_tokenizer.py", ["--max-lines", "20000", "--repeat", "1"], []),
    ("bench_finetune.py", ["--quick"], []),
)


def corpus_sentences(n: int) -> list[str]:
    """``n`` prose lines (40..300 characters) from the State of the Union corpus, in file order."""
    out: list[str] = []
    for path in sorted((SHARED / "corpus" / "state_union").glob("*.txt")):
        for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
            line = " ".join(line.split())
            if 40 <= len(line) <= 300:
                out.append(line)
                if len(out) == n:
                    return out
    return out


def embedding_rows(quick: bool, agreement: dict[str, float] | None = None) -> list[Row]:
    """Mean-pooled sentence embeddings of corpus sentences, batches of 32, both sides given the same
    batches in the same order: length-sorted (what albertkit's features pipeline does), and corpus order."""
    from albertkit import AlbertModel
    from albertkit.fast import optimize
    from albertkit.tokenization import AlbertTokenizer

    from bench.peers import save_checkpoint, transformers_model

    n = 64 if quick else 256
    texts = corpus_sentences(n)
    tok = AlbertTokenizer.from_pretrained(str(SHARED / "albert-base-v2"))
    folder = save_checkpoint(Path(tempfile.mkdtemp(prefix="albertkit-emb-")) / "base", SHARED / "albert-base-v2" / "spiece.model")
    ours = AlbertModel.from_pretrained(str(folder)).eval()
    cands = {
        "ak fp32": optimize(copy.deepcopy(ours), "fp32"),
        "ak bf16": optimize(copy.deepcopy(ours), "bf16"),
        "hf fp32": transformers_model("AlbertModel", folder),
        "hf bf16": transformers_model("AlbertModel", folder, torch.bfloat16),
    }

    def batches(order: list[int]) -> list[dict[str, torch.Tensor]]:
        out = []
        for i in range(0, len(order), 32):
            enc = tok([texts[j] for j in order[i : i + 32]], padding=True, truncation=True, max_length=128, return_tensors="pt")
            out.append({"input_ids": enc["input_ids"], "attention_mask": enc["attention_mask"]})
        return out

    def embed(model, bs: list[dict[str, torch.Tensor]]) -> torch.Tensor:
        vecs = []
        for b in bs:
            hidden = model(**b).last_hidden_state.float()
            m = b["attention_mask"].unsqueeze(-1).float()
            vecs.append((hidden * m).sum(1) / m.sum(1))
        return torch.cat(vecs)

    lengths = [len(ids) for ids in tok.encode_batch(texts)]
    orders = {"length-sorted": sorted(range(n), key=lengths.__getitem__), "corpus order": list(range(n))}
    rows: list[Row] = []
    with torch.inference_mode():
        first = batches(orders["length-sorted"])
        ref = embed(cands["hf fp32"], first)
        checks = {k: (fp32_check if k.endswith("fp32") else lowp_check)(k, embed(m, first), ref) for k, m in cands.items()}
        for k, name in (("ak bf16", "albertkit bf16"), ("hf bf16", "transformers bf16")):
            if agreement and name in agreement:
                checks[k] = Check.all(checks[k], top1_check(k, agreement[name]))
        for order_name, order in orders.items():
            bs = batches(order)
            t = interleaved({k: (lambda m=m: embed(m, bs)) for k, m in cands.items()}, repeats=1 if quick else 2)
            for a, b in (("ak fp32", "hf fp32"), ("ak bf16", "hf bf16")):
                rows.append(Row(f"{n} corpus sentences, {order_name} batches of 32 both sides: albertkit {a[3:]} vs transformers {b[3:]}",
                                "sent/s", n / t[a], n / t[b], higher_is_better=True, check=Check.all(checks[a], checks[b])))
    return rows


def run_subsuite(name: str, args: list[str]) -> str:
    path = REPO / "bench" / name
    if not path.is_file():
        return f"_{name}: not present in this checkout, skipped._"
    t0 = time.perf_counter()
    proc = subprocess.run([sys.executable, str(path), *args], cwd=REPO, capture_output=True, text=True)
    took = time.perf_counter() - t0
    if proc.returncode != 0:
        tail = "\n".join(proc.stderr.strip().splitlines()[-5:])
        return f"_{name} failed (exit {proc.returncode}) after {took:.0f} s:_\n```\n{tail}\n```"
    return f"`python bench/{name} {' '.join(args)}` ({took:.0f} s)\n\n{proc.stdout.strip()}"


def main() -> None:
    parser = argparse.ArgumentParser(description="albertkit benchmark suite")
    parser.add_argument("--quick", action="store_true", help="smaller shapes, fewer repeats")
    parser.add_argument("--only", choices=["forward", "embeddings", "fill-mask", "others"], help="run one part")
    parser.add_argument("--extras", action="store_true", help="also the tokenizer and fine-tuning benchmarks")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    t0 = time.perf_counter()
    print(f"# albertkit benchmarks ({'quick' if args.quick else 'full'})\n")
    print(header())
    print()
    agreement = None
    if args.only in (None, "forward", "embeddings", "fill-mask"):
        from bench.agreement import mlm_top1_agreement

        agreement = mlm_top1_agreement(64 if args.quick else 400)
        print("### fill-mask top-1 agreement with transformers fp32 (albert-mini-en, real corpus sentences; bound >= 97%)\n")
        print("| path | top-1 identical |\n|---|---:|")
        for name, value in agreement.items():
            print(f"| {name} | {value:.1%}{'' if value >= 0.97 else ' (below the bound)'} |")
        print()
        sys.stdout.flush()
    if args.only in (None, "forward"):
        from bench.bench_forward import run

        rows, note = run(quick=args.quick, agreement=agreement)
        print(format_table(rows, "encoder forward (AlbertModel, albert-base-v2 shape, random weights)"))
        print(f"\n{note}\n")
        sys.stdout.flush()
    if args.only in (None, "embeddings"):
        print(format_table(embedding_rows(args.quick, agreement), "sentence embeddings (mean-pooled, batches of 32)"))
        print()
        sys.stdout.flush()
    if args.only in (None, "fill-mask"):
        from bench.bench_fill_mask import run as fill_mask

        rows, note = fill_mask(quick=args.quick, n=32 if args.quick else 256, repeat=3 if args.quick else 15, agreement=agreement)
        print(format_table(rows, "fill-mask pipeline (albert-base-v2 shape, random weights)"))
        print(f"\n{note}\n")
        sys.stdout.flush()
    if args.only in (None, "others"):
        for name, quick_args, full_args in SUBSUITES + (EXTRAS if args.extras else ()):
            print(f"### {name}\n")
            print(run_subsuite(name, quick_args if args.quick else full_args))
            print()
            sys.stdout.flush()
    print(f"_suite took {time.perf_counter() - t0:.0f} s; load average at the end: {' '.join(f'{x:.2f}' for x in os.getloadavg())}_")


if __name__ == "__main__":
    main()
