"""bench/bench_finetune.py: albertkit's Trainer and transformers' Trainer, given the same start, data,
order and recipe, must train the same model (the comparison's premise, checked on real RTE data)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

from conftest import require_reference

require_reference("accelerate", "transformers' Trainer")  # transformers' Trainer needs it (the `test` extra installs it)

BENCH = Path(__file__).resolve().parents[1] / "bench" / "bench_finetune.py"


def _bench():
    spec = importlib.util.spec_from_file_location("bench_finetune", BENCH)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_quick_options_cap_the_run():
    args = _bench()._parse(["--quick", "--task", "mrpc"])
    assert (args.steps, args.batch_size, args.max_train_examples, args.max_eval_examples) == (12, 8, 64, 64)


@pytest.mark.slow
def test_both_trainers_follow_the_same_trajectory_without_dropout(tmp_path, shared_data):
    # Dropout off + the same batches: any gap beyond float rounding would mean a different optimizer,
    # schedule, clipping, decay grouping or loss between the two trainers.
    s = _bench().main(["--quick", "--no-dropout", "--steps", "20", "--output", str(tmp_path)])
    assert s["decay_groups_identical"] and s["loss_windows_compared"] == 2
    assert s["max_abs_loss_gap_10_step_means"] < 1e-4
    ours, theirs = s["albertkit"], s["transformers"]
    assert ours["accuracy"] == theirs["accuracy"] and s["eval_examples"] == 64
    assert ours["train_seconds"] > 0 and s["wall_time_ratio_transformers_over_albertkit"] > 0
    assert (tmp_path / "albertkit-0" / "model").is_dir() and (tmp_path / "transformers-0" / "checkpoint-20").is_dir()
