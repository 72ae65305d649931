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
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

import numpy as np

from albertkit.finetuning.kinds import FINETUNING_TASKS, EvalData, FinetuningTask, TableColumns, get_task, task_key
from albertkit.finetuning.readers import _article_indices, parse_article_range, squad_article_count
from albertkit.utils import atomic_write_text, check_positive

if TYPE_CHECKING:
    from albertkit.checkpoint import ResolvedCheckpoint

__all__ = ["TASKS", "finetune", "evaluate", "primary_metric", "check_article_split"]

logger = logging.getLogger(__name__)

TASKS = tuple(FINETUNING_TASKS)


def primary_metric(task: str) -> str:
    """The metric used to keep the best checkpoint: GLUE's first metric (MCC for CoLA, F1 for
    MRPC/QQP, Pearson for STS-B), SQuAD F1, RACE accuracy, NER entity F1."""
    return get_task(task).primary_metric


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


def _load_model(task: str | FinetuningTask, path: str | os.PathLike | ResolvedCheckpoint, overrides: dict[str, Any],
                device: Any = None, require_head: bool | str = False) -> Any:
    """Load ``path`` with the task's head (new head weights are initialised and reported, unless
    ``require_head`` refuses them). A pretraining checkpoint's MLM + SOP heads are dropped by the
    loader, as transformers does."""
    return get_task(task).model_class.from_pretrained(path, require_head=require_head, device=device, **overrides)


_OUTPUTS = ("logits", "start_logits", "end_logits")  # what scoring reads from a model's output
_TARGETS = ("labels", "start_positions", "end_positions")  # left out: evaluation must not need gold


def _predict(model: Any, features: list[dict[str, Any]], batch_size: int, bf16: bool = False) -> dict[str, list[np.ndarray]]:
    """Run the model over features (sorted by length so padding stays small); per-feature outputs in input order."""
    import torch

    from albertkit.batching import length_order, predict
    from albertkit.finetuning.features import collate

    def size(ids: list) -> int:
        return sum(len(row) for row in ids) if ids and isinstance(ids[0], list) else len(ids)

    out: dict[str, list[Any]] = {}

    def keep(result: Any, batch: Any, indices: list[int]) -> None:
        for name in _OUTPUTS:
            value = getattr(result, name, None)
            if value is not None:
                slot = out.setdefault(name, [None] * len(features))
                for row, arr in zip(indices, value.float().cpu().numpy()):
                    slot[row] = arr

    def inputs_only(group: list[dict[str, Any]]) -> dict[str, Any]:
        return collate([{k: v for k, v in f.items() if k not in _TARGETS} for f in group])

    order, _ = length_order([size(f["input_ids"]) for f in features])
    predict(model, features, keep, batch_size=batch_size, collate=inputs_only, order=order,
            autocast=torch.bfloat16 if bf16 else False)
    return out


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
    return min(get_task(task).defaults.max_seq_length, positions)


def _check_vocab(tokenizer: Any, config: Any) -> None:
    vocab = getattr(tokenizer, "vocab_size", None)
    if isinstance(vocab, int) and vocab != config.vocab_size:
        raise ValueError(
            f"the tokenizer has {vocab} pieces but the model's vocabulary has {config.vocab_size}: pass the tokenizer "
            f"the model was trained with (--tokenizer), or none to use the model folder's"
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
    check_positive(batch_size=batch_size, max_examples=max_examples)
    key = task_key(task)
    spec = get_task(key)
    columns = columns or TableColumns()
    from albertkit.checkpoint import resolve_checkpoint

    source = resolve_checkpoint(model) if isinstance(model, (str, os.PathLike)) else None  # one lookup for both
    tok = _load_tokenizer(source.tokenizer_source if source is not None else "", tokenizer)
    name = str(model) if isinstance(model, (str, os.PathLike)) else "the model"
    if isinstance(model, (str, os.PathLike)):
        from albertkit.checkpoint import resolve_device

        dev = resolve_device(device)
        name = str(model)
        model = _load_model(spec, source, {}, dev, require_head=f"evaluating it on {key}")
    label_list = spec.label_list(None, model.config)
    spec.check_head(model.config, label_list, name)
    _check_vocab(tok, model.config)
    max_len = _sequence_length(key, max_seq_length, int(model.config.max_position_embeddings), name)
    selection = parse_article_range(articles)
    examples = spec.read(data, "dev", columns, label_list, for_training=False, articles=selection)
    if max_examples is not None:
        examples = examples[:max_examples]
    if not examples:
        raise ValueError(f"{data}: no evaluation examples" + (" selected" if max_examples is not None or selection else ""))
    data_ = EvalData(examples, spec.encode(examples, tok, label_list, max_len, training=False))
    outputs = _predict(model, data_.features, batch_size, bf16)
    scores, predictions = spec.score(data_, outputs, label_list, null_threshold)
    where = {}
    if selection is not None:
        where["articles"] = _range_text(_article_indices(Path(data), squad_article_count(data), selection))
    scores = {"task": key, "data": str(data), **where, "examples": len(examples), **scores}
    if output is not None:
        folder = Path(output)
        files = spec.write(folder, data_, predictions, label_list, Path(data))
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
    from albertkit.finetuning.features import collate
    from albertkit.training import Trainer, TrainingArguments, seed_everything

    check_positive(batch_size=batch_size, max_steps=max_steps, num_epochs=num_epochs, learning_rate=learning_rate,
                    grad_accumulation=grad_accumulation, eval_batch_size=eval_batch_size,
                    max_train_examples=max_train_examples, max_eval_examples=max_eval_examples,
                    names={"num_epochs": "--epochs"})
    check_positive(allow_zero=True, warmup_steps=warmup_steps, warmup_ratio=warmup_ratio, weight_decay=weight_decay,
                    max_grad_norm=max_grad_norm, eval_every=eval_every, save_every=save_every)
    seed_everything(seed)  # before the model is built: its new task head is initialised at random
    key = task_key(task)
    spec = get_task(key)
    columns = columns or TableColumns()
    defaults = spec.defaults
    train_sel, eval_sel = parse_article_range(train_articles), parse_article_range(eval_articles)
    if spec.article_ranges and eval is not None:
        check_article_split(train, train_sel, eval, eval_sel)
    train_examples = spec.read(train, "train", columns, None, for_training=True, articles=train_sel)
    if max_train_examples is not None:
        train_examples = train_examples[:max_train_examples]
    if not train_examples:
        raise ValueError(f"{train}: no training examples")
    label_list = spec.label_list(train_examples, None)
    from albertkit.checkpoint import resolve_checkpoint

    source = resolve_checkpoint(model)  # one lookup for the weights, the config and the tokenizer
    tok = _load_tokenizer(source.tokenizer_source, tokenizer)
    positions = int(source.config.max_position_embeddings)
    max_len = _sequence_length(key, max_seq_length, positions, None)
    train_features = spec.encode(train_examples, tok, label_list, max_len, training=True)
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

    net = _load_model(spec, source, spec.head_config(label_list))
    _check_vocab(tok, net.config)

    eval_fn: Callable[[Any], dict[str, float]] | None = None
    eval_data: EvalData | None = None
    if eval is not None:
        eval_examples = spec.read(eval, "dev", columns, label_list, for_training=False, articles=eval_sel)[:max_eval_examples]
        if not eval_examples:
            raise ValueError(f"{eval}: no evaluation examples")
        eval_data = EvalData(eval_examples, spec.encode(eval_examples, tok, label_list, max_len, training=False))

        def eval_fn(m: Any) -> dict[str, float]:
            scores, _ = spec.score(eval_data, _predict(m, eval_data.features, eval_batch_size, bf16), label_list, null_threshold)
            return {k: float(v) for k, v in scores.items() if isinstance(v, (int, float))}

    args = TrainingArguments(
        output_dir=output, max_steps=max_steps, batch_size=batch, grad_accumulation=grad_accumulation,
        lr=learning_rate if learning_rate is not None else defaults.learning_rate,
        warmup_steps=warmup_steps,
        weight_decay=weight_decay if weight_decay is not None else defaults.weight_decay,
        optimizer="adamw", max_grad_norm=max_grad_norm if max_grad_norm is not None else defaults.max_grad_norm,
        bf16=bf16, seed=seed, eval_every=eval_every, save_every=save_every,
        keep_best=spec.primary_metric if eval_fn is not None else None, device=device,
    )
    split: dict[str, Any] | None = None
    if spec.article_ranges:
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

    trainer = Trainer(net, args, train_features, collate_fn=collate, eval_fn=eval_fn, on_save=beside_weights)
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
