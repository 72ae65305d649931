"""One cheap end-to-end fine-tuning run per task family, on real rows from ../shared/data: the loss falls.

Each run is ``finetune()`` from a tiny random ALBERT with the real 30k vocabulary (reader ->
features -> task head -> AdamW -> best checkpoint -> official metric), 30 steps on the same 8 real
examples, so the training loss must drop (the model memorises them). The Trainer logs the mean loss
of every 10 steps; the last window must be well below the first (measured: 0.15-0.41 of it, CPU
Zen 4; the bound is 0.6). The longer CLI runs
with evaluation round trips are in test_finetuning_run.py (slow).
"""

from __future__ import annotations

import csv
import dataclasses
import re
from pathlib import Path

import pytest

from albertkit.finetuning.run import finetune

STEPS, BATCH = 30, 8


@pytest.fixture(scope="module")
def tiny_base(tmp_path_factory, spiece_path) -> Path:
    import torch

    from albertkit import AlbertConfig, AlbertModel, AlbertTokenizer

    folder = tmp_path_factory.mktemp("base")
    config = dataclasses.replace(AlbertConfig.from_name("tiny"), vocab_size=30000, max_position_embeddings=512,
                                 classifier_dropout_prob=0.0)
    torch.manual_seed(0)
    AlbertModel(config).save_pretrained(str(folder))
    AlbertTokenizer.from_pretrained(spiece_path.parent).save_pretrained(folder)
    return folder


def _conll_from_real_text(path: Path, source: Path, sentences: int = BATCH) -> Path:
    """A CoNLL file (``word tag``) from real sentences; there is no CoNLL data in shared/data.

    Tags follow a rule, not an annotator: a run of capitalised words after the first word of a
    sentence is one entity (B-MISC I-MISC ...), everything else O. Learnable by memorising words.
    """
    text = " ".join(source.read_text(encoding="utf-8").split())
    rows = []
    for sentence in re.split(r"(?<=[.!?])\s+", text):
        words = re.findall(r"[A-Za-z]+(?:'[a-z]+)?|[0-9]+|[^\sA-Za-z0-9]", sentence)
        if not 6 <= len(words) <= 40:
            continue
        tags, inside = [], False
        for i, w in enumerate(words):
            entity = i > 0 and w[0].isupper() and w != "I"
            tags.append(("I-MISC" if inside else "B-MISC") if entity else "O")
            inside = entity
        if any(t != "O" for t in tags):
            rows.append("\n".join(f"{w} {t}" for w, t in zip(words, tags)))
        if len(rows) == sentences:
            break
    path.write_text("-DOCSTART- O\n\n" + "\n\n".join(rows) + "\n", encoding="utf-8")
    return path


def _window_losses(run: Path) -> list[float]:
    rows = list(csv.DictReader(open(run / "train_log.csv")))
    assert [int(r["step"]) for r in rows] == list(range(10, STEPS + 1, 10)), rows
    return [float(r["loss"]) for r in rows]


def _task_data(task: str, shared: Path, tmp: Path) -> dict:
    if task == "mrpc":  # GLUE sentence pair (the dev file starts with a BOM)
        return dict(train=shared / "glue/MRPC", eval=shared / "glue/MRPC")
    if task == "squad1":  # one file split by article: train on article 0, evaluate on article 1
        squad = shared / "squad/dev-v1.1.json"
        return dict(train=squad, train_articles="0:1", eval=squad, eval_articles="1:2", max_seq_length=192)
    if task == "squad2":  # answerable and unanswerable questions
        squad = shared / "squad/dev-v2.0.cs224n-subset.json"
        return dict(train=squad, train_articles="0:1", eval=squad, eval_articles="1:2", max_seq_length=192)
    if task == "race":  # 4-way multiple choice
        return dict(train=shared / "race/RACE/train", eval=shared / "race/RACE/dev", max_seq_length=128)
    if task == "ner":
        conll = _conll_from_real_text(tmp / "train.conll", shared / "corpus/inaugural/1861-Lincoln.txt")
        return dict(train=conll, eval=conll)
    raise AssertionError(task)


@pytest.mark.parametrize("task", ["mrpc", "squad1", "squad2", "race", "ner"])
def test_finetuning_loss_falls_on_real_rows(task, tiny_base, shared_data, tmp_path) -> None:
    out = tmp_path / task
    summary = finetune(
        task, tiny_base, output=out, **_task_data(task, shared_data, tmp_path),
        max_steps=STEPS, batch_size=BATCH, learning_rate=1e-2, warmup_steps=0,
        max_train_examples=BATCH, max_eval_examples=BATCH,
    )
    first, *_, last = _window_losses(out)
    assert last < 0.6 * first, (task, first, last)
    assert summary["max_steps"] == STEPS and summary["eval_results"]["examples"] > 0
    assert (out / "best" / "model.safetensors").is_file() and (out / "best" / "spiece.model").is_file()
