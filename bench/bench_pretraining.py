"""Pretraining step: albertkit's AlbertForPreTraining vs transformers', same config, weights and batch.

One step = forward (MLM + SOP loss) + backward + AdamW update. Two comparisons, each its own row:

* same work: albertkit given the same [B, T] labels as transformers, so both compute the MLM
  logits at every position (-100 labels elsewhere) -- the like-for-like row;
* the masked-positions saving: albertkit computing the MLM logits only at the masked positions
  (``masked_lm_positions``, as Google's pretraining does) against transformers at every position --
  an unlike row kept because it is a feature (the logits nobody reads are not computed).

Before timing, each albertkit candidate's loss on the batch is compared with transformers' (same
weights, same labels at the masked positions: the losses must agree within 1e-4).

Throughput: tokens/s = B * T / median step time; the candidates run interleaved (A, B, A, B...).
Peak memory, CPU: each candidate in a fresh process; peak RSS (VmHWM) during two training steps
minus the RSS after the model and optimizer were built (so: gradients + optimizer state +
activations + allocator slack). CUDA: ``torch.cuda.max_memory_allocated`` during the steps minus
the allocation before them.

    python bench/bench_pretraining.py                # albert-base-v2, 8x128 and 32x128
    python bench/bench_pretraining.py --quick        # 4-layer albert-base width, 4x64 and 8x128
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from bench.common import Check, Row, format_table, interleaved, same_weights_models  # noqa: E402

from albertkit.config import AlbertConfig  # noqa: E402

CANDIDATES = ("albertkit", "transformers", "albertkit-full-labels")


def _config(quick: bool) -> AlbertConfig:
    cfg = AlbertConfig.from_name("albert-base-v2")
    return cfg.replace(num_hidden_layers=4) if quick else cfg


def _batch(cfg: AlbertConfig, b: int, t: int, device: torch.device, max_predictions: int = 20, seed: int = 0) -> dict:
    """Random ids; ~15% of positions (at most 20) masked per row, the same for every candidate."""
    g = torch.Generator().manual_seed(seed)
    ids = torch.randint(5, cfg.vocab_size, (b, t), generator=g)
    ids[:, 0], ids[:, -1] = 2, 3
    p = min(max_predictions, max(1, round(0.15 * (t - 2))))
    positions = torch.stack([torch.randperm(t - 2, generator=g)[:p] + 1 for _ in range(b)]).sort(dim=1).values
    mlm_labels = torch.randint(5, cfg.vocab_size, (b, p), generator=g)
    full = torch.full((b, t), -100, dtype=torch.long)
    full.scatter_(1, positions, mlm_labels)
    common = {
        "input_ids": ids,
        "attention_mask": torch.ones(b, t, dtype=torch.long),
        "token_type_ids": (torch.arange(t) >= t // 2).long().expand(b, t).contiguous(),
        "sentence_order_label": torch.randint(0, 2, (b,), generator=g),
    }
    sparse = {**common, "masked_lm_positions": positions, "masked_lm_labels": mlm_labels}
    dense = {**common, "labels": full}
    move = lambda d: {k: v.to(device) for k, v in d.items()}  # noqa: E731
    return {"albertkit": move(sparse), "transformers": move(dense), "albertkit-full-labels": move(dense)}


def _models(cfg: AlbertConfig, device: torch.device) -> dict:
    ours, theirs = same_weights_models("AlbertForPreTraining", cfg)
    ours.train().to(device)
    theirs.train().to(device)
    return {"albertkit": ours, "transformers": theirs, "albertkit-full-labels": ours}


def _step_fn(model: torch.nn.Module, batch: dict, opt: torch.optim.Optimizer, bf16: bool, device: torch.device):
    def step() -> None:
        opt.zero_grad(set_to_none=True)
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16):
            loss = model(**batch).loss
        loss.backward()
        opt.step()
        if device.type == "cuda":
            torch.cuda.synchronize()

    return step


def _rss_kib() -> int:
    with open("/proc/self/status") as fh:
        fields = dict(line.split(":", 1) for line in fh)
    return int(fields["VmRSS"].split()[0])


def _hwm_kib() -> int:
    with open("/proc/self/status") as fh:
        fields = dict(line.split(":", 1) for line in fh)
    return int(fields["VmHWM"].split()[0])


def memory_probe(candidate: str, b: int, t: int, quick: bool, bf16: bool, device: torch.device) -> float:
    """Peak MiB above the post-construction level for one candidate (run in a fresh process)."""
    cfg = _config(quick)
    model = _models(cfg, device)[candidate]
    batch = _batch(cfg, b, t, device)[candidate]
    opt = torch.optim.AdamW(model.parameters(), lr=1e-5)
    step = _step_fn(model, batch, opt, bf16, device)
    if device.type == "cuda":
        torch.cuda.synchronize()
        base = torch.cuda.memory_allocated()
        torch.cuda.reset_peak_memory_stats()
        step()
        step()
        return (torch.cuda.max_memory_allocated() - base) / 2**20
    try:  # reset the high-water mark so model construction's transient peak is not counted
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        pass
    base = _rss_kib()
    step()
    step()
    return (_hwm_kib() - base) / 1024


def _probe_in_subprocess(candidate: str, b: int, t: int, args: argparse.Namespace) -> float | None:
    cmd = [sys.executable, __file__, "--probe", candidate, "--shape", f"{b}x{t}", "--device", args.device]
    cmd += ["--quick"] if args.quick else []
    cmd += ["--bf16"] if args.bf16 else []
    done = subprocess.run(cmd, capture_output=True, text=True, env=dict(os.environ))
    if done.returncode != 0:
        sys.stderr.write(done.stderr[-2000:])
        return None
    return float(json.loads(done.stdout.strip().splitlines()[-1])["peak_mib"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="4 layers, shapes 4x64 and 8x128, fewer repeats")
    parser.add_argument("--shapes", default=None, help="comma list of BxT (default 8x128,32x128)")
    parser.add_argument("--repeats", type=int, default=None)
    parser.add_argument("--bf16", action="store_true", help="bf16 autocast for both")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--no-memory", action="store_true")
    parser.add_argument("--probe", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--shape", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    device = torch.device(args.device)

    if args.probe:
        b, t = map(int, args.shape.split("x"))
        print(json.dumps({"peak_mib": memory_probe(args.probe, b, t, args.quick, args.bf16, device)}))
        return

    shapes_text = args.shapes or ("4x64,8x128" if args.quick else "8x128,32x128")
    shapes = [tuple(map(int, s.split("x"))) for s in shapes_text.split(",")]
    repeats = args.repeats or (3 if args.quick else 5)
    cfg = _config(args.quick)
    models = _models(cfg, device)
    opts = {
        "albertkit": torch.optim.AdamW(models["albertkit"].parameters(), lr=1e-5),
        "transformers": torch.optim.AdamW(models["transformers"].parameters(), lr=1e-5),
    }
    opts["albertkit-full-labels"] = opts["albertkit"]
    name = "albert-base-v2" + (" (4 layers)" if args.quick else "")
    from bench.common import header

    print(header())
    print(f"- {name}, {device}, {'bf16 autocast' if args.bf16 else 'fp32'}; AdamW step; median of {repeats}; "
          "memory ratio printed as transformers / albertkit (higher = albertkit uses less)\n")
    rows: list[Row] = []
    for b, t in shapes:
        batches = _batch(cfg, b, t, device)
        fns = {c: _step_fn(models[c], batches[c], opts[c], args.bf16, device) for c in CANDIDATES}
        losses = {}
        with torch.no_grad(), torch.autocast(device.type, dtype=torch.bfloat16, enabled=args.bf16):
            for c in CANDIDATES:  # in eval mode: dropout would make the two sides draw different masks
                models[c].eval()
                losses[c] = float(models[c](**batches[c]).loss)
                models[c].train()
        tol = 1e-2 if args.bf16 else 1e-4
        checks = {c: Check(f"loss {losses[c]:.5f} vs transformers {losses['transformers']:.5f}", abs(losses[c] - losses["transformers"]) <= tol)
                  for c in ("albertkit", "albertkit-full-labels")}
        times = interleaved(fns, repeats=repeats, warmup=1)
        tok = {c: b * t / times[c] for c in CANDIDATES}
        mem = {c: None for c in CANDIDATES}
        if not args.no_memory:
            mem = {c: _probe_in_subprocess(c, b, t, args) for c in CANDIDATES}
        method = "cuda max_memory_allocated delta" if device.type == "cuda" else "peak RSS delta over the built model + optimizer, fresh process"
        same = "same work: MLM logits at all positions both sides (albertkit given transformers' [B,T] labels)"
        saving = "masked-positions saving (feature): albertkit MLM logits at the masked positions only vs transformers all positions"
        for label, c in ((same, "albertkit-full-labels"), (saving, "albertkit")):
            rows.append(Row(f"{b}x{t} {label}: tokens/s", "tok/s", tok[c], tok["transformers"], True, check=checks[c],
                            note=f"step {times[c]:.2f} s vs {times['transformers']:.2f} s"))
            rows.append(Row(f"{b}x{t} {label}: peak memory", "MiB", mem[c], mem["transformers"], False, check=checks[c], note=method))
    print(format_table(rows, title="Pretraining step: albertkit vs transformers AlbertForPreTraining"))


if __name__ == "__main__":
    main()
