"""``finetune()`` and ``evaluate()``: one call per task, from a checkpoint to official metrics.

Tasks: the GLUE names (``cola sst2 mrpc stsb qqp mnli qnli rte wnli``), ``squad1``, ``squad2``,
``race``, ``ner`` (CoNLL files) and ``classification`` / ``regression`` (CSV / TSV / JSONL).
Defaults are ALBERT's recipe per task (:data:`albertkit.finetuning.tasks.TASK_DEFAULTS`); every
one can be overridden.

    >>> summary = finetune("rte", "albert-base-v2", train="glue/RTE", eval="glue/RTE", output="runs/rte")  # doctest: +SKIP
    >>> evaluate("rte", "runs/rte/best", "glue/RTE/dev.tsv")["accuracy"]                                 # doctest: +SKIP

Outputs of ``finetune``: the Trainer's layout (``best/``, ``model/``, ``checkpoints/``, logs), the
tokenizer saved beside the weights, and ``eval_results.json`` + prediction files from the best
model. SQuAD v2's null threshold is either given (fixed) or chosen on the evaluation data; the
results say which (``null_threshold_source``).
"""

from __future__ import annotations

import json
import logging
import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Sequence

import numpy as np

from albertkit.finetuning import features as F
from albertkit.finetuning import metrics as M
from albertkit.finetuning.readers import (
    _article_indices,
    infer_label_list,
    parse_article_range,
    read_conll,
    read_glue,
    read_race,
    read_squad,
    read_table,
    squad_article_count,
)
from albertkit.finetuning.squad import apply_null_threshold, postprocess_squad, squad_gold, write_squad_predictions
from albertkit.finetuning.tasks import GLUE_TASKS, TASK_DEFAULTS, get_glue_task
from albertkit.finetuning.writers import write_glue_predictions
from albertkit.utils import atomic_write_text, check_positive

if TYPE_CHECKING:
    from albertkit.checkpoint import ResolvedCheckpoint

__all__ = ["TASKS", "finetune", "evaluate", "primary_metric", "check_article_split"]

logger = logging.getLogger(__name__)

TASKS = (*GLUE_TASKS, "squad1", "squad2", "race", "ner", "classification", "regression")


def _task_key(task: str) -> str:
    key = task.strip().lower().replace("-", "").replace("_", "")
    key = {"squad": "squad1", "squadv1": "squad1", "squad11": "squad1", "squadv2": "squad2", "squad20": "squad2",
           "conll": "ner", "mnlim": "mnli", "mnlimm": "mnli"}.get(key, key)
    if key not in TASKS:
        raise ValueError(f"unknown task {task!r}; known: {', '.join(TASKS)}")
    return key


def primary_metric(task: str) -> str:
    """The metric used to keep the best checkpoint: GLUE's first metric (MCC for CoLA, F1 for
    MRPC/QQP, Pearson for STS-B), SQuAD F1, RACE accuracy, NER entity F1."""
    key = _task_key(task)
    if key in GLUE_TASKS:
        return GLUE_TASKS[key].metrics[0]
    return {"squad1": "f1", "squad2": "f1", "race": "accuracy", "ner": "f1", "classification": "accuracy",
            "regression": "pearson"}[key]


@dataclass
class _Data:
    """Examples + features of one split, and what the metrics need."""

    examples: list
    features: list[dict[str, Any]]


@dataclass
class TableColumns:
    """Column names for ``classification`` / ``regression`` tasks."""

    text: str = "text"
    text_pair: str | None = None
    label: str = "label"


def _glue_file(task: str, path: str | os.PathLike, split: str) -> Path:
    path = Path(path)
    if path.is_dir():
        name = get_glue_task(task).files.get(split)
        if name is None or not (path / name).is_file():
            raise FileNotFoundError(f"{path} has no {split} file ({name}) for {task}")
        return path / name
    return path


def _read(task: str, path: str | os.PathLike, split: str, columns: TableColumns, label_list: Sequence[str] | None,
          for_training: bool, articles: slice | None = None) -> list:
    if articles is not None and task not in ("squad1", "squad2"):
        raise ValueError(f"{task}: article ranges only apply to SQuAD files (squad1, squad2)")
    if task in GLUE_TASKS:
        return read_glue(task, _glue_file(task, path, split))
    if task in ("squad1", "squad2"):
        # Training needs answer offsets that match the context; evaluation scores texts only, as the official scripts.
        return read_squad(path, on_bad_answer="skip" if for_training else "keep", articles=articles)
    if task == "race":
        return read_race(path)
    if task == "ner":
        return read_conll(path, label_list=None if for_training else label_list)
    return read_table(path, text_column=columns.text, text_pair_column=columns.text_pair, label_column=columns.label,
                      label_list=None if for_training else label_list, regression=task == "regression")


def _range_text(indices: range) -> str:
    return f"{indices.start}:{indices.stop}"


def _same_file(a: str | os.PathLike, b: str | os.PathLike) -> bool:
    try:
        return os.path.samefile(a, b)
    except OSError:
        return Path(a).resolve() == Path(b).resolve()


def check_article_split(
    train: str | os.PathLike,
    train_articles: str | slice | None,
    eval: str | os.PathLike,
    eval_articles: str | slice | None,
) -> None:
    """Refuse to evaluate SQuAD on articles that were trained on: when ``train`` and ``eval`` are
    the same file, their article ranges must not overlap (no range means every article).

        >>> check_article_split("dev-v1.1.json", "0:24", "dev-v1.1.json", "24:48")   # doctest: +SKIP
        >>> check_article_split("dev-v1.1.json", "0:30", "dev-v1.1.json", "24:48")   # doctest: +SKIP
        Traceback (most recent call last):
        ValueError: dev-v1.1.json: train articles 0:30 and eval articles 24:48 overlap (articles 24..29) ...
    """
    if not _same_file(train, eval):
        return
    count = squad_article_count(train)
    a = _article_indices(Path(train), count, parse_article_range(train_articles))
    b = _article_indices(Path(eval), count, parse_article_range(eval_articles))
    common = sorted(set(a) & set(b))
    if common:
        raise ValueError(
            f"{train}: train articles {_range_text(a)} and eval articles {_range_text(b)} overlap "
            f"(articles {common[0]}..{common[-1]}); scores on trained-on articles mean nothing. "
            f"Split the file by article, e.g. --train-articles 0:{count // 2} --eval-articles {count // 2}:{count}"
        )


def _split_record(path: str | os.PathLike, articles: slice | None, examples: list) -> dict[str, Any]:
    """What a SQuAD run read from one file: the article range, their titles and the question count."""
    count = squad_article_count(path)
    indices = _article_indices(Path(path), count, articles)
    titles = list(dict.fromkeys(ex.title for ex in examples))
    return {"file": str(path), "articles": _range_text(indices), "articles_in_file": count,
            "titles": titles, "questions": len(examples)}


def _label_list(task: str, train_examples: list | None, model_config: Any | None) -> list[str] | None:
    if task in GLUE_TASKS:
        labels = GLUE_TASKS[task].labels
        return None if labels is None else list(labels)
    if task in ("classification", "ner"):
        if model_config is not None and getattr(model_config, "id2label", None) and train_examples is None:
            return [model_config.id2label[i] for i in range(len(model_config.id2label))]
        if train_examples is None:
            raise ValueError(f"{task}: the model has no id2label; fine-tune it with albertkit first")
        return infer_label_list(train_examples)
    return None


def _encode(task: str, examples: list, tokenizer: Any, label_list: Sequence[str] | None, max_length: int,
            training: bool) -> list[dict[str, Any]]:
    if task in GLUE_TASKS or task in ("classification", "regression"):
        regression = task == "regression" or (task in GLUE_TASKS and GLUE_TASKS[task].is_regression)
        return F.encode_classification(examples, tokenizer, label_list=label_list, regression=regression, max_length=max_length)
    if task in ("squad1", "squad2"):
        return F.encode_squad(examples, tokenizer, max_length=max_length, training=training)
    if task == "race":
        return F.encode_multiple_choice(examples, tokenizer, max_length=max_length)
    assert label_list is not None
    return F.encode_token_classification(examples, tokenizer, label_list=label_list, max_length=max_length)


def _model_class(task: str) -> Any:
    import albertkit

    if task in ("squad1", "squad2"):
        return albertkit.AlbertForQuestionAnswering
    if task == "race":
        return albertkit.AlbertForMultipleChoice
    if task == "ner":
        return albertkit.AlbertForTokenClassification
    return albertkit.AlbertForSequenceClassification


def _head_config(task: str, label_list: Sequence[str] | None) -> dict[str, Any]:
    if task in ("squad1", "squad2", "race"):
        return {}
    if label_list is None:  # regression
        return {"num_labels": 1, "problem_type": "regression", "id2label": None, "label2id": None}
    names = list(GLUE_TASKS[task].display_labels or label_list) if task in GLUE_TASKS else list(label_list)
    return {"num_labels": len(names), "id2label": dict(enumerate(names)),
            "label2id": {l: i for i, l in enumerate(names)},
            **({"problem_type": "single_label_classification"} if task != "ner" else {})}


def _load_model(task: str, path: str | os.PathLike | ResolvedCheckpoint, overrides: dict[str, Any], device: Any = None, require_head: bool | str = False) -> Any:
    """Load ``path`` with the task's head (new head weights are initialised and reported, unless
    ``require_head`` refuses them). A pretraining checkpoint's MLM + SOP heads are dropped by the
    loader, as transformers does."""
    return _model_class(task).from_pretrained(path, require_head=require_head, device=device, **overrides)


def _predict(model: Any, features: list[dict[str, Any]], batch_size: int, bf16: bool = False) -> dict[str, list[np.ndarray]]:
    """Run the model over features (sorted by length so padding stays small); per-feature outputs in input order."""
    import torch

    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    def size(ids: list) -> int:
        return sum(len(row) for row in ids) if ids and isinstance(ids[0], list) else len(ids)

    order = sorted(range(len(features)), key=lambda i: -size(features[i]["input_ids"]))
    out: dict[str, list[Any]] = {}
    try:
        with torch.no_grad():
            for lo in range(0, len(order), batch_size):
                idx = order[lo : lo + batch_size]
                batch = F.collate([{k: v for k, v in features[i].items() if k not in ("labels", "start_positions", "end_positions")} for i in idx])
                batch = {k: v.to(device) for k, v in batch.items()}
                ctx = torch.autocast(device.type, dtype=torch.bfloat16) if bf16 else torch.autocast(device.type, enabled=False)
                with ctx:
                    result = model(**batch)
                for name in ("logits", "start_logits", "end_logits"):
                    value = getattr(result, name, None)
                    if value is None:
                        continue
                    arr = value.float().cpu().numpy()
                    slot = out.setdefault(name, [None] * len(features))
                    for row, i in enumerate(idx):
                        slot[i] = arr[row]
    finally:
        model.train(was_training)
    return out


def _bio_spans(tags: Sequence[str]) -> set[tuple[str, int, int]]:
    # conlleval chunking: a chunk starts at B-X, or at I-X after O or after another type.
    spans, start, kind = set(), None, None
    for i, tag in enumerate([*tags, "O"]):
        prefix, _, label = tag.partition("-")
        if start is not None and (tag == "O" or prefix == "B" or label != kind):
            spans.add((kind, start, i))
            start, kind = None, None
        if tag != "O" and start is None:
            start, kind = i, label
    return spans


def _score(task: str, data: _Data, outputs: dict[str, list[np.ndarray]], label_list: Sequence[str] | None,
           null_threshold: float | None) -> tuple[dict[str, float], Any]:
    """Metrics and predictions (in the task's natural form) for one evaluated split."""
    if task in ("squad1", "squad2"):
        v2 = task == "squad2"
        result = postprocess_squad(data.examples, data.features, outputs["start_logits"], outputs["end_logits"],
                                   version_2=v2, null_threshold=0.0 if null_threshold is None else null_threshold)
        gold = squad_gold(data.examples)
        if not v2:
            return M.squad_v1_scores(gold, result.predictions), result
        scores = M.squad_v2_scores(gold, result.best_spans, result.null_score_diff, 0.0 if null_threshold is None else null_threshold)
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
    logits = outputs["logits"]
    if task == "race":
        preds = [int(np.argmax(l)) for l in logits]
        labels = [ex.label for ex in data.examples]
        if any(l is None for l in labels):
            return {}, preds
        return M.race_accuracy(preds, labels, [ex.level for ex in data.examples]), preds
    if task == "ner":
        assert label_list is not None
        pred_tags, true_tags = [], []
        for ex, feat, lg in zip(data.examples, data.features, logits):
            words = ["O"] * len(ex.words)
            for pos, w in enumerate(feat["word_ids"]):
                if w >= 0:
                    words[w] = label_list[int(np.argmax(lg[pos]))]
            pred_tags.append(words)
            true_tags.append(ex.labels)
        if any(t is None for t in true_tags):
            return {}, pred_tags
        pred_spans = {(s, *sp) for s, tags in enumerate(pred_tags) for sp in _bio_spans(tags)}
        true_spans = {(s, *sp) for s, tags in enumerate(true_tags) for sp in _bio_spans(tags)}
        tp = len(pred_spans & true_spans)
        p = tp / len(pred_spans) if pred_spans else 0.0
        r = tp / len(true_spans) if true_spans else 0.0
        flat_p = [t for tags in pred_tags for t in tags]
        flat_t = [t for tags in true_tags for t in tags]
        return {"f1": 2 * p * r / (p + r) if p + r else 0.0, "precision": p, "recall": r,
                "accuracy": M.accuracy(flat_p, flat_t)}, pred_tags
    regression = label_list is None
    preds = [float(l.reshape(-1)[0]) for l in logits] if regression else [int(np.argmax(l)) for l in logits]
    if any("labels" not in f for f in data.features):
        return {}, preds
    labels = [f["labels"] for f in data.features]
    if task in GLUE_TASKS:
        return M.glue_metrics(task, preds, labels), preds
    if regression:
        return {"pearson": M.pearson(preds, labels), "spearman": M.spearman(preds, labels)}, preds
    result = {"accuracy": M.accuracy(preds, labels)}
    if label_list is not None and len(label_list) == 2:
        result["f1"] = M.f1_binary(preds, labels)
    return result, preds


def _write_predictions(task: str, folder: Path, data: _Data, predictions: Any, label_list: Sequence[str] | None,
                       source: Path) -> list[Path]:
    written = []
    if task in ("squad1", "squad2"):
        write_squad_predictions(folder / "predictions.json", predictions.predictions)
        written.append(folder / "predictions.json")
        if predictions.null_score_diff:
            write_squad_predictions(folder / "null_odds.json", predictions.null_score_diff)
            written.append(folder / "null_odds.json")
        write_squad_predictions(folder / "nbest_predictions.json", predictions.nbest)
        written.append(folder / "nbest_predictions.json")
    elif task in GLUE_TASKS:
        spec = GLUE_TASKS[task]
        name = "MNLI-mm" if task == "mnli" and "mismatched" in source.name else spec.submission_name
        ids = [ex.guid.split("-", 1)[1] for ex in data.examples]
        write_glue_predictions(folder / f"{name}.tsv", spec, predictions, ids=ids)
        written.append(folder / f"{name}.tsv")
    else:
        lines = []
        for ex, pred in zip(data.examples, predictions):
            if task == "race":
                value: Any = "ABCD"[pred]
                key = ex.qid
            elif task == "ner":
                value, key = pred, ex.guid
            elif label_list is None:
                value, key = pred, ex.guid
            else:
                value, key = label_list[pred], ex.guid
            lines.append(json.dumps({"id": key, "prediction": value}, ensure_ascii=False))
        atomic_write_text(folder / "predictions.jsonl", "\n".join(lines) + "\n")
        written.append(folder / "predictions.jsonl")
    return written


FINETUNING_RECORD = "finetuning.json"  # beside the weights: what fine-tuning used (task, sequence length)


def _sequence_length(task: str, requested: int | None, positions: int, model: Any) -> int:
    """The window length: ``requested``, else what the model was fine-tuned with, else the recipe's,
    never more than the model's position table."""
    if requested is not None:
        if requested < 8:
            raise ValueError(f"--max-seq-length must be at least 8, got {requested}")
        if requested > positions:
            raise ValueError(f"--max-seq-length {requested} exceeds the model's max_position_embeddings ({positions})")
        return requested
    if isinstance(model, (str, os.PathLike)):
        record = Path(model) / FINETUNING_RECORD
        if record.is_file():
            try:
                return min(int(json.loads(record.read_text())["max_seq_length"]), positions)
            except (ValueError, KeyError, TypeError):
                logger.warning("%s is unreadable; using the recipe's sequence length", record)
    return min(TASK_DEFAULTS.get(task, TASK_DEFAULTS["classification"]).max_seq_length, positions)


def _check_vocab(tokenizer: Any, config: Any) -> None:
    vocab = getattr(tokenizer, "vocab_size", None)
    if isinstance(vocab, int) and vocab != config.vocab_size:
        raise ValueError(
            f"the tokenizer has {vocab} pieces but the model's vocabulary has {config.vocab_size}: pass the tokenizer "
            f"the model was trained with (--tokenizer), or none to use the model folder's"
        )


def _check_head_fits(task: str, config: Any, label_list: Sequence[str] | None, name: str) -> None:
    """Refuse a model fine-tuned for another label set (an SST-2 classifier scored on RTE)."""
    if task in ("squad1", "squad2", "race"):
        return
    want = 1 if label_list is None else len(label_list)
    if int(config.num_labels) != want:
        raise ValueError(
            f"{task} has {want} label(s) ({', '.join(label_list or ['a score'])}) but {name} was fine-tuned with "
            f"{config.num_labels}; evaluate it on the task it was fine-tuned for"
        )
    id2label = getattr(config, "id2label", None) or {}
    names = [id2label.get(i) for i in range(len(id2label))]
    generic = all(n is None or str(n).startswith("LABEL_") for n in names)  # transformers' placeholder names
    accepted = [list(label_list or [])]
    if task in GLUE_TASKS and GLUE_TASKS[task].label_names:
        accepted.append(list(GLUE_TASKS[task].label_names))  # albertkit names them; files and older runs say 0/1
    if label_list is not None and names and not generic and names not in accepted:
        raise ValueError(
            f"{task} labels are {accepted[-1]} but {name} was fine-tuned on labels {names}; "
            f"evaluate it on the task it was fine-tuned for"
        )


def _load_tokenizer(model: str | os.PathLike, tokenizer: Any | None) -> Any:
    if tokenizer is not None and not isinstance(tokenizer, (str, os.PathLike)):
        return tokenizer
    from albertkit import AlbertTokenizer

    return AlbertTokenizer.from_pretrained(str(tokenizer or model))


def evaluate(
    task: str,
    model: str | os.PathLike | Any,
    data: str | os.PathLike,
    *,
    output: str | os.PathLike | None = None,
    tokenizer: Any | None = None,
    batch_size: int = 64,
    max_seq_length: int | None = None,
    null_threshold: float | None = None,
    columns: TableColumns | None = None,
    device: str | None = None,
    bf16: bool = False,
    max_examples: int | None = None,
    articles: str | slice | None = None,
) -> dict[str, Any]:
    """Evaluate a fine-tuned model on ``data`` and return the task's official metrics.

    ``model`` is a folder / hub name (loaded with the task's head) or a loaded model. With
    ``output``, prediction files in the official formats and ``eval_results.json`` are written.
    For ``squad2`` with ``null_threshold=None`` the threshold is the official best-F1 choice on
    ``data`` itself (reported under ``null_threshold_source``). ``articles`` (``"24:48"``) keeps
    only those articles of a SQuAD file, in file order.

        >>> evaluate("squad1", "runs/squad/best", "squad/dev-v1.1.json", articles="24:48")["f1"]   # doctest: +SKIP
    """
    import torch

    check_positive(batch_size=batch_size, max_examples=max_examples)
    key = _task_key(task)
    columns = columns or TableColumns()
    from albertkit.checkpoint import resolve_checkpoint

    source = resolve_checkpoint(model) if isinstance(model, (str, os.PathLike)) else None  # one lookup for both
    tok = _load_tokenizer(source.tokenizer_source if source is not None else "", tokenizer)
    name = str(model) if isinstance(model, (str, os.PathLike)) else "the model"
    if isinstance(model, (str, os.PathLike)):
        from albertkit.checkpoint import resolve_device

        dev = resolve_device(device)
        name = str(model)
        model = _load_model(key, source, {}, dev, require_head=f"evaluating it on {key}")
    label_list = _label_list(key, None, model.config) if key not in ("regression",) else None
    _check_head_fits(key, model.config, label_list, name)
    _check_vocab(tok, model.config)
    max_len = _sequence_length(key, max_seq_length, int(model.config.max_position_embeddings), name)
    selection = parse_article_range(articles)
    examples = _read(key, data, "dev", columns, label_list, for_training=False, articles=selection)
    if max_examples is not None:
        examples = examples[:max_examples]
    if not examples:
        raise ValueError(f"{data}: no evaluation examples" + (" selected" if max_examples is not None or selection else ""))
    data_ = _Data(examples, _encode(key, examples, tok, label_list, max_len, training=False))
    outputs = _predict(model, data_.features, batch_size, bf16)
    scores, predictions = _score(key, data_, outputs, label_list, null_threshold)
    where = {}
    if selection is not None:
        where["articles"] = _range_text(_article_indices(Path(data), squad_article_count(data), selection))
    scores = {"task": key, "data": str(data), **where, "examples": len(examples), **scores}
    if output is not None:
        folder = Path(output)
        files = _write_predictions(key, folder, data_, predictions, label_list, Path(data))
        scores["prediction_files"] = [str(p) for p in files]
        atomic_write_text(folder / "eval_results.json", json.dumps(scores, indent=2) + "\n")
    return scores


def finetune(
    task: str,
    model: str | os.PathLike,
    *,
    train: str | os.PathLike,
    output: str | os.PathLike,
    eval: str | os.PathLike | None = None,
    tokenizer: Any | None = None,
    learning_rate: float | None = None,
    batch_size: int | None = None,
    max_steps: int | None = None,
    num_epochs: float | None = None,
    warmup_steps: int | None = None,
    warmup_ratio: float | None = None,
    weight_decay: float | None = None,
    max_grad_norm: float | None = None,
    max_seq_length: int | None = None,
    grad_accumulation: int = 1,
    eval_every: int = 0,
    eval_batch_size: int = 64,
    save_every: int = 0,
    bf16: bool = False,
    seed: int = 42,
    resume: bool = False,
    null_threshold: float | None = None,
    columns: TableColumns | None = None,
    device: str | None = None,
    max_train_examples: int | None = None,
    max_eval_examples: int | None = None,
    train_articles: str | slice | None = None,
    eval_articles: str | slice | None = None,
) -> dict[str, Any]:
    """Fine-tune ``model`` on ``task`` with AdamW, warmup + linear decay, clipping, and keep the best
    checkpoint by the task's primary metric on ``eval``.

    Unset hyperparameters come from ALBERT's recipe for the task (``TASK_DEFAULTS``); giving
    ``num_epochs`` replaces the recipe's step count. ``train`` / ``eval`` may be GLUE task folders
    (``train.tsv`` / ``dev.tsv`` are picked). Returns the trainer summary plus ``eval_results``.

    SQuAD has no train file here, so one file can be split by article: ``train_articles="0:24"``,
    ``eval_articles="24:48"`` (0-based, in file order, STOP excluded). Overlapping ranges of the
    same file are refused; the split (ranges, article titles, question counts) is written to
    ``output/data_split.json`` and returned under ``data_split``.

        >>> finetune("sst2", "albert-base-v2", train="glue/SST-2", eval="glue/SST-2", output="runs/sst2",
        ...          max_steps=2000)   # doctest: +SKIP
        >>> finetune("squad1", "runs/mini/best", train="squad/dev-v1.1.json", train_articles="0:24",
        ...          eval="squad/dev-v1.1.json", eval_articles="24:48", output="runs/squad-half")  # doctest: +SKIP
    """
    from albertkit.training import Trainer, TrainingArguments, seed_everything

    check_positive(batch_size=batch_size, max_steps=max_steps, num_epochs=num_epochs, learning_rate=learning_rate,
                    grad_accumulation=grad_accumulation, eval_batch_size=eval_batch_size,
                    max_train_examples=max_train_examples, max_eval_examples=max_eval_examples,
                    names={"num_epochs": "--epochs"})
    check_positive(allow_zero=True, warmup_steps=warmup_steps, warmup_ratio=warmup_ratio, weight_decay=weight_decay,
                    max_grad_norm=max_grad_norm, eval_every=eval_every, save_every=save_every)
    seed_everything(seed)  # before the model is built: its new task head is initialised at random
    key = _task_key(task)
    columns = columns or TableColumns()
    defaults = TASK_DEFAULTS[key]
    train_sel, eval_sel = parse_article_range(train_articles), parse_article_range(eval_articles)
    if key in ("squad1", "squad2") and eval is not None:
        check_article_split(train, train_sel, eval, eval_sel)
    train_examples = _read(key, train, "train", columns, None, for_training=True, articles=train_sel)
    if max_train_examples is not None:
        train_examples = train_examples[:max_train_examples]
    if not train_examples:
        raise ValueError(f"{train}: no training examples")
    label_list = _label_list(key, train_examples, None)
    from albertkit.checkpoint import resolve_checkpoint

    source = resolve_checkpoint(model)  # one lookup for the weights, the config and the tokenizer
    tok = _load_tokenizer(source.tokenizer_source, tokenizer)
    positions = int(source.config.max_position_embeddings)
    max_len = _sequence_length(key, max_seq_length, positions, None)
    train_features = _encode(key, train_examples, tok, label_list, max_len, training=True)
    logger.info("%s: %d training examples -> %d features", key, len(train_examples), len(train_features))

    batch = batch_size or defaults.batch_size
    if max_steps is None:
        epochs = num_epochs if num_epochs is not None else defaults.num_epochs
        if epochs is None:
            max_steps = defaults.max_steps
        else:
            max_steps = max(1, math.ceil(len(train_features) * epochs / batch))
    assert max_steps is not None
    if warmup_steps is None:
        ratio = warmup_ratio if warmup_ratio is not None else defaults.warmup_ratio
        if ratio is not None:
            warmup_steps = int(ratio * max_steps)
        else:
            # The recipe's warmup belongs to its step count; keep the same fraction for other lengths.
            warmup_steps = round((defaults.warmup_steps or 0) * max_steps / (defaults.max_steps or max_steps))

    net = _load_model(key, source, _head_config(key, label_list))
    _check_vocab(tok, net.config)

    eval_fn: Callable[[Any], dict[str, float]] | None = None
    eval_data: _Data | None = None
    if eval is not None:
        eval_examples = _read(key, eval, "dev", columns, label_list, for_training=False, articles=eval_sel)[:max_eval_examples]
        if not eval_examples:
            raise ValueError(f"{eval}: no evaluation examples")
        eval_data = _Data(eval_examples, _encode(key, eval_examples, tok, label_list, max_len, training=False))

        def eval_fn(m: Any) -> dict[str, float]:
            scores, _ = _score(key, eval_data, _predict(m, eval_data.features, eval_batch_size, bf16), label_list, null_threshold)
            return {k: float(v) for k, v in scores.items() if isinstance(v, (int, float))}

    args = TrainingArguments(
        output_dir=output, max_steps=max_steps, batch_size=batch, grad_accumulation=grad_accumulation,
        lr=learning_rate if learning_rate is not None else defaults.learning_rate,
        warmup_steps=warmup_steps,
        weight_decay=weight_decay if weight_decay is not None else defaults.weight_decay,
        optimizer="adamw", max_grad_norm=max_grad_norm if max_grad_norm is not None else defaults.max_grad_norm,
        bf16=bf16, seed=seed, eval_every=eval_every, save_every=save_every,
        keep_best=primary_metric(key) if eval_fn is not None else None, device=device,
    )
    split: dict[str, Any] | None = None
    if key in ("squad1", "squad2"):
        split = {"train": _split_record(train, train_sel, train_examples)}
        if eval_data is not None:
            split["eval"] = _split_record(eval, eval_sel, eval_data.examples)
        Path(output).mkdir(parents=True, exist_ok=True)
        atomic_write_text(Path(output) / "data_split.json", json.dumps(split, indent=2) + "\n")
        logger.info("%s: train on articles %s of %s (%d questions)%s", key, split["train"]["articles"], train,
                    len(train_examples), "" if eval_data is None else
                    f", evaluate on articles {split['eval']['articles']} of {eval} ({len(eval_data.examples)} questions)")
    logger.info("%s: %d steps, batch %d, lr %g, warmup %d", key, max_steps, batch, args.lr, warmup_steps)
    record = json.dumps({"task": key, "max_seq_length": max_len, "labels": label_list}, indent=2) + "\n"

    def beside_weights(folder: Path) -> None:  # every saved model is usable, even if training stops later
        tok.save_pretrained(folder)
        atomic_write_text(folder / FINETUNING_RECORD, record)

    trainer = Trainer(net, args, train_features, collate_fn=F.collate, eval_fn=eval_fn, on_save=beside_weights)
    summary = dict(trainer.train(resume=resume))
    out = Path(output)
    if eval is not None:
        best = out / "best" if (out / "best").is_dir() else out / "model"
        summary["eval_results"] = evaluate(key, best, eval, output=out, tokenizer=tok, batch_size=eval_batch_size,
                                           max_seq_length=max_len, null_threshold=null_threshold, columns=columns,
                                           device=device, bf16=bf16, max_examples=max_eval_examples,
                                           articles=eval_sel)
    if split is not None:
        summary["data_split"] = split
    summary.update(task=key, max_steps=max_steps, warmup_steps=warmup_steps, batch_size=batch, learning_rate=args.lr)
    return summary
