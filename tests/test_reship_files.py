"""scripts/reship_files.py (the file steps of scripts/reship_albert_mini_en.sh): a stage's logs cut at
the shipped step, the learning curve over the schedule's stages, position.json, and the refusals."""

from __future__ import annotations

import csv
import importlib.util
import json
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "reship_files.py"
HEADER = "step,masked_lm_accuracy,mask_only_accuracy,probe_shuffle_gap\n"


@pytest.fixture(scope="module")
def reship():
    spec = importlib.util.spec_from_file_location("reship_files", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _recipe(seq: int, batch: int) -> str:
    return json.dumps({"max_seq_length": seq, "subword_masking_steps": 12,
                       "training": {"batch_size": batch, "max_steps": 48, "warmup_steps": 4, "lr": 0.001, "optimizer": "adamw"}})


def _stage_files(tmp_path: Path) -> tuple[Path, Path]:
    training = tmp_path / "model" / "training"
    training.mkdir(parents=True)
    (training / "retrain_stage1_eval_log.csv").write_text(HEADER + "10,0.1,0.05,0.0\n20,0.11,0.06,0.0\n")
    (training / "retrain_stage1_pretraining_recipe.json").write_text(_recipe(128, 32))
    (training / "retrain_stage1b_eval_log.csv").write_text(HEADER + "30,0.1,0.05,0.0\n")  # a branch: not in the curve
    (training / "retrain_stage1b_pretraining_recipe.json").write_text(_recipe(128, 32))
    (training / "retrain_stage2_eval_log.csv").write_text(HEADER + "30,0.12,0.08,0.5\n")
    (training / "retrain_stage2_pretraining_recipe.json").write_text(_recipe(32, 64))  # 2,048 positions a step
    run = tmp_path / "runs" / "stage-3"
    run.mkdir(parents=True)
    (run / "pretraining_recipe.json").write_text(_recipe(128, 32))
    (run / "eval_log.csv").write_text(HEADER + "40,0.2,0.15,2.0\n50,0.21,0.16,2.1\n60,0.22,0.17,2.2\n")  # the run goes on past 50
    (run / "train_log.csv").write_text("step,loss\r\n45,5.0\r\n50,4.9\r\n55,4.8\r\n")
    return run, training


def test_logs_cut_at_the_step_and_the_curve_spans_the_stages(reship, tmp_path):
    run, training = _stage_files(tmp_path)
    out = reship.logs(run, training, 50)
    assert (training / "retrain_stage3_eval_log.csv").read_text() == HEADER + "40,0.2,0.15,2.0\n50,0.21,0.16,2.1\n"
    assert (training / "retrain_stage3_train_log.csv").read_bytes() == b"step,loss\r\n45,5.0\r\n50,4.9\r\n"  # bytes kept
    assert json.loads((training / "retrain_stage3_pretraining_recipe.json").read_text())["max_seq_length"] == 128
    with open(training / "learning_curve.csv", newline="") as f:
        curve = list(csv.DictReader(f))
    assert [(r["step"], r["stage"], r["seq_length"], r["token_positions"]) for r in curve] == [
        ("10", "1", "128", str(10 * 4096)), ("20", "1", "128", str(20 * 4096)),
        ("30", "2", "32", str(20 * 4096 + 10 * 2048)),
        ("40", "3", "128", str(20 * 4096 + 10 * 2048 + 10 * 4096)), ("50", "3", "128", str(20 * 4096 + 10 * 2048 + 20 * 4096))]
    assert curve[-1]["mask_only_accuracy"] == "0.16" and curve[-1]["probe_shuffle_gap"] == "2.1"
    position = json.loads((training / "position.json").read_text())
    assert position["step"] == 50 and position["token_positions_seen"] == int(curve[-1]["token_positions"])
    assert position["max_steps"] == 48 and out["stages"] == [1, 2, 3]


def test_logs_refuse_a_step_the_run_did_not_evaluate_and_a_folder_not_a_stage(reship, tmp_path):
    run, training = _stage_files(tmp_path)
    with pytest.raises(SystemExit, match="no evaluation at step 45"):
        reship.logs(run, training, 45)
    other = tmp_path / "runs" / "final"
    run.rename(other)
    with pytest.raises(SystemExit, match="expected a stage folder named stage-K"):
        reship.logs(other, training, 50)


def test_logs_of_a_release_branch_cut_the_trunk_at_the_branch_point(reship, tmp_path):
    run, training = _stage_files(tmp_path)
    branch = run.parent / "stage-4"
    branch.mkdir()
    (branch / "BRANCH_OF").write_text("stage-3 40\n")
    (branch / "pretraining_recipe.json").write_text(_recipe(128, 32))
    (branch / "eval_log.csv").write_text(HEADER + "45,0.3,0.25,2.5\n")
    (branch / "train_log.csv").write_text("step,loss\r\n45,4.0\r\n")
    out = reship.logs(branch, training, 45)
    assert (training / "retrain_stage3_eval_log.csv").read_text() == HEADER + "40,0.2,0.15,2.0\n"  # the trunk, up to 40
    with open(training / "learning_curve.csv", newline="") as f:
        curve = list(csv.DictReader(f))
    assert [(r["step"], r["stage"]) for r in curve][-2:] == [("40", "3"), ("45", "4")]
    position = json.loads((training / "position.json").read_text())
    assert position["step"] == 45 and "release branch of stage-3 at step 40" in position["stage"]
    # the schedule's lr at step 40 of 48 (peak 1e-3, linear decay from step 0): 1e-3 * (1 - 40/48)
    assert position["lr"].startswith("0.000167 at step 40 -> 0 at 45") and "not these" in position["continue_with"]
    assert out["stages"] == [1, 2, 3, 4]
