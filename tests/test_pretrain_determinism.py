"""Pretraining ALBERT itself (not a toy model) is reproducible: stop/resume is bitwise, DDP matches one process.

Both run `albertkit pretrain` on real corpus text with a tiny ALBERT, LAMB and the n-gram masking
collator. One corpus is tokenised once for the module and passed as a prepared folder.

* ``--stop-after 3`` then ``--resume`` equals the uninterrupted run bitwise: weights, LAMB state and
  the logged losses. Dropout is on (0.1), so this also proves the RNG state is restored; the
  interrupted run loads batches in a worker process, the reference in-process (masking is seeded
  per instance, not per process).
* ``torchrun --nproc-per-node 2`` (gloo) equals one process within 1e-5. The masked-LM loss is a mean
  over the masked tokens of each micro-batch (as Google's, per TPU core), so the single process runs
  the same two micro-batches per step through gradient accumulation (``--grad-accumulation 2``);
  DDP averages the two ranks' gradients exactly as accumulation does.
"""

from __future__ import annotations

import csv
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from albertkit.cli import main

REPO = Path(__file__).resolve().parents[1]
CORPUS_FILES = ("inaugural/1789-Washington.txt", "inaugural/1861-Lincoln.txt", "inaugural/1933-Roosevelt.txt",
                "inaugural/1961-Kennedy.txt", "state_union/1945-Truman.txt", "state_union/1963-Kennedy.txt")
STEPS = 6


@pytest.fixture(scope="module")
def prepared(tmp_path_factory, shared_data: Path, spiece_path: Path) -> dict[str, Path]:
    from albertkit import AlbertConfig, AlbertTokenizer
    from albertkit.pretraining import prepare_corpus

    root = tmp_path_factory.mktemp("pretrain")
    tok = AlbertTokenizer.from_pretrained(str(spiece_path))
    corpus = prepare_corpus([shared_data / "corpus" / f for f in CORPUS_FILES], tok, root / "corpus", num_workers=1,
                            heldout_docs=1, progress=False)
    configs = {"dropout": 0.1, "no-dropout": 0.0}
    for name, p in configs.items():
        AlbertConfig.from_name("tiny", hidden_dropout_prob=p, attention_probs_dropout_prob=p,
                               classifier_dropout_prob=p).save_pretrained(root / name)
    return {"corpus": Path(corpus), **{name: root / name / "config.json" for name in configs}}


def _args(prepared: dict[str, Path], spiece: Path, out: Path, config: str, *extra: str) -> list[str]:
    return [
        "pretrain", str(prepared["corpus"]), "--tokenizer", str(spiece), "--config", config, "--output", str(out),
        "--batch-size", "8", "--max-steps", str(STEPS), "--warmup-steps", "1", "--lr", "2e-3", "--max-seq-length", "64",
        "--eval-instances", "8", "--save-every", "100", "--log-every", "1", *extra,
    ]


def _tensors(path: Path) -> dict[str, torch.Tensor]:
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        return load_file(str(path))
    state = torch.load(path, weights_only=True)["state"]
    return {f"{i}.{k}": v for i, s in state.items() for k, v in s.items() if isinstance(v, torch.Tensor)}


def _losses(run: Path) -> list[dict[str, str]]:
    keep = ("step", "examples", "lr", "loss", "masked_lm_loss", "sentence_order_loss", "grad_norm")
    return [{k: r[k] for k in keep} for r in csv.DictReader(open(run / "train_log.csv"))]


def test_stop_after_then_resume_equals_the_uninterrupted_run_bitwise(prepared, spiece_path, tmp_path) -> None:
    config = str(prepared["dropout"])
    assert main(_args(prepared, spiece_path, tmp_path / "ref", config, "--num-workers", "0")) == 0
    run = tmp_path / "run"
    assert main(_args(prepared, spiece_path, run, config, "--num-workers", "1", "--stop-after", "3")) == 0
    assert [p.name for p in (run / "checkpoints").iterdir()] == ["step-00000003"] and not (run / "model").exists()
    assert main(_args(prepared, spiece_path, run, config, "--num-workers", "1", "--resume")) == 0

    ref, got = _tensors(tmp_path / "ref" / "model" / "model.safetensors"), _tensors(run / "model" / "model.safetensors")
    assert ref.keys() == got.keys()
    for key in ref:
        assert torch.equal(ref[key], got[key]), key
    step = f"checkpoints/step-{STEPS:08d}/optimizer.pt"
    ref_opt, got_opt = _tensors(tmp_path / "ref" / step), _tensors(run / step)
    assert ref_opt.keys() == got_opt.keys() and any(k.endswith("exp_avg") for k in ref_opt)
    for key in ref_opt:
        assert torch.equal(ref_opt[key], got_opt[key]), key
    logged = _losses(tmp_path / "ref")
    assert [r["step"] for r in logged] == [str(s) for s in range(1, STEPS + 1)]
    assert _losses(run) == logged  # the log was continued from step 3, same numbers

    # The comparison can fail: another seed (other init, order, masks and dropout) gives other weights.
    assert main(_args(prepared, spiece_path, tmp_path / "seed1", config, "--num-workers", "0", "--seed", "1",
                      "--max-steps", "1")) == 0
    other = _tensors(tmp_path / "seed1" / "model" / "model.safetensors")
    assert not all(torch.equal(ref[k], other[k]) for k in ref)


def test_two_process_torchrun_equals_one_process(prepared, spiece_path, tmp_path) -> None:
    # No dropout (tiny keeps 0.1 in the SOP head): two ranks draw other dropout masks than one process.
    config = str(prepared["no-dropout"])
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=str(REPO / "src"))
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node=2", "-m", "albertkit", "-q",
           *_args(prepared, spiece_path, tmp_path / "ddp", config, "--num-workers", "0")]
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    assert main(_args(prepared, spiece_path, tmp_path / "one", config, "--num-workers", "0", "--grad-accumulation", "2")) == 0

    ddp, one = _tensors(tmp_path / "ddp" / "model" / "model.safetensors"), _tensors(tmp_path / "one" / "model" / "model.safetensors")
    assert ddp.keys() == one.keys()
    for key in one:
        torch.testing.assert_close(ddp[key], one[key], rtol=0, atol=1e-5, msg=key)
    # ... and the weights moved far beyond that bound (pretrain() initialises after manual_seed(seed)).
    from albertkit import AlbertConfig, AlbertForPreTraining

    torch.manual_seed(0)
    init = AlbertForPreTraining(AlbertConfig.from_json_file(config).replace(vocab_size=30000)).state_dict()
    moved = max(float((one[k] - init[k]).abs().max()) for k in one)
    assert moved > 1e-3, moved
    ddp_log, one_log = _losses(tmp_path / "ddp"), _losses(tmp_path / "one")
    assert [r["examples"] for r in ddp_log] == [r["examples"] for r in one_log] == [str(8 * s) for s in range(1, STEPS + 1)]
    for a, b in zip(ddp_log, one_log):
        assert float(a["loss"]) == pytest.approx(float(b["loss"]), abs=1e-5), a["step"]
