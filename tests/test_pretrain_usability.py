"""`albertkit pretrain` / `evaluate-pretraining` as a newcomer meets them (issue 19, items 6, 7, 11):
the sequence length follows the model, bad settings fail before the corpus is prepared, and empty
or binary corpora get a message that says so."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from test_cli_errors import cli, error_line


def _args(corpus, spiece: Path, out: Path, *extra: str) -> list:
    return ["pretrain", corpus, "--tokenizer", spiece, "--config", "tiny", "--output", out, "--batch-size", "4",
            "--max-steps", "2", "--heldout-docs", "1", "--eval-instances", "4", "--num-workers", "0", *extra]


@pytest.fixture
def corpus(tmp_path, shared_data) -> Path:
    text = (shared_data / "corpus" / "inaugural" / "1789-Washington.txt").read_text()
    path = tmp_path / "corpus.txt"
    path.write_text(text[:6000])
    return path


def test_tiny_config_pretrains_and_evaluates_with_default_length(capsys, corpus, spiece_path, tmp_path):
    out = tmp_path / "run"
    code, _, err = cli(capsys, *_args(corpus, spiece_path, out))
    assert code == 0, err
    assert json.loads((out / "pretraining_recipe.json").read_text())["max_seq_length"] == 64  # tiny: 64 positions
    code, stdout, err = cli(capsys, "evaluate-pretraining", out / "model", corpus, "--max-instances", "4")
    assert code == 0, err
    assert 0 <= json.loads(stdout)["masked_lm_accuracy"] <= 1


@pytest.mark.parametrize(
    "extra, message",
    [
        (["--batch-size", "0"], "--batch-size must be positive, got 0"),
        (["--max-steps", "0"], "--max-steps must be positive, got 0"),
        (["--max-seq-length", "100"], "--max-seq-length 100 exceeds the config's max_position_embeddings 64"),
        (["--batch-size", "6", "--grad-accumulation", "4"], "--batch-size 6 is not divisible by --grad-accumulation 4"),
    ],
)
def test_bad_settings_fail_before_the_corpus_is_prepared(capsys, corpus, spiece_path, tmp_path, extra, message):
    out = tmp_path / "run"
    code, _, err = cli(capsys, *_args(corpus, spiece_path, out, *extra))
    assert code == 2
    error_line(err, message)
    assert not (out / "corpus").exists()


def test_empty_and_binary_corpora_say_so(capsys, spiece_path, tmp_path):
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "a.txt").write_text("\n\n")
    code, _, err = cli(capsys, *_args(tmp_path / "empty", spiece_path, tmp_path / "r1"))
    assert code == 2
    error_line(err, "no text in", "every file is empty or blank")
    (tmp_path / "bin").mkdir()
    (tmp_path / "bin" / "b.txt").write_bytes(bytes(range(1, 256)) * 20)
    code, _, err = cli(capsys, *_args(tmp_path / "bin", spiece_path, tmp_path / "r2"))
    assert code == 2
    error_line(err, "b.txt: not a text file")


def test_a_failed_pretrain_can_be_retried_with_a_fallback_encoding(capsys, corpus, spiece_path, tmp_path):
    (corpus.parent / "latin1.txt").write_bytes("Caf\xe9 au lait, tr\xe8s bien.\n\nA second document.\n".encode("latin-1"))
    inputs = [corpus, corpus.parent / "latin1.txt"]
    out = tmp_path / "run"
    base = _args(inputs[0], spiece_path, out)
    base[1:2] = inputs
    code, _, err = cli(capsys, *base)
    assert code == 2
    error_line(err, "latin1.txt: line 1", "--fallback-encoding cp1252")
    code, _, err = cli(capsys, *base, "--fallback-encoding", "cp1252")
    assert code == 0, err
