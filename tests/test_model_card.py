"""``albertkit card``: a model card rendered from fixture files (every number traced to its file), the
hand-written notes carried over, the shipped model's card up to date, and one-line CLI errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import albertkit
from test_pipelines_common import hf_checkpoint

SHIPPED = Path(albertkit.__file__).parent / "models" / "albert-mini-en"

NOTES = """---
license: mit
tags:
- test-tag
---
A model for the card test.

## Training

Trained by hand-written notes.

## What was tried

Nothing else.

## Licence

Extra licence words.
"""

BIAS = {
    "model": "m",
    "command": "albertkit bias m --crows-pairs crows.csv --summary m/bias_results.json",
    "probe": {
        "templates": ["{person} worked as a [MASK]."],
        "pairs": [["the man", "the woman"]],
        "top_k": 2,
        "results": [{"template": "{person} worked as a [MASK].", "a": "the man", "b": "the woman",
                     "sentence_a": "The man worked as a [MASK].", "sentence_b": "The woman worked as a [MASK].",
                     "top_a": [["carpenter", 0.0714], ["<unk>", 0.05]], "top_b": [["nurse", 0.0911], ["<unk>", 0.04]],
                     "only_a": ["carpenter"], "only_b": ["nurse"], "mass_shift": 0.2345}],
        "summary": [{"a": "the man", "b": "the woman", "mean_mass_shift": 0.2345, "only_a": {"carpenter": 1}, "only_b": {"nurse": 1}}],
    },
    "crows_pairs": {"file_name": "crows.csv", "limit": None, "pairs": 3, "metric_score": 66.67, "stereotype_score": 50.0,
                    "antistereotype_score": 100.0, "neutral": 0, "neutral_percent": 0.0,
                    "by_bias_type": {"gender": {"pairs": 2, "metric_score": 50.0}, "age": {"pairs": 1, "metric_score": 100.0}},
                    "masked_copies": 41, "seconds": 1.5, "device": "cpu", "threads": 2,
                    "caveat": "CAVEAT-TEXT", "attribution": "ATTRIBUTION-TEXT"},
}


@pytest.fixture(scope="module")
def folder(tmp_path_factory, spiece_path) -> Path:
    f = hf_checkpoint(tmp_path_factory.mktemp("card") / "my-model", spiece_path, "ForMaskedLM")
    t = f / "training"
    t.mkdir()
    (t / "pretraining_recipe.json").write_text(json.dumps({
        "train_documents": 1234, "heldout_documents": 56, "max_seq_length": 64, "short_seq_prob": 0.1, "masked_lm_prob": 0.15,
        "max_predictions_per_seq": 9, "max_ngram": 3,
        "training": {"max_steps": 777, "batch_size": 32, "lr": 0.005, "warmup_steps": 10, "weight_decay": 0.01, "optimizer": "lamb",
                     "max_grad_norm": 1.0, "bf16": True, "compile": False, "seed": 3}}))
    (t / "train_log.csv").write_text("step,loss,tokens_per_s\n20,9.5,1000\n40,8.25,3000\n60,7.125,2000\n")
    (t / "eval_log.csv").write_text("step,masked_lm_loss,masked_lm_accuracy,sentence_order_loss,sentence_order_accuracy,masked_tokens,instances\n"
                                    "250,6.8906,0.1034,0.6898,0.5518,17741,1024\n500,6.5,0.1234,0.66,0.6012,17741,1024\n")
    (t / "heldout_metrics.json").write_text(json.dumps({"masked_lm_loss": 6.152, "masked_lm_accuracy": 0.4321, "sentence_order_loss": 0.6,
                                                         "sentence_order_accuracy": 0.8771, "masked_tokens": 30528.0, "instances": 1773.0}))
    (f / "eval").mkdir()
    (f / "eval" / "eval_results.json").write_text(json.dumps({"task": "rte", "data": "glue/RTE", "examples": 277, "accuracy": 0.5776}))
    (f / "card_notes.md").write_text(NOTES, encoding="utf-8")
    return f


def test_card_from_fixture_files(folder, tmp_path):
    import transformers

    from albertkit.model_card.card import render_card

    extra = tmp_path / "squad.json"
    extra.write_text(json.dumps({"task": "squad1", "data": "squad/dev-v1.1.json", "examples": 1000, "exact_match": 12.5, "f1": 20.25}))
    card = render_card(folder, [extra])
    front, body = card.split("\n---\n", 1)
    assert front.splitlines()[0] == "---"
    assert "license: mit" in front and "- test-tag" in front and "pipeline_tag: fill-mask" in front
    assert "# my-model" in body and "A model for the card test." in body
    # configuration table, parameters counted by transformers on the same checkpoint
    params = transformers.AlbertForMaskedLM.from_pretrained(str(folder)).num_parameters()
    assert f"| parameters | {params:,} (tied decoder counted once) |" in body
    assert "| embedding size | 8 |" in body and "| hidden size | 16 |" in body and "| attention heads | 2 |" in body
    assert "| repeating layers | 2 (1 shared group(s) of 1 layer(s)) |" in body
    assert "30,000 pieces; lowercased" in body
    # training files
    assert "| documents | 1,234 for training, 56 held out |" in body
    assert "| steps x batch | 777 x 32 (accumulation 1) |" in body and "| precision | bf16 autocast |" in body
    assert "60: training loss 7.125; median 2,000 tokens/s" in body
    assert "| 250 | 6.891 | 10.3% | 0.690 | 55.2% | 1,024 |" in body
    # evaluation files found beside the model, and the one given
    assert "| `training/heldout_metrics.json` | 1,773 | 30,528 | 6.152 | 43.2% | 87.7% |" in body
    assert "| rte | `eval/eval_results.json` | `glue/RTE` | 277 | accuracy 0.5776 |" in body
    assert "exact_match 12.5, f1 20.25" in body
    # bias section absent until measured
    assert "Not measured yet" in body
    # hand-written notes: appended to the generated section of the same name, or sections of their own
    training = body.split("## Training", 1)[1].split("\n## ", 1)[0]
    assert "Trained by hand-written notes." in training and "| documents |" in training
    assert body.index("## What was tried") < body.index("## Licence")
    assert "## Licence\n\n`mit`" in body and "Extra licence words." in body
    assert body.count("## Licence") == 1


def test_card_bias_section(folder, tmp_path):
    import shutil

    from albertkit.model_card.card import render_card

    copy = tmp_path / "with-bias"
    shutil.copytree(folder, copy)
    (copy / "bias_results.json").write_text(json.dumps(BIAS))
    body = render_card(copy)
    section = body.split("## Limitations and bias", 1)[1].split("\n## ", 1)[0]
    assert "Measured with `albertkit bias m --crows-pairs crows.csv" in section
    assert "| 1 | `carpenter` | 0.071 | `nurse` | 0.091 |" in section
    assert "| 2 | `<unk>` | 0.050 | `<unk>` | 0.040 |" in section
    assert "| the man / the woman | 0.234 | `carpenter` (1) | `nurse` (1) |" in section
    assert "| all | 3 | 66.67 |" in section and "| gender | 2 | 50.00 |" in section and "| age | 1 | 100.00 |" in section
    assert "CAVEAT-TEXT" in section and "ATTRIBUTION-TEXT" in section
    assert "Not measured yet" not in body


def test_card_cli_writes_atomically_and_reports_bad_input(folder, tmp_path, capsys):
    from albertkit.cli import main

    out = tmp_path / "README.md"
    assert main(["card", str(folder), "--output", str(out)]) == 0
    assert out.read_text(encoding="utf-8").startswith("---\n")
    capsys.readouterr()
    assert main(["card", str(tmp_path), "--output", str(out)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "no config.json" in err[0] and str(tmp_path) in err[0]
    assert main(["card", str(folder), "--eval-results", str(tmp_path / "nope.json"), "--output", str(out)]) == 2
    assert "nope.json: no such evaluation-results file" in capsys.readouterr().err


def test_shipped_models_card_is_generated_from_its_files():
    """The shipped README.md is what `albertkit card` makes from the folder today; after new weights,
    logs or bias results, rerun scripts/make_model_card.sh."""
    from albertkit.model_card.card import render_card

    assert (SHIPPED / "bias_results.json").is_file()
    assert (SHIPPED / "README.md").read_text(encoding="utf-8") == render_card(SHIPPED)


def test_card_of_a_pretraining_runs_model_reads_the_run_folder(folder, tmp_path):
    """``albertkit pretrain --output RUN`` keeps its logs in RUN and the model in RUN/model."""
    import shutil

    from albertkit.model_card.card import render_card

    run = tmp_path / "run"
    shutil.copytree(folder, run / "model", ignore=shutil.ignore_patterns("training", "card_notes.md", "eval"))
    for name in ("pretraining_recipe.json", "train_log.csv", "eval_log.csv"):
        shutil.copy(folder / "training" / name, run / name)
    body = render_card(run / "model")
    assert "| documents | 1,234 for training, 56 held out |" in body and "`../eval_log.csv`" in body


def test_card_notes_directives_read_numbers_from_files(folder, tmp_path):
    """{{value}}, {{table}} and {{fill-mask}} in card_notes.md: a number lives in one file, the card quotes it."""
    import shutil

    from albertkit.model_card.card import CardError, render_card

    copy = tmp_path / "directives"
    shutil.copytree(folder, copy)
    t = copy / "training"
    (t / "acc.json").write_text(json.dumps({"mask_accuracy": 0.20923, "n": 17741, "probe": {"gap": 2.6231}}))
    (t / "curve.csv").write_text("step,tokens,acc,stage\n100,409600,0.0248,1\n200,819200,0.0534,1\n300,1228800,0.0551,2\n")
    (t / "fill.json").write_text(json.dumps({"inputs": ["A [MASK]."], "results": [[{"token_str": "dog", "score": 0.1234},
                                                                                  {"token_str": "<unk>", "score": 0.05}]]}))
    (copy / "card_notes.md").write_text(
        "Lead: **{{value training/acc.json mask_accuracy pct}}** of {{value training/acc.json n ,}}, "
        "gap {{value training/acc.json probe.gap .2f}}.\n\n## Curve\n\n{{table training/curve.csv every=200 step:, tokens:, acc:pct stage}}\n\n"
        "{{fill-mask training/fill.json}}\n", encoding="utf-8")
    body = render_card(copy)
    assert "Lead: **20.9%** of 17,741, gap 2.62." in body
    assert "| step | tokens | acc | stage |\n|---:|---:|---:|---:|\n| 200 | 819,200 | 5.3% | 1 |\n| 300 | 1,228,800 | 5.5% | 2 |\n" in body
    assert "| 100 |" not in body.split("## Curve", 1)[1]
    assert "| A [MASK]. | `dog` 0.123, `<unk>` 0.050 |" in body
    for notes, error in [("{{value training/acc.json nope pct}}", "no key 'nope'"),
                         ("{{table training/curve.csv nope}}", "no column 'nope'"),
                         ("{{table training/missing.csv}}", "no such file"),
                         ("{{value training/acc.json n %q}}", "bad format spec")]:
        (copy / "card_notes.md").write_text(notes, encoding="utf-8")
        with pytest.raises(CardError, match=error):
            render_card(copy)


def test_card_samples_a_long_eval_log_and_shows_mask_only_accuracy(folder, tmp_path):
    import shutil

    from albertkit.model_card.card import render_card

    copy = tmp_path / "long-log"
    shutil.copytree(folder, copy)
    rows = "".join(f"{100 * i},6.5,0.1,0.{i:02d},0.66,0.6,17741,1024\n" for i in range(1, 26))
    (copy / "training" / "eval_log.csv").write_text(
        "step,masked_lm_loss,masked_lm_accuracy,mask_only_accuracy,sentence_order_loss,sentence_order_accuracy,masked_tokens,instances\n" + rows)
    body = render_card(copy)
    table = body.split("eval_log.csv`", 1)[1].split("\n\n", 2)[1]
    steps = [line.split(" | ")[0].strip("| ") for line in table.splitlines()[2:]]
    assert steps == ["300", "600", "900", "1200", "1500", "1800", "2100", "2400", "2500"]  # one in 3, and the last
    assert "one row in 3 of 25 evaluations and the last" in body and "| 2500 | 6.500 | 10.0% | 25.0% | 0.660 | 60.0% | 1,024 |" in body
