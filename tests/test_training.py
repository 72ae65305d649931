"""Trainer: accumulation equivalence, checkpoint/resume (in-process and after SIGKILL), DDP on CPU.

Resumed runs are compared bitwise (torch.equal): on CPU with the same data order, optimizer state
and RNG state, nothing differs. Runs that split a batch differently (accumulation, 2 processes)
sum the same gradients in another order, so they are compared within float32 noise (atol 1e-6).
"""

from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from albertkit.training import TrainingArguments, TrainingStateError, _Dist, _Position, _Stream, _StreamBatches, latest_checkpoint
from train_helpers import Points, make_trainer

HELPER = Path(__file__).with_name("train_helpers.py")


def _weights(folder: Path) -> dict[str, torch.Tensor]:
    from safetensors.torch import load_file

    return load_file(str(folder / "model.safetensors"))


def _params(trainer) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in trainer._unwrapped.state_dict().items()}


def _assert_equal(a: dict, b: dict) -> None:
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), k


def _assert_close(a: dict, b: dict, atol: float = 1e-6) -> None:
    assert a.keys() == b.keys()
    for k in a:
        torch.testing.assert_close(a[k], b[k], rtol=0, atol=atol, msg=k)


def test_stream_is_a_seeded_permutation_per_epoch_and_splits_exactly() -> None:
    stream = _Stream(Points(10), seed=3)
    keys, pos = stream.take(_Position(), 25)
    assert [k[0] for k in keys] == list(range(25))
    assert pos == _Position(epoch=2, offset=5, consumed=25)
    for epoch in (0, 1):
        assert sorted(i for _, e, i in keys if e == epoch) == list(range(10))
    assert [i for _, e, i in keys if e == 0] != [i for _, e, i in keys if e == 1]
    # 2 ranks x 2 accumulation steps partition the global batch of 8 exactly.
    parts = []
    for rank in (0, 1):
        it = iter(_StreamBatches(_Stream(Points(10), 3), _Position(), 8, 2, _Dist(rank, 2, rank)))
        parts += [next(it), next(it)]
    assert sorted(k for p in parts for k in p) == sorted(keys[:8])
    with pytest.raises(ValueError, match="not divisible"):
        TrainingArguments("x", max_steps=1, batch_size=6, grad_accumulation=4).micro_batch_size()


def test_gradient_accumulation_matches_full_batch(tmp_path: Path) -> None:
    full = make_trainer(tmp_path / "full", dropout=0.0, max_steps=4, save_every=0)
    full.train()
    accum = make_trainer(tmp_path / "accum", dropout=0.0, max_steps=4, save_every=0, grad_accumulation=4)
    accum.train()
    _assert_close(_params(full), _params(accum))
    # and the run actually moved the weights
    fresh = make_trainer(tmp_path / "fresh", dropout=0.0)
    assert not torch.allclose(_params(full)["dense.weight"], _params(fresh)["dense.weight"])


def test_stop_and_resume_is_bitwise_identical(tmp_path: Path) -> None:
    reference = make_trainer(tmp_path / "ref", max_steps=12)
    summary = reference.train()
    assert summary["step"] == 12 and (tmp_path / "ref" / "model" / "model.safetensors").is_file()

    first = make_trainer(tmp_path / "run", max_steps=12)
    first.train(stop_after=7)  # checkpoints at 3, 6 and the stop at 7
    assert latest_checkpoint(tmp_path / "run").name == "step-00000007"
    # Simulate a crash after step 7's checkpoint was lost: resume from step 6.
    import shutil

    shutil.rmtree(tmp_path / "run" / "checkpoints" / "step-00000007")
    second = make_trainer(tmp_path / "run", max_steps=12)
    second.train(resume=True)
    _assert_equal(_params(reference), _params(second))
    _assert_equal(_weights(tmp_path / "ref" / "model"), _weights(tmp_path / "run" / "model"))
    # The log was cut back to step 6 and continued: one row per logged step, same losses.
    rows = lambda p: list(csv.DictReader(open(p / "train_log.csv")))  # noqa: E731
    ref_rows, run_rows = rows(tmp_path / "ref"), rows(tmp_path / "run")
    assert [r["step"] for r in run_rows] == [str(s) for s in range(2, 13, 2)]
    assert [r["loss"] for r in run_rows] == [r["loss"] for r in ref_rows]
    assert "aux_loss" in run_rows[0]
    state = json.loads((latest_checkpoint(tmp_path / "run") / "trainer_state.json").read_text())
    assert state["step"] == 12 and state["consumed"] == 96
    # save_total_limit 2: only the last two checkpoints stay
    assert sorted(p.name for p in (tmp_path / "run" / "checkpoints").iterdir()) == ["step-00000009", "step-00000012"]


def test_start_at_continues_the_schedule_from_weights_alone(tmp_path: Path) -> None:
    # Weights saved at step 6 of a 12-step run, optimizer state lost: start_at(6) takes the same
    # examples and the same lr schedule (times the re-warm ramp) as the uninterrupted run.
    reference = make_trainer(tmp_path / "ref", max_steps=12, dropout=0.0)
    reference.train(stop_after=6)
    weights = _params(reference)
    later = make_trainer(tmp_path / "later", max_steps=12, dropout=0.0)
    later._unwrapped.load_state_dict(weights)
    later.start_at(6, rewarm_steps=4)
    assert later.position == reference.position and later.step == 6
    schedule = reference.scheduler.lr_lambdas[0]
    lrs = []
    for s in range(6, 12):
        lrs.append(later.optimizer.param_groups[0]["lr"])
        later.optimizer.step()
        later.scheduler.step()
    expected = [0.05 * schedule(s) * min(1.0, (s - 6) / 4) for s in range(6, 12)]
    assert lrs == pytest.approx(expected) and lrs[0] == 0.0 and lrs[-1] == pytest.approx(0.05 * schedule(11))
    fresh = make_trainer(tmp_path / "fresh", max_steps=12, dropout=0.0)
    fresh._unwrapped.load_state_dict(weights)
    fresh.start_at(6, rewarm_steps=4)
    fresh.train()
    assert fresh.step == 12 and fresh.position.consumed == 96
    rows = list(csv.DictReader(open(tmp_path / "fresh" / "train_log.csv")))
    assert [r["step"] for r in rows] == ["8", "10", "12"]
    with pytest.raises(ValueError, match="start step"):
        make_trainer(tmp_path / "bad", max_steps=12).start_at(12)


def test_start_at_with_anneal_branches_off_the_schedule_and_resumes(tmp_path: Path) -> None:
    # A release branch at step 6 of a 12-step schedule: the lr falls from the schedule's value at
    # step 6 to 0 at step 10; a checkpoint mid-branch resumes on the branch, not on the schedule.
    reference = make_trainer(tmp_path / "ref", max_steps=12, dropout=0.0)
    reference.train(stop_after=6)
    weights, schedule = _params(reference), reference.scheduler.lr_lambdas[0]
    branch = make_trainer(tmp_path / "branch", max_steps=12, dropout=0.0, save_every=2)
    branch._unwrapped.load_state_dict(weights)
    branch.start_at(6, anneal_steps=4)
    assert branch.optimizer.param_groups[0]["lr"] == pytest.approx(0.05 * schedule(6))
    branch.train(stop_after=8)
    assert branch.optimizer.param_groups[0]["lr"] == pytest.approx(0.05 * schedule(6) * 0.5)
    resumed = make_trainer(tmp_path / "branch", max_steps=12, dropout=0.0, save_every=2)
    resumed.train(resume=True, stop_after=10)
    assert resumed.step == 10 and resumed.optimizer.param_groups[0]["lr"] == 0.0
    with pytest.raises(ValueError, match="anneal_steps"):
        make_trainer(tmp_path / "bad", max_steps=12).start_at(6, anneal_steps=-1)



def test_fresh_run_refuses_a_folder_with_checkpoints(tmp_path: Path) -> None:
    make_trainer(tmp_path, max_steps=3).train()
    with pytest.raises(TrainingStateError, match="already holds checkpoints"):
        make_trainer(tmp_path, max_steps=3).train()
    with pytest.raises(TrainingStateError, match="batch_size"):
        make_trainer(tmp_path, max_steps=6, batch_size=4).train(resume=True)


def _run_helper(out: Path, *extra: str, **popen) -> subprocess.Popen:
    # Same thread count as this process: CPU kernels reduce in a thread-dependent order.
    env = dict(os.environ, OMP_NUM_THREADS=str(torch.get_num_threads()), PYTHONPATH=str(HELPER.parent))
    return subprocess.Popen([sys.executable, str(HELPER), str(out), *extra], env=env, stderr=subprocess.PIPE, **popen)


@pytest.mark.slow  # ~3-9 s: a subprocess that imports torch; the in-process stop/resume test is the fast variant
def test_sigkill_and_resume_reaches_the_same_weights(tmp_path: Path) -> None:
    """A subprocess is SIGKILLed after its first checkpoint; resuming gives the uninterrupted weights bitwise."""
    out = tmp_path / "killed"
    proc = _run_helper(out, "--max-steps", "12", "--save-every", "3", "--sleep", "0.05")
    deadline = time.monotonic() + 60
    while latest_checkpoint(out) is None:
        assert proc.poll() is None, proc.stderr.read().decode()
        assert time.monotonic() < deadline, "no checkpoint appeared"
        time.sleep(0.01)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    killed_at = int(latest_checkpoint(out).name.split("-")[1])
    assert killed_at < 12, "the run finished before it could be killed"
    assert not (out / "model").exists()

    resumed = make_trainer(out, max_steps=12)
    resumed.train(resume=True)
    reference = make_trainer(tmp_path / "ref", max_steps=12)
    reference.train()
    _assert_equal(_params(reference), _params(resumed))


def _torchrun(out: Path, nproc: int, *extra: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=str(HELPER.parent))
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc-per-node={nproc}", str(HELPER), str(out), *extra]
    return subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=240)


@pytest.mark.slow
def test_two_process_ddp_matches_single_process(tmp_path: Path) -> None:
    """torchrun with 2 gloo processes, global batch 8 (4 per rank) == one process with batch 8."""
    args = ("--max-steps", "6", "--save-every", "3", "--dropout", "0", "--grad-accumulation", "1")
    done = _torchrun(tmp_path / "ddp", 2, *args)
    assert done.returncode == 0, done.stderr[-3000:]
    single = make_trainer(tmp_path / "single", dropout=0.0, max_steps=6, save_every=3)
    single.train()
    _assert_close(_weights(tmp_path / "ddp" / "model"), _params(single))
    state = json.loads((tmp_path / "ddp" / "checkpoints" / "step-00000006" / "trainer_state.json").read_text())
    assert state["world_size"] == 2 and state["consumed"] == 48
    # A DDP checkpoint resumes in one process (different world size; data order stays global).
    cont = make_trainer(tmp_path / "ddp", dropout=0.0, max_steps=6, save_every=3)
    cont.load_checkpoint(tmp_path / "ddp" / "checkpoints" / "step-00000003")
    assert cont.position.consumed == 24
    _assert_close(_weights(tmp_path / "ddp" / "checkpoints" / "step-00000003" / "model"), _params(cont), atol=0)


def test_eval_dataset_keep_best_and_bf16(tmp_path: Path) -> None:
    """Default eval = mean loss over eval_dataset; the best model by that metric is kept; bf16 autocast trains."""
    from albertkit.training import Trainer
    from train_helpers import TinyRegressor, noisy_collate

    class Indexed(Points):
        def __getitem__(self, i: int) -> dict:
            return {**super().__getitem__(i), "index": i}

    torch.manual_seed(0)
    args = TrainingArguments(str(tmp_path), max_steps=6, batch_size=8, lr=0.05, eval_every=2, keep_best="loss",
                             greater_is_better=False, log_every=0, progress_bar=False, bf16=True)
    trainer = Trainer(TinyRegressor(), args, Points(), collate_fn=noisy_collate, eval_dataset=Indexed(16), index_key="index")
    summary = trainer.train()
    rows = list(csv.DictReader(open(tmp_path / "eval_log.csv")))
    assert [r["step"] for r in rows] == ["2", "4", "6"]
    losses = [float(r["loss"]) for r in rows]
    assert summary["best_metric"] == pytest.approx(min(losses), rel=1e-5)
    assert (tmp_path / "best" / "model.safetensors").is_file()
    assert all(torch.isfinite(v).all() for v in _params(trainer).values())


@pytest.mark.slow  # torch.compile builds C++ kernels: ~20-60 s on 2 cores
def test_compile_trains_like_eager_and_saves_plain_keys(tmp_path: Path) -> None:
    eager = make_trainer(tmp_path / "eager", dropout=0.0, max_steps=4, save_every=0)
    eager.train()
    compiled = make_trainer(tmp_path / "compiled", dropout=0.0, max_steps=4, save_every=0, compile=True)
    compiled.train()
    _assert_close(_params(eager), _params(compiled), atol=1e-5)
    saved_eager, saved_compiled = _weights(tmp_path / "eager" / "model"), _weights(tmp_path / "compiled" / "model")
    assert sorted(saved_compiled) == sorted(saved_eager)  # no "_orig_mod." prefixes
    _assert_close(saved_eager, saved_compiled, atol=1e-5)
