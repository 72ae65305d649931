"""Fine-tuning as a newcomer meets it (issue 19): ``--seed`` makes runs reproducible (item 12), an
interrupted run leaves a usable ``best/`` (item 5), the sequence length follows the model and is
remembered (item 6), and empty or zero settings are refused instead of silently replaced (items 4, 10)."""

from __future__ import annotations

import csv
import json

import pytest

from test_cli_errors import cli, error_line


def _losses(folder):
    with open(folder / "train_log.csv", newline="") as fh:
        return [row["loss"] for row in csv.DictReader(fh)]


def test_two_identical_finetune_runs_are_identical(tiny_base, shared_data, tmp_path):
    import torch
    from safetensors.torch import load_file

    from albertkit.finetuning.run import finetune

    runs = []
    for k, noise in enumerate((1, 2)):
        torch.manual_seed(noise)  # a different global RNG state before each run must not matter
        torch.rand(noise)
        out = tmp_path / f"run{k}"
        finetune("rte", tiny_base, train=shared_data / "glue/RTE", output=out, max_steps=4, batch_size=4,
                 max_train_examples=16, max_seq_length=64, seed=7)
        runs.append((_losses(out), load_file(out / "model" / "model.safetensors")))
    (losses_a, weights_a), (losses_b, weights_b) = runs
    assert losses_a and losses_a == losses_b
    assert weights_a.keys() == weights_b.keys()
    for key in weights_a:
        assert torch.equal(weights_a[key], weights_b[key]), key


def test_an_interrupted_finetune_leaves_a_usable_best(tiny_base, shared_data, tmp_path, capsys, monkeypatch):
    from albertkit.finetuning.run import evaluate, finetune
    from albertkit.training import Trainer

    save = Trainer._save_model

    def save_then_interrupt(self, folder):
        save(self, folder)
        if folder.name == "best":
            raise KeyboardInterrupt  # Ctrl-C right after the first best model is written

    monkeypatch.setattr(Trainer, "_save_model", save_then_interrupt)
    out = tmp_path / "rte"
    with pytest.raises(KeyboardInterrupt):
        finetune("rte", tiny_base, train=shared_data / "glue/RTE", eval=shared_data / "glue/RTE", output=out,
                 max_steps=6, eval_every=2, batch_size=4, max_train_examples=16, max_eval_examples=8, max_seq_length=48)
    best = out / "best"
    assert (best / "spiece.model").is_file()
    assert json.loads((best / "finetuning.json").read_text()) == {
        "task": "rte", "max_seq_length": 48, "labels": ["entailment", "not_entailment"]}
    code, stdout, err = cli(capsys, "classify", "A man plays.", "--model", best)
    assert code == 0, err
    assert json.loads(stdout)["label"] in ("entailment", "not_entailment")
    # evaluate reuses the length fine-tuning used (48), not the recipe's 128.
    import albertkit.finetuning.features as features

    lengths = []
    encode = features.encode_classification
    monkeypatch.setattr(features, "encode_classification", lambda *a, **k: lengths.append(k["max_length"]) or encode(*a, **k))
    evaluate("rte", best, shared_data / "glue/RTE", max_examples=4)
    assert lengths == [48]


def test_sequence_length_defaults_to_the_models_positions(tmp_path):
    from albertkit.finetuning.run import _sequence_length

    assert _sequence_length("rte", None, 64, None) == 64  # recipe 128, a 64-position model
    assert _sequence_length("squad1", None, 512, None) == 384
    with pytest.raises(ValueError, match=r"--max-seq-length 100 exceeds the model's max_position_embeddings \(64\)"):
        _sequence_length("rte", 100, 64, None)


@pytest.mark.parametrize(
    "flags, message",
    [
        (["--batch-size", "0"], "--batch-size must be positive, got 0"),
        (["--epochs", "0"], "--epochs must be positive, got 0.0"),
        (["--epochs", "inf"], "--epochs must be a finite number, got inf"),
        (["--max-steps", "-1"], "--max-steps must be positive, got -1"),
        (["--lr", "0"], "--learning-rate must be positive, got 0.0"),
        (["--max-seq-length", "100000"], "--max-seq-length 100000 exceeds the model's max_position_embeddings (512)"),
    ],
)
def test_finetune_refuses_zero_and_impossible_settings(tiny_base, shared_data, tmp_path, capsys, flags, message):
    code, _, err = cli(capsys, "finetune", "rte", "--model", tiny_base, "--train", shared_data / "glue/RTE",
                       "--output", tmp_path / "o", *flags)
    assert code == 2
    error_line(err, message)
    assert not (tmp_path / "o").exists()


def test_empty_evaluation_file_is_one_line(tiny_base, shared_data, tmp_path, capsys):
    (tmp_path / "dev.tsv").write_text("index\tsentence1\tsentence2\tlabel\n")
    code, _, err = cli(capsys, "finetune", "rte", "--model", tiny_base, "--train", shared_data / "glue/RTE",
                       "--eval", tmp_path / "dev.tsv", "--output", tmp_path / "o", "--max-steps", "1",
                       "--max-train-examples", "4")
    assert code == 2
    error_line(err, "dev.tsv: no evaluation examples")


def test_binary_glue_labels_have_names():
    from types import SimpleNamespace

    from albertkit.finetuning.kinds import get_task

    sst2 = get_task("sst2")
    head = sst2.head_config(["0", "1"])
    assert head["id2label"] == {0: "negative", 1: "positive"} and head["label2id"] == {"negative": 0, "positive": 1}
    for names in (["negative", "positive"], ["0", "1"], ["LABEL_0", "LABEL_1"]):  # ours, older runs, transformers'
        sst2.check_head(SimpleNamespace(num_labels=2, id2label=dict(enumerate(names))), ["0", "1"], "m")
    with pytest.raises(ValueError, match=r"sst2 labels are \['negative', 'positive'\] but m was fine-tuned on labels"):
        sst2.check_head(SimpleNamespace(num_labels=2, id2label={0: "entailment", 1: "not_entailment"}), ["0", "1"], "m")


def test_summary_loss_is_the_logged_loss(tiny_base, shared_data, tmp_path):
    from albertkit.finetuning.run import finetune

    summary = finetune("rte", tiny_base, train=shared_data / "glue/RTE", output=tmp_path / "o", max_steps=3,
                       batch_size=2, max_train_examples=8, max_seq_length=32)
    assert f"{summary['loss']:.6g}" == f"{float(_losses(tmp_path / 'o')[-1]):.6g}"
