"""Batch-encode the pretraining corpus with albertkit and with transformers' ALBERT tokenizer.

    python bench/bench_tokenizer.py                      # every line of every corpus file
    python bench/bench_tokenizer.py --max-lines 50000    # an evenly spread sample
    python bench/bench_tokenizer.py --threads 2 --repeat 3

Both run in this process on the same lines, best of --repeat runs each:
* albertkit: ``AlbertTokenizer.encode_batch`` (Python normalisation + SentencePiece's C++ batch encoder);
* transformers 5 (which only has the `tokenizers`-backed AlbertTokenizer): its Rust backend's
  ``encode_batch`` without offsets post-processing in Python (the fastest way it offers), and the
  ordinary ``tokenizer(lines)`` call.
Prints lines/s for each and the ratio, and counts lines whose ids differ.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", default=os.environ.get("ALBERTKIT_SHARED_DATA", str(REPO.parent / "shared" / "data")))
    ap.add_argument("--max-lines", type=int, default=None, help="use an evenly spread sample of this many lines")
    ap.add_argument("--threads", type=int, default=None, help="threads for both (default: all cores)")
    ap.add_argument("--repeat", type=int, default=2)
    args = ap.parse_args()

    threads = args.threads or os.cpu_count() or 1
    os.environ["RAYON_NUM_THREADS"] = str(threads)  # tokenizers' thread pool, before it starts
    os.environ["TOKENIZERS_PARALLELISM"] = "true"

    import tokenization_parity_data as D
    from albertkit import AlbertTokenizer

    data = Path(args.data)
    lines: list[str] = []
    for path in D.corpus_files(data / "corpus"):
        lines.extend(D.file_lines(path))
    if args.max_lines and args.max_lines < len(lines):
        step = len(lines) / args.max_lines
        lines = [lines[int(i * step)] for i in range(args.max_lines)]
    n_chars = sum(map(len, lines))
    print(f"{len(lines)} lines, {n_chars / 1e6:.1f}M characters, {threads} threads, best of {args.repeat}")

    spiece = data / "albert-base-v2" / "spiece.model"
    ours = AlbertTokenizer(spiece, num_threads=threads)
    with tempfile.TemporaryDirectory() as tmp:
        hf = D.hf_fast_reference(spiece, Path(tmp))

    def best(fn):
        times, out = [], None
        for _ in range(args.repeat):
            t0 = time.perf_counter()
            out = fn()
            times.append(time.perf_counter() - t0)
        return min(times), out

    t_ours, ids_ours = best(lambda: ours.encode_batch(lines))
    backend = hf.backend_tokenizer
    t_hf, enc_hf = best(lambda: backend.encode_batch(lines, add_special_tokens=False))
    ids_hf = [e.ids for e in enc_hf]
    t_call, _ = best(lambda: hf(lines, add_special_tokens=False)["input_ids"])
    differ = sum(a != b for a, b in zip(ids_ours, ids_hf))

    rows = [
        ("albertkit AlbertTokenizer.encode_batch", t_ours),
        ("transformers AlbertTokenizer backend encode_batch", t_hf),
        ("transformers AlbertTokenizer(lines)", t_call),
    ]
    for name, t in rows:
        print(f"{name:52s} {len(lines) / t:12,.0f} lines/s  {n_chars / t / 1e6:6.2f} M chars/s  ({t:.2f}s)")
    fastest_hf = min(t_hf, t_call)
    print(f"ratio albertkit / fastest transformers: {fastest_hf / t_ours:.2f}x")
    print(f"lines whose ids differ between the two: {differ} (slow-tokenizer parity is albertkit's target; "
          "see tests/test_tokenization_parity.py)")


if __name__ == "__main__":
    main()
