"""One object per fine-tuning task: how it reads, encodes, scores and writes, and its model head.

``finetune()`` and ``evaluate()`` (:mod:`albertkit.finetuning.run`) run the same flow for every
task; what differs lives here, on the task object:

    read -> label_list -> encode -> model_class(head_config) -> ... -> score -> write

    >>> task = get_task("SST-2")
    >>> task.name, task.primary_metric, task.model_class_name
    ('sst2', 'accuracy', 'AlbertForSequenceClassification')
    >>> get_task("squad").primary_metric
    'f1'

Kinds: :class:`GlueTask` (the nine GLUE tasks, STS-B as regression), :class:`TableClassification`
and :class:`TableRegression` (your CSV / TSV / JSONL), :class:`NerTask` (CoNLL),
:class:`SquadTask` (v1.1, v2.0), :class:`RaceTask` (multiple choice).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from albertkit.finetuning import features as F
from albertkit.finetuning import metrics as M
from albertkit.finetuning import tasks as T
from albertkit.finetuning.readers import infer_label_list, read_conll, read_glue, read_race, read_squad, read_table
from albertkit.finetuning.squad import apply_null_threshold, postprocess_squad, squad_gold, write_squad_predictions
from albertkit.finetuning.writers import write_glue_predictions
from albertkit.utils import atomic_write_text

__all__ = [
    "TableColumns",
    "EvalData",
    "FinetuningTask",
    "GlueTask",
    "TableClassification",
    "TableRegression",
    "NerTask",
    "SquadTask",
    "RaceTask",
    "FINETUNING_TASKS",
    "get_task",
]


@dataclass
class TableColumns:
    """Column names for ``classification`` / ``regression`` tasks."""

    text: str = "text"
    text_pair: str | None = None
    label: str = "label"


@dataclass
class EvalData:
    """Examples + features of one split, and what the metrics need."""

    examples: list
    features: list[dict[str, Any]]


Labels = Sequence[str] | None  # a classifier's label names in id order; None for spans, choices, scores


class FinetuningTask:
    """What one task needs beyond the shared flow. Subclasses fill in the steps; the defaults
    here are a sentence classifier's."""

    name: str
    model_class_name = "AlbertForSequenceClassification"
    primary_metric = "accuracy"  # the metric that keeps the best checkpoint
    article_ranges = False  # whether a data file can be cut by article (SQuAD)

    @property
    def defaults(self) -> T.TaskDefaults:
        """ALBERT's recipe for the task (:data:`albertkit.finetuning.tasks.TASK_DEFAULTS`)."""
        return T.TASK_DEFAULTS[self.name]

    @property
    def model_class(self) -> type:
        import albertkit

        return getattr(albertkit, self.model_class_name)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.name!r})"

    # -- data ------------------------------------------------------------------------------
    def read(self, path: str | os.PathLike, split: str, columns: TableColumns, label_list: Labels,
             for_training: bool, articles: slice | None = None) -> list:
        """The examples of ``path`` (a file, or a GLUE task folder where ``split`` picks the file)."""
        if articles is not None and not self.article_ranges:
            raise ValueError(f"{self.name}: article ranges only apply to SQuAD files (squad1, squad2)")
        return self._read(path, split, columns, label_list, for_training, articles)

    def _read(self, path: str | os.PathLike, split: str, columns: TableColumns, label_list: Labels,
              for_training: bool, articles: slice | None) -> list:
        raise NotImplementedError

    def label_list(self, train_examples: list | None, model_config: Any | None) -> list[str] | None:
        """Label names in id order: the task's own, the fine-tuned model's, or those of the training data."""
        return None

    def encode(self, examples: list, tokenizer: Any, label_list: Labels, max_length: int,
               training: bool) -> list[dict[str, Any]]:
        raise NotImplementedError

    # -- the model head --------------------------------------------------------------------
    def head_config(self, label_list: Labels) -> dict[str, Any]:
        """Config overrides for a new head (``num_labels``, label names, problem type)."""
        return {}

    def check_head(self, config: Any, label_list: Labels, name: str) -> None:
        """Refuse a model fine-tuned for another label set (an SST-2 classifier scored on RTE)."""

    # -- results ---------------------------------------------------------------------------
    def score(self, data: EvalData, outputs: dict[str, list[np.ndarray]], label_list: Labels,
              null_threshold: float | None) -> tuple[dict[str, float], Any]:
        """Metrics (empty without gold labels) and predictions in the task's natural form."""
        raise NotImplementedError

    def write(self, folder: Path, data: EvalData, predictions: Any, label_list: Labels, source: Path) -> list[Path]:
        """Prediction files in the format graders read; the default is ``predictions.jsonl``."""
        lines = [json.dumps({"id": key, "prediction": value}, ensure_ascii=False)
                 for key, value in self._jsonl_rows(data, predictions, label_list)]
        atomic_write_text(folder / "predictions.jsonl", "\n".join(lines) + "\n")
        return [folder / "predictions.jsonl"]

    def _jsonl_rows(self, data: EvalData, predictions: Any, label_list: Labels) -> list[tuple[Any, Any]]:
        return [(ex.guid, pred) for ex, pred in zip(data.examples, predictions)]


# --------------------------------------------------------------------------- sentence classifiers
class TableClassification(FinetuningTask):
    """Your own labelled texts (CSV, TSV, JSONL); labels are named by the training data."""

    regression = False

    def __init__(self, name: str = "classification") -> None:
        self.name = name

    def _read(self, path: str | os.PathLike, split: str, columns: TableColumns, label_list: Labels,
              for_training: bool, articles: slice | None) -> list:
        return read_table(path, text_column=columns.text, text_pair_column=columns.text_pair,
                          label_column=columns.label, label_list=None if for_training else label_list,
                          regression=self.regression)

    def label_list(self, train_examples: list | None, model_config: Any | None) -> list[str] | None:
        if model_config is not None and getattr(model_config, "id2label", None) and train_examples is None:
            return [model_config.id2label[i] for i in range(len(model_config.id2label))]
        if train_examples is None:
            raise ValueError(f"{self.name}: the model has no id2label; fine-tune it with albertkit first")
        return infer_label_list(train_examples)

    def encode(self, examples: list, tokenizer: Any, label_list: Labels, max_length: int,
               training: bool) -> list[dict[str, Any]]:
        return F.encode_classification(examples, tokenizer, label_list=label_list, regression=self.regression,
                                       max_length=max_length)

    def _label_names(self, label_list: Sequence[str]) -> list[str]:
        return list(label_list)

    def head_config(self, label_list: Labels) -> dict[str, Any]:
        if label_list is None:  # regression
            return {"num_labels": 1, "problem_type": "regression", "id2label": None, "label2id": None}
        names = self._label_names(label_list)
        return {"num_labels": len(names), "id2label": dict(enumerate(names)),
                "label2id": {l: i for i, l in enumerate(names)}, **self._problem_type()}

    def _problem_type(self) -> dict[str, str]:
        return {"problem_type": "single_label_classification"}

    def _accepted_names(self, label_list: Labels) -> list[list[str]]:
        return [list(label_list or [])]

    def check_head(self, config: Any, label_list: Labels, name: str) -> None:
        want = 1 if label_list is None else len(label_list)
        if int(config.num_labels) != want:
            raise ValueError(
                f"{self.name} has {want} label(s) ({', '.join(label_list or ['a score'])}) but {name} was fine-tuned "
                f"with {config.num_labels}; evaluate it on the task it was fine-tuned for"
            )
        id2label = getattr(config, "id2label", None) or {}
        names = [id2label.get(i) for i in range(len(id2label))]
        generic = all(n is None or str(n).startswith("LABEL_") for n in names)  # transformers' placeholder names
        accepted = self._accepted_names(label_list)
        if label_list is not None and names and not generic and names not in accepted:
            raise ValueError(
                f"{self.name} labels are {accepted[-1]} but {name} was fine-tuned on labels {names}; "
                f"evaluate it on the task it was fine-tuned for"
            )

    def score(self, data: EvalData, outputs: dict[str, list[np.ndarray]], label_list: Labels,
              null_threshold: float | None) -> tuple[dict[str, float], Any]:
        logits = outputs["logits"]
        if label_list is None:
            preds: list = [float(l.reshape(-1)[0]) for l in logits]
        else:
            preds = [int(np.argmax(l)) for l in logits]
        if any("labels" not in f for f in data.features):
            return {}, preds
        return self._metrics(preds, [f["labels"] for f in data.features], label_list), preds

    def _metrics(self, preds: list, labels: list, label_list: Labels) -> dict[str, float]:
        if label_list is None:
            return {"pearson": M.pearson(preds, labels), "spearman": M.spearman(preds, labels)}
        result = {"accuracy": M.accuracy(preds, labels)}
        if len(label_list) == 2:
            result["f1"] = M.f1_binary(preds, labels)
        return result

    def _jsonl_rows(self, data: EvalData, predictions: Any, label_list: Labels) -> list[tuple[Any, Any]]:
        if label_list is None:
            return [(ex.guid, pred) for ex, pred in zip(data.examples, predictions)]
        return [(ex.guid, label_list[pred]) for ex, pred in zip(data.examples, predictions)]


class TableRegression(TableClassification):
    """Your own texts with a score to predict (mean squared error; Pearson and Spearman)."""

    regression = True
    primary_metric = "pearson"

    def __init__(self, name: str = "regression") -> None:
        self.name = name

    def label_list(self, train_examples: list | None, model_config: Any | None) -> list[str] | None:
        return None


class GlueTask(TableClassification):
    """A GLUE task: its TSV layout, label order and metrics come from :data:`tasks.GLUE_TASKS`."""

    def __init__(self, spec: T.GlueTask) -> None:
        self.name = spec.name
        self.spec = spec
        self.regression = spec.is_regression
        self.primary_metric = spec.metrics[0]

    def _read(self, path: str | os.PathLike, split: str, columns: TableColumns, label_list: Labels,
              for_training: bool, articles: slice | None) -> list:
        path = Path(path)
        if path.is_dir():
            name = self.spec.files.get(split)
            if name is None or not (path / name).is_file():
                raise FileNotFoundError(f"{path} has no {split} file ({name}) for {self.name}")
            path = path / name
        return read_glue(self.spec, path)

    def label_list(self, train_examples: list | None, model_config: Any | None) -> list[str] | None:
        return None if self.spec.labels is None else list(self.spec.labels)

    def _label_names(self, label_list: Sequence[str]) -> list[str]:
        return list(self.spec.display_labels or label_list)

    def _accepted_names(self, label_list: Labels) -> list[list[str]]:
        accepted = [list(label_list or [])]
        if self.spec.label_names:
            accepted.append(list(self.spec.label_names))  # albertkit names them; files and older runs say 0/1
        return accepted

    def _metrics(self, preds: list, labels: list, label_list: Labels) -> dict[str, float]:
        return M.glue_metrics(self.name, preds, labels)

    def write(self, folder: Path, data: EvalData, predictions: Any, label_list: Labels, source: Path) -> list[Path]:
        """The leaderboard TSV (``RTE.tsv``, ``MNLI-mm.tsv`` for the mismatched file, ...)."""
        stem = "MNLI-mm" if self.name == "mnli" and "mismatched" in source.name else self.spec.submission_name
        ids = [ex.guid.split("-", 1)[1] for ex in data.examples]
        write_glue_predictions(folder / f"{stem}.tsv", self.spec, predictions, ids=ids)
        return [folder / f"{stem}.tsv"]


# ----------------------------------------------------------------------------------- token tagging
class NerTask(TableClassification):
    """CoNLL-2003 named entities: BIO tags per word, scored by entity F1 as conlleval does."""

    primary_metric = "f1"
    model_class_name = "AlbertForTokenClassification"

    def __init__(self, name: str = "ner") -> None:
        self.name = name

    def _read(self, path: str | os.PathLike, split: str, columns: TableColumns, label_list: Labels,
              for_training: bool, articles: slice | None) -> list:
        return read_conll(path, label_list=None if for_training else label_list)

    def encode(self, examples: list, tokenizer: Any, label_list: Labels, max_length: int,
               training: bool) -> list[dict[str, Any]]:
        assert label_list is not None
        return F.encode_token_classification(examples, tokenizer, label_list=label_list, max_length=max_length)

    def _problem_type(self) -> dict[str, str]:
        return {}

    def score(self, data: EvalData, outputs: dict[str, list[np.ndarray]], label_list: Labels,
              null_threshold: float | None) -> tuple[dict[str, float], Any]:
        assert label_list is not None
        pred_tags, true_tags = [], []
        for ex, feat, lg in zip(data.examples, data.features, outputs["logits"]):
            words = ["O"] * len(ex.words)
            for pos, w in enumerate(feat["word_ids"]):
                if w >= 0:  # the first piece of each word carries its tag
                    words[w] = label_list[int(np.argmax(lg[pos]))]
            pred_tags.append(words)
            true_tags.append(ex.labels)
        if any(t is None for t in true_tags):
            return {}, pred_tags
        return M.entity_scores(pred_tags, true_tags), pred_tags

    def _jsonl_rows(self, data: EvalData, predictions: Any, label_list: Labels) -> list[tuple[Any, Any]]:
        return [(ex.guid, pred) for ex, pred in zip(data.examples, predictions)]


# ------------------------------------------------------------------------------ spans and choices
class SquadTask(FinetuningTask):
    """SQuAD v1.1 / v2.0 extractive QA: sliding windows, n-best spans, the official scripts' scores."""

    model_class_name = "AlbertForQuestionAnswering"
    primary_metric = "f1"
    article_ranges = True

    def __init__(self, name: str, version_2: bool) -> None:
        self.name = name
        self.version_2 = version_2

    def _read(self, path: str | os.PathLike, split: str, columns: TableColumns, label_list: Labels,
              for_training: bool, articles: slice | None) -> list:
        # Training needs answer offsets that match the context; evaluation scores texts only, as the official scripts.
        return read_squad(path, on_bad_answer="skip" if for_training else "keep", articles=articles)

    def encode(self, examples: list, tokenizer: Any, label_list: Labels, max_length: int,
               training: bool) -> list[dict[str, Any]]:
        return F.encode_squad(examples, tokenizer, max_length=max_length, training=training)

    def score(self, data: EvalData, outputs: dict[str, list[np.ndarray]], label_list: Labels,
              null_threshold: float | None) -> tuple[dict[str, float], Any]:
        threshold = 0.0 if null_threshold is None else null_threshold
        result = postprocess_squad(data.examples, data.features, outputs["start_logits"], outputs["end_logits"],
                                   version_2=self.version_2, null_threshold=threshold)
        gold = squad_gold(data.examples)
        if not self.version_2:
            return M.squad_v1_scores(gold, result.predictions), result
        scores = M.squad_v2_scores(gold, result.best_spans, result.null_score_diff, threshold)
        if null_threshold is None:
            # No fixed threshold: the official best-F1 search on this data, and say so. Null score
            # differences can be negative, so "all unanswered" must sit below every difference.
            _, f1_raw = M._v2_raw_scores(gold, result.best_spans)
            floor = min(result.null_score_diff.values()) - 1.0
            best_f1, chosen = M.best_null_threshold(gold, result.best_spans, f1_raw, result.null_score_diff,
                                                    initial_threshold=floor)
            scores.update(best_f1=best_f1, best_f1_thresh=chosen)
            result = apply_null_threshold(result, chosen)
            scores.update(M.squad_v2_scores(gold, result.predictions))
            for stale in ("best_exact", "best_exact_thresh"):
                scores.pop(stale, None)
            scores.update(null_threshold=chosen, null_threshold_source="best F1 threshold chosen on this evaluation data")
        else:
            scores.update(M.squad_v2_scores(gold, result.predictions))
            scores.update(null_threshold=null_threshold, null_threshold_source="fixed")
        return scores, result

    def write(self, folder: Path, data: EvalData, predictions: Any, label_list: Labels, source: Path) -> list[Path]:
        """``predictions.json``, ``null_odds.json`` (v2) and ``nbest_predictions.json``, as run_squad writes."""
        written = [folder / "predictions.json"]
        write_squad_predictions(folder / "predictions.json", predictions.predictions)
        if predictions.null_score_diff:
            write_squad_predictions(folder / "null_odds.json", predictions.null_score_diff)
            written.append(folder / "null_odds.json")
        write_squad_predictions(folder / "nbest_predictions.json", predictions.nbest)
        written.append(folder / "nbest_predictions.json")
        return written


class RaceTask(FinetuningTask):
    """RACE reading comprehension: four options per question, one softmax over them."""

    model_class_name = "AlbertForMultipleChoice"

    def __init__(self, name: str = "race") -> None:
        self.name = name

    def _read(self, path: str | os.PathLike, split: str, columns: TableColumns, label_list: Labels,
              for_training: bool, articles: slice | None) -> list:
        return read_race(path)

    def encode(self, examples: list, tokenizer: Any, label_list: Labels, max_length: int,
               training: bool) -> list[dict[str, Any]]:
        return F.encode_multiple_choice(examples, tokenizer, max_length=max_length)

    def score(self, data: EvalData, outputs: dict[str, list[np.ndarray]], label_list: Labels,
              null_threshold: float | None) -> tuple[dict[str, float], Any]:
        preds = [int(np.argmax(l)) for l in outputs["logits"]]
        labels = [ex.label for ex in data.examples]
        if any(l is None for l in labels):
            return {}, preds
        return M.race_accuracy(preds, labels, [ex.level for ex in data.examples]), preds

    def _jsonl_rows(self, data: EvalData, predictions: Any, label_list: Labels) -> list[tuple[Any, Any]]:
        return [(ex.qid, "ABCD"[pred]) for ex, pred in zip(data.examples, predictions)]


FINETUNING_TASKS: dict[str, FinetuningTask] = {
    **{name: GlueTask(spec) for name, spec in T.GLUE_TASKS.items()},
    "squad1": SquadTask("squad1", version_2=False),
    "squad2": SquadTask("squad2", version_2=True),
    "race": RaceTask(),
    "ner": NerTask(),
    "classification": TableClassification(),
    "regression": TableRegression(),
}

# Names users type -> task key (after lower-casing and dropping "-" / "_").
_ALIASES = {"squad": "squad1", "squadv1": "squad1", "squad11": "squad1", "squadv2": "squad2", "squad20": "squad2",
            "conll": "ner", "mnlim": "mnli", "mnlimm": "mnli"}


def task_key(task: str) -> str:
    """The canonical name of ``task`` (``"SQuAD-v2"`` -> ``"squad2"``, ``"SST-2"`` -> ``"sst2"``)."""
    key = task.strip().lower().replace("-", "").replace("_", "")
    key = _ALIASES.get(key, key)
    if key not in FINETUNING_TASKS:
        raise ValueError(f"unknown task {task!r}; known: {', '.join(FINETUNING_TASKS)}")
    return key


def get_task(task: str | FinetuningTask) -> FinetuningTask:
    """The task object for a name users type (``"rte"``, ``"SQuAD"``, ``"conll"``, ...)."""
    return task if isinstance(task, FinetuningTask) else FINETUNING_TASKS[task_key(task)]
