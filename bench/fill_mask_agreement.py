"""Fill-mask agreement of the fast paths with fp32 on corpus sentences (issue #7's accuracy targets).

For each sentence of the public-domain corpus with one word replaced by [MASK], the fp32 pipeline's
top-k is compared with each fast path's: "top-5 identical" means the same five tokens in the same
order, "top-1 identical" the same first token. Targets: bf16 top-5 identical on >= 95%, int8 top-1
identical on >= 97%.

The check means something only with a model whose predictions are peaked: random weights give
near-flat logits whose order any rounding reshuffles. The default is the shipped albert-mini-en;
pass ``--model albert-base-v2`` (or a folder) where real weights are available.

    python bench/fill_mask_agreement.py [--model albert-mini-en] [--n 500] [--modes bf16,int8,onnx-int8]
"""

from __future__ import annotations

import argparse
import random
import re
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared" / "data"


def corpus_mask_sentences(corpus: Path, n: int, seed: int = 0, min_words: int = 6, max_words: int = 40) -> list[str]:
    """``n`` sentences drawn from the corpus files, each with one alphabetic word replaced by [MASK]."""
    rng = random.Random(seed)
    pool: list[str] = []
    for path in sorted(corpus.rglob("*.txt")):
        text = path.read_bytes().decode("utf-8", errors="replace")
        for para in re.split(r"\n\s*\n", text):
            para = " ".join(para.split())
            for sent in re.split(r"(?<=[.!?])\s+(?=[A-Z\"'])", para):
                words = sent.split()
                if min_words <= len(words) <= max_words and "\ufffd" not in sent:
                    pool.append(sent)
    if len(pool) < n:
        raise ValueError(f"{corpus}: only {len(pool)} usable sentences, {n} requested")
    out = []
    for sent in rng.sample(pool, n):
        words = sent.split()
        plain = [i for i, w in enumerate(words) if w.isalpha()]
        if not plain:
            continue
        words[rng.choice(plain)] = "[MASK]"
        out.append(" ".join(words))
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="albert-mini-en", help="model name or folder (AlbertForMaskedLM weights)")
    ap.add_argument("--n", type=int, default=500)
    ap.add_argument("--modes", default="bf16,int8,onnx-int8")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--batch-size", type=int, default=32)
    args = ap.parse_args()

    from albertkit import pipeline

    texts = corpus_mask_sentences(SHARED / "corpus", args.n, seed=args.seed)
    fp32 = pipeline("fill-mask", model=args.model, batch_size=args.batch_size, progress=False)
    ref = [[d["token"] for d in out] for out in fp32(texts, top_k=5)]
    print(f"model {args.model}, {len(texts)} corpus sentences, one [MASK] each")
    print("| path | top-1 identical | top-5 identical (same order) | top-5 same set |")
    print("|---|---:|---:|---:|")
    for mode in [m for m in args.modes.split(",") if m]:
        fast = pipeline("fill-mask", model=args.model, batch_size=args.batch_size, progress=False, fast=mode)
        got = [[d["token"] for d in out] for out in fast(texts, top_k=5)]
        n = len(texts)
        top1 = sum(a[0] == b[0] for a, b in zip(ref, got)) / n
        top5 = sum(a == b for a, b in zip(ref, got)) / n
        top5set = sum(set(a) == set(b) for a, b in zip(ref, got)) / n
        print(f"| {mode} | {top1:.1%} | {top5:.1%} | {top5set:.1%} |")
    sys.stdout.flush()


if __name__ == "__main__":
    main()
