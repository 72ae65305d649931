"""Copy a pretraining run's logs into a shipped model's training/ folder, with its learning curve.

    python scripts/export_training_log.py runs/albert-mini-en src/albertkit/models/albert-mini-en/training \\
        --shipped-step 2100

Writes ``train_log.csv`` and ``eval_log.csv`` (the run's own, up to ``--shipped-step``),
``learning_curve.csv`` (step, token positions seen = step x batch x max_seq_length, [MASK]-only
held-out accuracy and the plateau probes) and ``position.json`` (the schedule and the step the
shipped weights come from, which ``scripts/train_albert_mini_en.sh`` reads to continue without
the optimizer state).
"""

from __future__ import annotations

import argparse
import csv
import json
from pathlib import Path

CURVE = ("step", "token_positions", "mask_only_accuracy", "mask_only_loss", "masked_lm_accuracy",
         "probe_mask_only_accuracy", "probe_shuffle_gap", "probe_neighbour_attention", "probe_uniform_attention",
         "sentence_order_accuracy")


def _rows(path: Path, last_step: int) -> tuple[list[str], list[dict[str, str]]]:
    with open(path, newline="") as f:
        reader = csv.DictReader(f)
        rows = [r for r in reader if int(r["step"]) <= last_step]
        return list(reader.fieldnames or []), rows


def _write(path: Path, fields: list[str] | tuple[str, ...], rows: list[dict[str, object]]) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    with open(tmp, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(fields), extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)
    tmp.replace(path)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run", type=Path, help="pretraining output folder")
    parser.add_argument("target", type=Path, help="the model's training/ folder")
    parser.add_argument("--shipped-step", type=int, required=True, help="the step whose weights are shipped")
    args = parser.parse_args()
    recipe = json.loads((args.run / "pretraining_recipe.json").read_text())
    training = recipe["training"]
    per_step = training["batch_size"] * recipe["max_seq_length"]
    args.target.mkdir(parents=True, exist_ok=True)
    for name in ("train_log.csv", "eval_log.csv"):
        fields, rows = _rows(args.run / name, args.shipped_step)
        _write(args.target / name, fields, rows)  # type: ignore[arg-type]
    _, evals = _rows(args.run / "eval_log.csv", args.shipped_step)
    curve = [{**r, "token_positions": int(r["step"]) * per_step} for r in evals]
    _write(args.target / "learning_curve.csv", CURVE, curve)  # type: ignore[arg-type]
    position = {
        "step": args.shipped_step,
        "max_steps": training["max_steps"],
        "warmup_steps": training["warmup_steps"],
        "batch_size": training["batch_size"],
        "max_seq_length": recipe["max_seq_length"],
        "subword_masking_steps": recipe.get("subword_masking_steps", 0),
        "token_positions_seen": args.shipped_step * per_step,
        "lr": training["lr"],
        "optimizer": training["optimizer"],
        "continue_with": f"RESUME_FROM={args.target.parent} scripts/train_albert_mini_en.sh runs/albert-mini-en [STOP_AFTER]",
    }
    (args.target / "position.json").write_text(json.dumps(position, indent=2) + "\n")
    (args.target / "pretraining_recipe.json").write_text(json.dumps(recipe, indent=2) + "\n")
    print(json.dumps({"curve_points": len(curve), **position}))


if __name__ == "__main__":
    main()
