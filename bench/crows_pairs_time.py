"""How long the full CrowS-Pairs run (1,508 pairs) takes for a model shape: time a subset, extrapolate.

The cost of the metric is the masked copies it runs (one per shared piece per sentence), each as
long as its sentence, so the subset's time is scaled by the padded tokens of all pairs over those of
the subset. Weights are random (the time does not depend on them); the tokenizer is the shipped
model's (albert-base-v2's vocabulary).

    python bench/crows_pairs_time.py --config albert-base-v2 --pairs 40
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch

from albertkit import AlbertConfig, AlbertForMaskedLM, AlbertTokenizer
from albertkit.hub import shipped_model_path
from albertkit.model_card.crows_pairs import read_crows_pairs, score_crows_pairs, shared_positions

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "bias" / "crows_pairs_anonymized.csv"


def tokens_of(pairs, tok) -> int:
    """Tokens the metric pushes through the model: copies x sentence length, both sentences."""
    total = 0
    for p in pairs:
        a, b = tok.encode(p.sent_more.lower()), tok.encode(p.sent_less.lower())
        ta, tb = shared_positions(a, b)
        total += len(a) * len(ta[1:-1]) + len(b) * len(tb[1:-1])
    return total


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--config", default="albert-base-v2", help="preset name or config.json")
    ap.add_argument("--pairs", type=int, default=40, help="pairs to time (spread over the file)")
    ap.add_argument("--data", default=str(DATA))
    ap.add_argument("--fast", choices=("bf16", "int8"), default=None, help="time a fast path instead of fp32")
    args = ap.parse_args()
    tok = AlbertTokenizer.from_pretrained(shipped_model_path("albert-mini-en"))
    cfg = AlbertConfig.from_name(args.config) if not args.config.endswith(".json") else AlbertConfig.from_json_file(args.config)
    torch.manual_seed(0)
    model = AlbertForMaskedLM(cfg).eval()
    if args.fast:
        from albertkit.fast import optimize

        model = optimize(model, args.fast)
    every = read_crows_pairs(args.data)
    step = max(1, len(every) // args.pairs)
    subset = every[::step][: args.pairs]
    score_crows_pairs(model, tok, subset[:2], progress=False)  # warm-up (oneDNN primitives)
    wall, cpu = time.perf_counter(), time.process_time()
    score_crows_pairs(model, tok, subset, progress=False)
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    scale = tokens_of(every, tok) / tokens_of(subset, tok)
    print(json.dumps({
        "config": args.config, "precision": args.fast or "fp32", "threads": torch.get_num_threads(), "subset_pairs": len(subset),
        "subset_wall_s": round(wall, 1), "subset_cpu_s": round(cpu, 1), "token_scale": round(scale, 2),
        "full_wall_s_estimate": round(wall * scale), "full_cpu_s_estimate": round(cpu * scale),
    }))


if __name__ == "__main__":
    main()
