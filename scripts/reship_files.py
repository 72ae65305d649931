"""File steps of scripts/reship_albert_mini_en.sh: the run's logs, learning curve and schedule position
copied into a shipped model's training/ folder, and small JSON wrappers. Files are written with
albertkit's atomic writer (the script runs with src/ on the path, as the shell script sets it).

    python scripts/reship_files.py logs RUN_STAGE_DIR MODEL/training --step 9000
    python scripts/reship_files.py race-text ../shared/data/race race_articles.txt
    python scripts/reship_files.py fill-mask raw.json MODEL/training/fill_mask_examples.json --command "..." TEXT...
    python scripts/reship_files.py stamp FILE.json --set model=src/... --set command="..."
    python scripts/reship_files.py better NEW.json OLD.json   # exit 1 unless NEW's mask_accuracy > OLD's

``logs``: RUN_STAGE_DIR is the stage's output folder (``runs/.../stage-K``): its eval/train logs cut
at ``--step`` become ``retrain_stageK_{eval_log,train_log}.csv`` and its recipe
``retrain_stageK_pretraining_recipe.json``; then ``learning_curve.csv`` is rebuilt from every
``retrain_stage<N>_eval_log.csv`` in the folder (the schedule's stages in order, each stage's rows
after the previous stage's last step; a branch such as ``stage1b`` is not in the lineage), and
``position.json`` records the step, which ``scripts/train_albert_mini_en.sh`` reads to continue
from the shipped folder (RESUME_FROM). A release branch (``RELEASE_AT``: the stage folder holds
``BRANCH_OF``, "stage-K STEP") takes the trunk stage's logs cut at the branch point first, and its
``position.json`` says that the weights are not a point of the schedule.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import re
import sys
from pathlib import Path

from albertkit.optim import WarmupLinearDecay  # the trainer's schedule, for the lr at a branch point
from albertkit.utils import atomic_write_text as _write_atomic  # bytes as given: line endings kept

PREFIX = "retrain_stage"
CURVE = ("step", "stage", "seq_length", "token_positions", "mask_only_accuracy", "mask_only_loss", "masked_lm_accuracy",
         "probe_mask_only_accuracy", "probe_shuffle_gap", "probe_neighbour_attention", "probe_uniform_attention",
         "sentence_order_accuracy")


def _read_csv(path: Path) -> tuple[list[str], list[dict[str, str]]]:
    with open(path, newline="", encoding="utf-8") as f:
        reader = csv.DictReader(f)
        return list(reader.fieldnames or []), list(reader)


def _write_csv(path: Path, fields: list[str] | tuple[str, ...], rows: list[dict[str, object]]) -> None:
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=list(fields), extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    _write_atomic(path, out.getvalue())


def logs(run: Path, training: Path, step: int) -> dict[str, object]:
    match = re.fullmatch(r"stage-(\d+)", run.resolve().name)
    if not match:
        sys.exit(f"{run}: expected a stage folder named stage-K (scripts/train_albert_mini_en.sh's OUT/stage-K)")
    stage = int(match.group(1))
    recipe = json.loads((run / "pretraining_recipe.json").read_text())
    branch = None
    if (run / "BRANCH_OF").is_file():
        trunk, at = (run / "BRANCH_OF").read_text().split()
        logs(run.parent / trunk, training, int(at))  # the trunk's past up to the branch point
        branch = (trunk, int(at))
    for name in ("eval_log.csv", "train_log.csv"):
        # the run's own lines, byte for byte, up to the shipped step (the log grows while the run goes on)
        with open(run / name, encoding="utf-8", newline="") as f:
            header, *lines = f.read().splitlines(keepends=True)
        kept = [line for line in lines if line.strip() and int(line.split(",", 1)[0]) <= step]
        if name == "eval_log.csv" and not any(int(line.split(",", 1)[0]) == step for line in kept):
            sys.exit(f"{run / name}: no evaluation at step {step} (ship a step the run evaluated: every --eval-every steps)")
        _write_atomic(training / f"{PREFIX}{stage}_{name}", header + "".join(kept))
    _write_atomic(training / f"{PREFIX}{stage}_pretraining_recipe.json", json.dumps(recipe, indent=2) + "\n")

    stages = sorted((int(m.group(1)), p) for p in training.glob(f"{PREFIX}*_eval_log.csv")
                    if (m := re.fullmatch(rf"{PREFIX}(\d+)_eval_log\.csv", p.name)))
    curve: list[dict[str, object]] = []
    last, tokens = 0, 0
    for k, path in stages:
        if k > stage:
            continue  # a later stage of an older shipment: not in this checkpoint's past
        stage_recipe = json.loads((training / f"{PREFIX}{k}_pretraining_recipe.json").read_text())
        per_step = stage_recipe["max_seq_length"] * stage_recipe["training"]["batch_size"]
        for row in _read_csv(path)[1]:
            s = int(row["step"])
            if s <= last or (k == stage and s > step):
                continue
            tokens += (s - last) * per_step
            last = s
            curve.append({**row, "stage": k, "seq_length": stage_recipe["max_seq_length"], "token_positions": tokens})
    _write_csv(training / "learning_curve.csv", CURVE, curve)
    args = recipe["training"]
    position = {
        "step": step,
        "stage": f"{stage} ({recipe['max_seq_length']} x {args['batch_size']})",
        "max_steps": args["max_steps"],
        "warmup_steps": args["warmup_steps"],
        "batch_size": args["batch_size"],
        "max_seq_length": recipe["max_seq_length"],
        "subword_masking_steps": recipe.get("subword_masking_steps", 0),
        "token_positions_seen": tokens,
        "lr": args["lr"],
        "optimizer": args["optimizer"],
        "optimizer_state": "not kept (AdamW moments are 2x the model); --start-step re-warms the lr over 100 steps",
        "continue_with": f"RESUME_FROM={training.parent} PROCS=2 scripts/train_albert_mini_en.sh runs/albert-mini-en [STOP_AFTER]",
    }
    if branch is None and step >= int(args["max_steps"]):
        position["continue_with"] = "nothing: the schedule is complete (a new schedule starts from these weights with --init-from)"
    if branch is not None:
        trunk, at = branch
        lr_at = float(args["lr"]) * WarmupLinearDecay(int(args["warmup_steps"]), int(args["max_steps"]))(at)
        position.update(
            stage=f"{stage} ({recipe['max_seq_length']} x {args['batch_size']}): a release branch of {trunk} at step {at:,}, "
                  f"the lr decayed linearly from {lr_at:.3g} to 0 over {step - at} steps; not a point of the schedule",
            lr=f"{lr_at:.3g} at step {at:,} -> 0 at {step:,} (--start-step {at} --anneal-steps {step - at})",
            continue_with="RESUME_FROM=training-state/albert-mini-en PROCS=2 scripts/train_albert_mini_en.sh "
                          "runs/albert-mini-en [STOP_AFTER] (the schedule's weights, not these)",
        )
    _write_atomic(training / "position.json", json.dumps(position, indent=2) + "\n")
    return {"curve_points": len(curve), "stages": [k for k, _ in stages if k <= stage], **position}


def race_text(race: Path, output: Path) -> None:
    """The 15 RACE passages as tests/test_shipped_model.py joins them (sorted files, blank line between)."""
    docs = [json.loads(p.read_text())["article"].strip() for p in sorted((race / "RACE").glob("*/*/*.txt"))]
    output.write_text("\n\n".join(docs) + "\n", encoding="utf-8")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("logs")
    p.add_argument("run", type=Path)
    p.add_argument("training", type=Path)
    p.add_argument("--step", type=int, required=True)
    p = sub.add_parser("race-text")
    p.add_argument("race", type=Path)
    p.add_argument("output", type=Path)
    p = sub.add_parser("fill-mask")
    p.add_argument("raw", type=Path, help="`albertkit fill-mask` JSON output for the TEXTs")
    p.add_argument("output", type=Path)
    p.add_argument("--command", required=True)
    p.add_argument("texts", nargs="+")
    p = sub.add_parser("stamp")
    p.add_argument("file", type=Path)
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    p = sub.add_parser("better")
    p.add_argument("new", type=Path)
    p.add_argument("old", type=Path)
    args = parser.parse_args()
    if args.cmd == "logs":
        args.training.mkdir(parents=True, exist_ok=True)
        print(json.dumps(logs(args.run, args.training, args.step)))
    elif args.cmd == "race-text":
        race_text(args.race, args.output)
    elif args.cmd == "fill-mask":
        results = json.loads(args.raw.read_text())
        if len(args.texts) == 1:
            results = [results]
        data = {"command": args.command, "inputs": args.texts, "results": results}
        _write_atomic(args.output, json.dumps(data, indent=2) + "\n")
    elif args.cmd == "stamp":
        data = json.loads(args.file.read_text())
        data.update(kv.split("=", 1) for kv in args.set)
        _write_atomic(args.file, json.dumps(data, indent=2) + "\n")
    else:
        new = json.loads(args.new.read_text())["mask_accuracy"]
        old = json.loads(args.old.read_text())["mask_accuracy"] if args.old.is_file() else 0.0
        print(f"held-out [MASK] accuracy: candidate {100 * new:.2f}%, shipped {100 * old:.2f}%")
        sys.exit(0 if new > old else 1)


if __name__ == "__main__":
    main()
