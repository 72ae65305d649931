"""Fill-mask: albertkit vs transformers' pipeline on the same albert-base-v2-shaped random checkpoint.

Latency: one short sentence (median of repeated calls). Throughput: 256 corpus sentences, each with
one [MASK]. transformers runs with its default batch_size (1) and with the same batch size as
albertkit, so the ratio from batching and the ratio from the implementation show separately.
``--modes`` adds albertkit's fast paths (bf16, int8, onnx, onnx-int8), each against the same
transformers fp32 pipeline in the same run.

    python bench/bench_fill_mask.py [--threads 2] [--batch-size 32] [--modes fp32,bf16,int8]
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))


def _median_time(fn, repeat: int) -> float:
    fn()  # warm-up
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--repeat", type=int, default=20)
    ap.add_argument("--n", type=int, default=256)
    ap.add_argument("--modes", default="fp32", help="comma list of fp32, bf16, int8, onnx, onnx-int8")
    args = ap.parse_args()

    import torch
    import transformers
    from test_pipelines_common import SMALL, corpus_sentences, hf_checkpoint, hf_pipeline, mask_sentences

    from albertkit import pipeline

    if args.threads:
        torch.set_num_threads(args.threads)
    transformers.logging.set_verbosity_error()
    shared = REPO.parent / "shared" / "data"
    base = {k: v for k, v in SMALL.items() if k not in ("embedding_size", "hidden_size", "num_hidden_layers",
                                                          "num_attention_heads", "intermediate_size")}
    folder = hf_checkpoint(Path(tempfile.mkdtemp()) / "base", shared / "albert-base-v2" / "spiece.model", "ForMaskedLM",
                           **{**base, "embedding_size": 128, "hidden_size": 768, "num_hidden_layers": 12,
                              "num_attention_heads": 12, "intermediate_size": 3072})
    modes = [m for m in args.modes.split(",") if m]
    fast = {m: pipeline("fill-mask", model=folder, batch_size=args.batch_size, progress=False,
                        fast=None if m == "fp32" else m) for m in modes}
    ours = fast[modes[0]]
    ref = hf_pipeline("fill-mask", folder)
    texts = mask_sentences(corpus_sentences(shared, args.n, seed=7, max_words=30), seed=7)
    one = "Hello I'm a [MASK] model."
    print(f"torch threads: {torch.get_num_threads()}  batch size: {args.batch_size}  sentences: {len(texts)}")

    for mode, pipe in fast.items():
        # Alternate the two so that a neighbour's load hits both alike.
        lat_ours, lat_ref = [], []
        for _ in range(3):
            lat_ours.append(_median_time(lambda: pipe(one), max(1, args.repeat // 3)))
            lat_ref.append(_median_time(lambda: ref(one), max(1, args.repeat // 3)))
        lo, lr = statistics.median(lat_ours), statistics.median(lat_ref)
        print(f"latency  (1 sentence) {mode:9s}: albertkit {lo * 1e3:7.1f} ms   transformers fp32 {lr * 1e3:7.1f} ms   "
              f"ratio {lr / lo:4.2f}x")

    def tput(fn) -> float:
        fn(texts[:8])
        t = time.perf_counter()
        fn(texts)
        return len(texts) / (time.perf_counter() - t)

    tp_ref1 = tput(lambda x: ref(x))
    tp_refb = tput(lambda x: ref(x, batch_size=args.batch_size))
    for mode, pipe in fast.items():
        tp_ours = tput(lambda x: pipe(x))
        print(f"throughput ({len(texts)} sentences) {mode:9s}: albertkit {tp_ours:6.1f}/s   transformers fp32 bs=1 "
              f"{tp_ref1:6.1f}/s (ratio {tp_ours / tp_ref1:4.2f}x)   bs={args.batch_size} {tp_refb:6.1f}/s "
              f"(ratio {tp_ours / tp_refb:4.2f}x)")

    # Where albertkit's time goes on the latency call.
    feats = ours.preprocess(one, None)
    t = time.perf_counter(); [ours.preprocess(one, None) for _ in range(50)]; pre = (time.perf_counter() - t) / 50
    t = time.perf_counter(); [ours._run(ours.preprocess(one, None)) for _ in range(20)]; run = (time.perf_counter() - t) / 20 - pre
    ours._run(feats)
    t = time.perf_counter(); [ours.postprocess(one, feats) for _ in range(50)]; post = (time.perf_counter() - t) / 50
    print(f"albertkit latency split: tokenize {pre * 1e3:.2f} ms, model {run * 1e3:.2f} ms, decode {post * 1e3:.2f} ms")


if __name__ == "__main__":
    main()
