"""The benchmark suite, one command: albertkit vs transformers side by side, as markdown tables.

    python -m bench.run_all            # full run (~15 min on 2 cores)
    python -m bench.run_all --quick    # smaller shapes and fewer repeats, for development

Rows: encoder forward (fp32, bf16, ONNX Runtime fp32/int8, torch int8) with achieved GFLOP/s
against a matmul peak measured in the same run, sentence-embedding throughput, and the
fill-mask / tokenizer / pretraining-step benchmarks of their own modules (run as subprocesses, their
tables printed as they are; a missing module is noted, not fatal).
"""

from __future__ import annotations

import argparse
import logging
import platform
import subprocess
import sys
import time
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bench.common import Row, format_table, interleaved, same_weights_models  # noqa: E402

SHARED = REPO.parent / "shared" / "data"

# Other benchmark modules: (file, arguments for --quick, arguments for the full run)
SUBSUITES = (
    ("bench_fill_mask.py", ["--repeat", "6", "--n", "64"], ["--n", "256", "--modes", "fp32,bf16,int8,onnx-int8"]),
    ("bench_tokenizer.py", ["--max-lines", "20000", "--repeat", "1"], []),
    ("bench_pretraining.py", ["--quick"], []),
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


def embedding_rows(quick: bool) -> list[Row]:
    """Mean-pooled sentence embeddings of corpus sentences, batches of 32.

    albertkit sorts by length so that each batch pads little (what its features pipeline does);
    transformers runs the same batches in input order padded to the longest, as a plain loop does.
    """
    from albertkit import AlbertConfig
    from albertkit.tokenization import AlbertTokenizer

    n = 64 if quick else 256
    texts = corpus_sentences(n)
    tok = AlbertTokenizer.from_pretrained(str(SHARED / "albert-base-v2"))
    cfg = AlbertConfig.from_name("albert-base-v2")
    ours, theirs = same_weights_models("AlbertModel", cfg)

    def embed(model, order: list[int]) -> None:
        for i in range(0, len(order), 32):
            enc = tok([texts[j] for j in order[i : i + 32]], padding=True, truncation=True, max_length=128, return_tensors="pt")
            hidden = model(input_ids=enc["input_ids"], attention_mask=enc["attention_mask"]).last_hidden_state
            m = enc["attention_mask"].unsqueeze(-1).to(hidden.dtype)
            (hidden * m).sum(1) / m.sum(1)

    lengths = [len(ids) for ids in tok.encode_batch(texts)]
    by_length = sorted(range(n), key=lengths.__getitem__)
    with torch.inference_mode():
        t = interleaved({"ours": lambda: embed(ours, by_length), "theirs": lambda: embed(theirs, list(range(n)))}, repeats=1 if quick else 3)
    return [Row(f"sentence embeddings, {n} corpus sentences", "sent/s", n / t["ours"], n / t["theirs"], higher_is_better=True,
                note="albertkit length-sorted batches of 32; transformers same batches in input order")]


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
    parser.add_argument("--only", choices=["forward", "embeddings", "others"], help="run one part")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    print(f"# albertkit benchmarks ({'quick' if args.quick else 'full'})\n")
    print(f"{platform.processor() or platform.machine()}, {torch.get_num_threads()} torch threads, torch {torch.__version__}\n")
    if args.only in (None, "forward"):
        from bench.bench_forward import run

        print(format_table(run(quick=args.quick), "encoder forward (AlbertModel, albert-base-v2 config, random weights)"))
        print()
    if args.only in (None, "embeddings"):
        print(format_table(embedding_rows(args.quick), "sentence embeddings"))
        print()
    if args.only in (None, "others"):
        for name, quick_args, full_args in SUBSUITES:
            print(f"### {name}\n")
            print(run_subsuite(name, quick_args if args.quick else full_args))
            print()


if __name__ == "__main__":
    main()
