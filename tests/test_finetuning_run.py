"""finetune() / evaluate() and the CLI end to end on real data slices with a tiny random model."""

from __future__ import annotations

import json

import pytest

from albertkit.cli import main
from albertkit.finetuning.kinds import task_key
from albertkit.finetuning.metrics import bio_spans
from albertkit.finetuning.run import check_article_split, finetune, primary_metric


def test_task_names_and_primary_metrics():
    assert task_key("SST-2") == "sst2" and task_key("squad") == "squad1" and task_key("SQuAD_v2") == "squad2"
    assert [primary_metric(t) for t in ("cola", "mrpc", "stsb", "rte", "squad2", "race")] == [
        "matthews_correlation", "f1", "pearson", "accuracy", "f1", "accuracy"]
    with pytest.raises(ValueError, match="unknown task"):
        task_key("imagenet")


def test_cli_registers_finetune_and_evaluate():
    import argparse

    from albertkit.cli import COMMAND_MODULES
    from albertkit.finetuning import commands

    assert "albertkit.finetuning.commands" in COMMAND_MODULES
    parser = argparse.ArgumentParser()
    commands.register(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["finetune", "sst2", "--model", "m", "--train", "t", "--output", "o", "--lr", "2e-5"])
    assert (args.task, args.learning_rate, args.max_steps, args.func.__name__) == ("sst2", 2e-5, None, "_finetune")
    args = parser.parse_args(["evaluate", "squad2", "--model", "m", "--data", "d", "--null-threshold", "-1.5"])
    assert args.null_threshold == -1.5 and args.func.__name__ == "_evaluate" and args.articles is None
    args = parser.parse_args(["finetune", "squad1", "--model", "m", "--train", "d.json", "--train-articles", "0:24",
                              "--eval", "d.json", "--eval-articles", "24:48", "--output", "o"])
    assert (args.train_articles, args.eval_articles) == ("0:24", "24:48")


def test_overlapping_squad_article_ranges_are_refused(shared_data, tmp_path):
    path = shared_data / "squad/dev-v1.1.json"
    check_article_split(path, "0:24", path, "24:48")
    check_article_split(path, "0:24", shared_data / "squad/dev-v2.0.cs224n-subset.json", None)  # other file
    with pytest.raises(ValueError, match=r"train articles 0:30 and eval articles 24:48 overlap \(articles 24\.\.29\)"):
        check_article_split(path, "0:30", path, "24:")
    with pytest.raises(ValueError, match=r"train articles 0:48 and eval articles 47:48 overlap .* --train-articles 0:24"):
        check_article_split(path, None, path, "47:48")
    with pytest.raises(ValueError, match="overlap"):  # finetune() checks before loading anything
        finetune("squad1", tmp_path / "no-model", train=path, eval=path, output=tmp_path / "o")
    with pytest.raises(ValueError, match="article ranges only apply to SQuAD"):
        finetune("rte", tmp_path / "no-model", train=shared_data / "glue/RTE", train_articles="0:2", output=tmp_path / "o",
                 tokenizer=_Unused())


class _Unused:
    """A tokenizer stand-in for calls that must fail before tokenizing."""


def test_bio_chunks_like_conlleval():
    tags = ["B-PER", "I-PER", "O", "I-LOC", "I-LOC", "B-LOC", "I-ORG", "O"]
    assert bio_spans(tags) == {("PER", 0, 2), ("LOC", 3, 5), ("LOC", 5, 6), ("ORG", 6, 7)}


@pytest.mark.slow
def test_cli_finetune_then_evaluate_rte(tiny_base, shared_data, tmp_path, capsys):
    out = tmp_path / "rte"
    rc = main(["-q", "finetune", "rte", "--model", str(tiny_base), "--train", str(shared_data / "glue/RTE"),
               "--eval", str(shared_data / "glue/RTE"), "--output", str(out), "--max-steps", "2", "--batch-size", "4",
               "--max-train-examples", "16", "--max-eval-examples", "24"])
    assert rc == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["learning_rate"] == 3e-5 and summary["max_steps"] == 2  # recipe lr, overridden steps
    assert summary["eval_results"]["examples"] == 24 and 0 <= summary["eval_results"]["accuracy"] <= 1
    assert (out / "best" / "spiece.model").is_file() and (out / "RTE.tsv").read_text().startswith("index\tprediction\n0\t")
    rc = main(["-q", "evaluate", "rte", "--model", str(out / "best"), "--data", str(shared_data / "glue/RTE/dev.tsv"),
               "--max-examples", "24"])
    assert rc == 0
    assert json.loads(capsys.readouterr().out)["accuracy"] == summary["eval_results"]["accuracy"]


@pytest.mark.slow
def test_finetune_ner_and_jsonl_classification(tiny_base, tmp_path):
    from albertkit.finetuning.run import evaluate, finetune

    conll = "-DOCSTART- -X- O\n\nEU B-ORG\nrejects O\nGerman B-MISC\ncall O\n\nPeter B-PER\nBlackburn I-PER\n\n"
    (tmp_path / "train.conll").write_text(conll * 4)
    s = finetune("ner", tiny_base, train=tmp_path / "train.conll", eval=tmp_path / "train.conll",
                 output=tmp_path / "ner", max_steps=2, batch_size=4)
    assert set(s["eval_results"]) >= {"f1", "precision", "recall", "accuracy"}
    again = evaluate("ner", tmp_path / "ner" / "best", tmp_path / "train.conll")
    assert again["f1"] == s["eval_results"]["f1"]
    rows = [{"review": f"text number {i}", "stars": ["good", "bad"][i % 2]} for i in range(12)]
    (tmp_path / "r.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    from albertkit.finetuning.run import TableColumns

    s = finetune("classification", tiny_base, train=tmp_path / "r.jsonl", eval=tmp_path / "r.jsonl",
                 output=tmp_path / "cls", max_steps=2, batch_size=4, columns=TableColumns("review", None, "stars"))
    assert {"accuracy", "f1"} <= set(s["eval_results"])
    lines = (tmp_path / "cls" / "predictions.jsonl").read_text().splitlines()
    assert len(lines) == 12 and json.loads(lines[0])["prediction"] in ("good", "bad")


@pytest.mark.slow
def test_bad_input_is_one_line_cli_error(tiny_base, tmp_path, capsys):
    (tmp_path / "dev.tsv").write_text("index\tsentence1\tlabel\n0\ta\tentailment\n")
    # finetune reads its data before loading the model (evaluate would first refuse the untrained head)
    rc = main(["-q", "finetune", "rte", "--model", str(tiny_base), "--train", str(tmp_path / "dev.tsv"),
               "--output", str(tmp_path / "out")])
    assert rc == 2
    assert "dev.tsv:1: missing text pair column 'sentence2'" in capsys.readouterr().err


@pytest.mark.slow
def test_finetune_squad_on_half_the_articles_and_evaluate_the_other(tiny_base, shared_data, tmp_path, capsys):
    squad = shared_data / "squad/dev-v1.1.json"
    out = tmp_path / "squad"
    rc = main(["-q", "finetune", "squad1", "--model", str(tiny_base), "--train", str(squad), "--train-articles", "0:24",
               "--eval", str(squad), "--eval-articles", "24:48", "--output", str(out), "--max-steps", "2",
               "--batch-size", "4", "--max-seq-length", "192", "--max-train-examples", "8", "--max-eval-examples", "12"])
    assert rc == 0
    summary = json.loads(capsys.readouterr().out)
    split = json.loads((out / "data_split.json").read_text())
    assert split == summary["data_split"]
    assert (split["train"]["articles"], split["eval"]["articles"], split["eval"]["articles_in_file"]) == ("0:24", "24:48", 48)
    assert split["train"]["titles"] == ["Super_Bowl_50"] and split["eval"]["titles"] == ["American_Broadcasting_Company"]
    assert summary["eval_results"]["articles"] == "24:48" and summary["eval_results"]["examples"] == 12
    raw = json.loads(squad.read_text())["data"][24]["paragraphs"]
    eval_ids = [qa["id"] for p in raw for qa in p["qas"]][:12]
    assert list(json.loads((out / "predictions.json").read_text())) == eval_ids
    rc = main(["-q", "evaluate", "squad1", "--model", str(out / "best"), "--data", str(squad), "--articles", "24:48",
               "--max-examples", "12", "--max-seq-length", "192"])
    assert rc == 0
    again = json.loads(capsys.readouterr().out)
    assert (again["exact_match"], again["f1"]) == (summary["eval_results"]["exact_match"], summary["eval_results"]["f1"])


@pytest.mark.parametrize("task", ["rte", "squad1"])
def test_pretraining_checkpoint_loads_with_a_new_task_head(tmp_path, tiny_config, task):
    # What `albertkit pretrain` writes (MLM + SOP heads) must fine-tune: backbone kept, other heads
    # dropped, task head new -- as transformers' from_pretrained does.
    import torch

    from albertkit import AlbertForPreTraining
    from albertkit.finetuning.kinds import get_task
    from albertkit.finetuning.run import _load_model

    torch.manual_seed(0)
    pre = AlbertForPreTraining(tiny_config)
    pre.save_pretrained(str(tmp_path / "pre"))
    model = _load_model(task, tmp_path / "pre", get_task(task).head_config(["entailment", "not_entailment"] if task == "rte" else None))
    assert type(model).__name__ == ("AlbertForSequenceClassification" if task == "rte" else "AlbertForQuestionAnswering")
    theirs = pre.state_dict()
    for key, value in model.albert.state_dict().items():
        assert torch.equal(value, theirs["albert." + key]), key
    assert not any(k.startswith(("predictions.", "sop_classifier.")) for k in model.state_dict())


def test_every_task_object_names_its_recipe_head_and_metric():
    import albertkit
    from albertkit.finetuning.kinds import FINETUNING_TASKS, TableColumns, get_task
    from albertkit.finetuning.run import TASKS
    from albertkit.finetuning.tasks import GLUE_TASKS, TASK_DEFAULTS

    assert set(TASKS) == set(TASK_DEFAULTS) == set(FINETUNING_TASKS)
    for name, task in FINETUNING_TASKS.items():
        assert task.name == name and get_task(task) is task and task.defaults is TASK_DEFAULTS[name]
        assert issubclass(task.model_class, albertkit.AlbertPreTrainedModel)
    assert {n: get_task(n).model_class.__name__ for n in ("squad2", "race", "ner", "regression")} == {
        "squad2": "AlbertForQuestionAnswering", "race": "AlbertForMultipleChoice",
        "ner": "AlbertForTokenClassification", "regression": "AlbertForSequenceClassification"}
    assert get_task("stsb").head_config(get_task("stsb").label_list(None, None))["problem_type"] == "regression"
    assert get_task("mnli").head_config(list(GLUE_TASKS["mnli"].labels))["id2label"][2] == "neutral"
    with pytest.raises(ValueError, match="rte: article ranges only apply to SQuAD files"):
        get_task("rte").read("unused", "dev", TableColumns(), None, False, articles=slice(0, 2))
