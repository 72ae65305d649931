"""`albertkit pretrain` / `evaluate-pretraining` end to end on real corpus files (tiny model, few steps).

The held-out metrics are checked against transformers' AlbertForPreTraining loaded from the saved
folder: its full-sequence logits, gathered at the masked positions, must give the same numbers.
"""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from albertkit.cli import main
from conftest import require_reference

CORPUS_FILES = ("inaugural/1789-Washington.txt", "inaugural/1861-Lincoln.txt", "inaugural/1933-Roosevelt.txt",
                "inaugural/1961-Kennedy.txt", "state_union/1945-Truman.txt", "state_union/1963-Kennedy.txt")


def _files(shared_data: Path) -> list[str]:
    return [str(shared_data / "corpus" / f) for f in CORPUS_FILES]


def _pretrain_args(files: list[str], spiece: Path, out: Path, steps: int = 4) -> list[str]:
    return [
        "pretrain", *files, "--tokenizer", str(spiece), "--config", "tiny", "--output", str(out),
        "--batch-size", "8", "--max-steps", str(steps), "--lr", "1e-3", "--max-seq-length", "64",
        "--heldout-docs", "1", "--eval-instances", "16", "--save-every", "2", "--num-workers", "0",
    ]


def _hf_metrics(model_dir: Path, corpus_dir: Path, spiece: Path, max_ngram: int = 3, single_pieces: bool = False) -> dict[str, float]:
    """The metrics computed with transformers' model on the same held-out instances and masks
    (mask_only_*: the targets whose input is [MASK], found from the slow tokenizer's mask id)."""
    transformers = require_reference("transformers")
    from albertkit.pretraining import MaskingCollator, PretrainingCorpus, SOPDataset
    from albertkit.tokenization import AlbertTokenizer

    hf = transformers.AlbertForPreTraining.from_pretrained(str(model_dir)).eval()
    tok = AlbertTokenizer.from_pretrained(str(spiece))
    data = SOPDataset(PretrainingCorpus(corpus_dir, "heldout"), 64, 0.1, seed=1, epoch=0)
    collator = MaskingCollator(tok, max_ngram=1 if single_pieces else max_ngram, seed=1, whole_word=not single_pieces)
    batch = collator([data[i] for i in range(len(data))])
    mask_id = transformers.AutoTokenizer.from_pretrained(str(model_dir)).mask_token_id
    with torch.no_grad():
        out = hf(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"], token_type_ids=batch["token_type_ids"])
    logits = out.prediction_logits.gather(1, batch["masked_lm_positions"].unsqueeze(-1).expand(-1, -1, out.prediction_logits.shape[-1]))
    labels = batch["masked_lm_labels"]
    valid = labels != -100
    ce = torch.nn.functional.cross_entropy(logits[valid], labels[valid])
    sop = batch["sentence_order_label"]
    at_mask = valid & (batch["input_ids"].gather(1, batch["masked_lm_positions"]) == mask_id)
    assert 0 < int(at_mask.sum()) < int(valid.sum())
    return {
        "mask_only_loss": float(torch.nn.functional.cross_entropy(logits[at_mask], labels[at_mask])),
        "mask_only_accuracy": float((logits.argmax(-1)[at_mask] == labels[at_mask]).float().mean()),
        "masked_lm_loss": float(ce),
        "masked_lm_accuracy": float((logits.argmax(-1)[valid] == labels[valid]).float().mean()),
        "sentence_order_loss": float(torch.nn.functional.cross_entropy(out.sop_logits, sop)),
        "sentence_order_accuracy": float((out.sop_logits.argmax(-1) == sop).float().mean()),
    }


def test_pretrain_cli_end_to_end(tmp_path: Path, shared_data: Path, spiece_path: Path, capsys) -> None:
    out = tmp_path / "run"
    assert main(_pretrain_args(_files(shared_data), spiece_path, out)) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed["step"] == 4 and 0.0 <= printed["sentence_order_accuracy"] <= 1.0
    for name in ("config.json", "model.safetensors", "spiece.model"):
        assert (out / "model" / name).is_file(), name
    rows = list(csv.DictReader(open(out / "train_log.csv")))
    assert [r["step"] for r in rows] == ["4"] and float(rows[0]["masked_lm_loss"]) > 0
    # The eval log carries the plateau probes (issue #14) beside Google's metrics.
    evals = list(csv.DictReader(open(out / "eval_log.csv")))
    for key in ("mask_only_accuracy", "probe_mask_only_accuracy", "probe_shuffle_gap", "probe_neighbour_attention"):
        assert key in evals[-1] and evals[-1][key] != "", key
    assert sorted(p.name for p in (out / "checkpoints").iterdir()) == ["step-00000002", "step-00000004"]

    # evaluate-pretraining on the held-out split of the prepared corpus, against transformers.
    metrics_file = tmp_path / "metrics.json"
    assert main(["evaluate-pretraining", str(out / "model"), str(out / "corpus"), "--max-seq-length", "64",
                 "--output", str(metrics_file)]) == 0
    ours = json.loads(metrics_file.read_text())
    reference = _hf_metrics(out / "model", out / "corpus", spiece_path)
    for key, value in reference.items():
        assert ours[key] == pytest.approx(value, abs=1e-4), key
    # --max-ngram 1 (single-word masking) reaches the collator: it matches transformers on those masks.
    assert main(["evaluate-pretraining", str(out / "model"), str(out / "corpus"), "--max-seq-length", "64",
                 "--max-ngram", "1", "--output", str(metrics_file)]) == 0
    single = json.loads(metrics_file.read_text())
    for key, value in _hf_metrics(out / "model", out / "corpus", spiece_path, max_ngram=1).items():
        assert single[key] == pytest.approx(value, abs=1e-4), key
    assert single["masked_lm_loss"] != ours["masked_lm_loss"]
    # --single-pieces (BERT's subword masking, issue #14's [MASK]-only score) likewise.
    assert main(["evaluate-pretraining", str(out / "model"), str(out / "corpus"), "--max-seq-length", "64",
                 "--single-pieces", "--probes", "8", "--output", str(metrics_file)]) == 0
    pieces = json.loads(metrics_file.read_text())
    for key, value in _hf_metrics(out / "model", out / "corpus", spiece_path, single_pieces=True).items():
        assert pieces[key] == pytest.approx(value, abs=1e-4), key
    assert pieces["mask_only_tokens"] < pieces["masked_tokens"]
    assert 0.0 < pieces["probe_neighbour_attention"] < 1.0 and "probe_shuffle_gap" in pieces

    # Resuming a finished run is a no-op that keeps the weights.
    before = (out / "model" / "model.safetensors").read_bytes()
    assert main([*_pretrain_args(_files(shared_data), spiece_path, out), "--resume"]) == 0
    assert (out / "model" / "model.safetensors").read_bytes() == before


def test_pretrain_cli_reports_bad_input(tmp_path: Path, shared_data: Path, spiece_path: Path, capsys) -> None:
    assert main(_pretrain_args([str(tmp_path / "missing.txt")], spiece_path, tmp_path / "a")) == 2
    assert "missing.txt does not exist" in capsys.readouterr().err
    latin1 = str(shared_data / "corpus" / "inaugural" / "2005-Bush.txt")
    assert main(_pretrain_args([latin1], spiece_path, tmp_path / "b")) == 2
    err = capsys.readouterr().err
    assert "2005-Bush.txt" in err and "line" in err
    assert main(_pretrain_args(_files(shared_data)[:1], spiece_path, tmp_path / "c") + ["--config", "no-such-preset"]) == 2
    assert "no-such-preset" in capsys.readouterr().err


@pytest.mark.slow
def test_pretrain_cli_subprocess_then_evaluate_raw_text(tmp_path: Path, shared_data: Path, spiece_path: Path) -> None:
    """The installed entry point in a fresh process; then evaluation on raw text it never saw."""
    out = tmp_path / "run"
    env = dict(os.environ, PYTHONPATH=str(Path(__file__).resolve().parents[1] / "src"))
    run = subprocess.run([sys.executable, "-m", "albertkit", *_pretrain_args(_files(shared_data), spiece_path, out, steps=6)],
                         env=env, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr[-3000:]
    unseen = str(shared_data / "corpus" / "inaugural" / "1801-Jefferson.txt")
    ev = subprocess.run([sys.executable, "-m", "albertkit", "evaluate-pretraining", str(out / "model"), unseen,
                         "--max-seq-length", "64"], env=env, capture_output=True, text=True, timeout=300)
    assert ev.returncode == 0, ev.stderr[-3000:]
    metrics = json.loads(ev.stdout)
    assert metrics["instances"] > 0 and metrics["masked_tokens"] > 0
    assert set(metrics) >= {"masked_lm_loss", "masked_lm_accuracy", "sentence_order_loss", "sentence_order_accuracy"}


# --stop-after / --resume (bitwise against an uninterrupted run) and torchrun: tests/test_pretrain_determinism.py


def test_pretrain_cli_stop_after_then_resume(tmp_path: Path, shared_data: Path, spiece_path: Path, capsys) -> None:
    """--stop-after checkpoints and exits mid-schedule; --resume finishes the same schedule."""
    out = tmp_path / "run"
    args = _pretrain_args(_files(shared_data), spiece_path, out, steps=4)
    args[args.index("--save-every") + 1] = "10"  # only the stop and the end write checkpoints
    assert main([*args, "--stop-after", "3"]) == 0
    assert sorted(p.name for p in (out / "checkpoints").iterdir()) == ["step-00000003"]
    assert not (out / "model").exists()
    state = json.loads((out / "checkpoints" / "step-00000003" / "trainer_state.json").read_text())
    assert state["step"] == 3 and state["args"]["max_steps"] == 4
    capsys.readouterr()
    assert main([*args, "--resume"]) == 0
    assert json.loads(capsys.readouterr().out)["step"] == 4
    assert (out / "model" / "model.safetensors").is_file()
    # Checkpoints gone, weights kept: --init-from + --start-step continue the same schedule at step 3
    # (the data position of the uninterrupted run), here with the subword->n-gram switch at step 2.
    later = tmp_path / "later"
    again = _pretrain_args([str(out / "corpus")], spiece_path, later, steps=4)
    capsys.readouterr()
    assert main([*again, "--init-from", str(out / "checkpoints" / "step-00000003" / "model"), "--start-step", "3",
                 "--rewarm-steps", "1", "--subword-masking-steps", "2"]) == 0
    assert json.loads(capsys.readouterr().out)["step"] == 4
    state = json.loads((later / "checkpoints" / "step-00000004" / "trainer_state.json").read_text())
    assert state["consumed"] == 4 * 8
    assert main([*_pretrain_args([str(out / "corpus")], spiece_path, tmp_path / "x", steps=4), "--start-step", "2"]) != 0
    assert "give init_from too" in capsys.readouterr().err
    # A release branch off step 2: the lr anneals to 0 over 1 step and the run stops at step 3.
    branch = tmp_path / "branch"
    assert main([*_pretrain_args([str(out / "corpus")], spiece_path, branch, steps=4), "--save-every", "10",
                 "--init-from", str(out / "checkpoints" / "step-00000003" / "model"), "--start-step", "2",
                 "--anneal-steps", "1"]) == 0
    assert sorted(p.name for p in (branch / "checkpoints").iterdir()) == ["step-00000003"]
    assert not (branch / "model").exists()
    capsys.readouterr()
    assert main([*_pretrain_args([str(out / "corpus")], spiece_path, tmp_path / "y", steps=4), "--anneal-steps", "2"]) != 0
    assert "--anneal-steps branches off" in capsys.readouterr().err
