"""Pretraining glue: corpus -> SOP instances -> n-gram masking -> AlbertForPreTraining -> Trainer.

    >>> summary = pretrain(["data/corpus/"], "albert-base-v2/spiece.model", "tiny", "runs/mini",
    ...                    max_steps=1000, batch_size=64, lr=1e-3)                     # doctest: +SKIP
    >>> summary["metrics"]["masked_lm_accuracy"]                                       # doctest: +SKIP

Held-out evaluation (:func:`evaluate_pretraining`) reports Google's four metrics:
``masked_lm_loss`` and ``masked_lm_accuracy`` averaged over masked tokens, and
``sentence_order_loss`` and ``sentence_order_accuracy`` averaged over instances; beside them
``mask_only_loss`` and ``mask_only_accuracy`` count only the targets shown as [MASK] (the 80%), the
figure that says whether the model predicts from context (the 10% left unchanged are copied).
During pretraining each evaluation also runs :class:`~albertkit.pretraining.probes.LanguageProbes`
(``probe_*`` columns of eval_log.csv: single-piece [MASK]-only accuracy, shuffle gap, attention on
neighbours) on a small fixed held-out set.
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import torch
from torch import nn
from torch.utils.data import Dataset, Subset

from albertkit.batching import predict
from albertkit.config import AlbertConfig
from albertkit.utils import atomic_write_text, check_positive

__all__ = ["pretrain", "evaluate_pretraining", "load_tokenizer", "load_config", "is_prepared_corpus"]

logger = logging.getLogger(__name__)
# ALBERT's pretraining length; a model with fewer positions (the tiny preset: 64) uses all it has.
DEFAULT_MAX_SEQ_LENGTH = 128


def is_prepared_corpus(path: str | os.PathLike) -> bool:
    """True for a folder written by :func:`albertkit.pretraining.prepare_corpus`."""
    return (Path(path) / "meta.json").is_file()


def load_tokenizer(tokenizer: Any) -> Any:
    """An ``AlbertTokenizer`` from an instance, a ``spiece.model`` file, a folder or a hub name."""
    if hasattr(tokenizer, "vocab_size") and hasattr(tokenizer, "convert_ids_to_tokens"):
        return tokenizer
    from albertkit.tokenization import AlbertTokenizer

    return AlbertTokenizer.from_pretrained(str(tokenizer))


def load_config(config: AlbertConfig | str | os.PathLike, vocab_size: int) -> AlbertConfig:
    """A preset name or a ``config.json`` path; the vocabulary size always follows the tokenizer."""
    if isinstance(config, AlbertConfig):
        cfg = config
    elif str(config).endswith(".json") or Path(config).is_file():
        cfg = AlbertConfig.from_json_file(config)
    elif Path(config).is_dir():
        cfg = AlbertConfig.from_pretrained(config)
    else:
        cfg = AlbertConfig.from_name(str(config))
    if cfg.vocab_size != vocab_size:
        logger.info("config vocab_size %d -> %d (the tokenizer's)", cfg.vocab_size, vocab_size)
        cfg = cfg.replace(vocab_size=vocab_size)
    return cfg


class _SOPEpochs:
    """``epoch -> SOPDataset``: fresh segment pairs each epoch (a picklable callable for workers)."""

    def __init__(self, corpus_dir: Path, max_seq_length: int, short_seq_prob: float, seed: int) -> None:
        self.corpus_dir, self.max_seq_length, self.short_seq_prob, self.seed = corpus_dir, max_seq_length, short_seq_prob, seed
        self._corpus: Any = None

    def __call__(self, epoch: int) -> Dataset:
        from albertkit.pretraining.corpus import PretrainingCorpus
        from albertkit.pretraining.instances import SOPDataset

        if self._corpus is None:
            self._corpus = PretrainingCorpus(self.corpus_dir, split="train")
        return SOPDataset(self._corpus, self.max_seq_length, self.short_seq_prob, seed=self.seed, epoch=epoch)

    def __getstate__(self) -> dict[str, Any]:
        # Workers reopen the memory maps instead of pickling them.
        return {**self.__dict__, "_corpus": None}


@torch.no_grad()
def evaluate_pretraining(
    model: nn.Module,
    dataset: Dataset,
    collator: Any,
    batch_size: int = 32,
    device: torch.device | str | None = None,
    progress: bool = False,
) -> dict[str, float]:
    """masked_lm_loss/accuracy (over masked tokens) and sentence_order_loss/accuracy (over instances).

        >>> evaluate_pretraining(model, heldout_dataset, MaskingCollator(tok, seed=1))   # doctest: +SKIP
        {'masked_lm_loss': 4.1, 'masked_lm_accuracy': 0.33, 'mask_only_loss': 4.4, 'mask_only_accuracy': 0.29, ...}
    """
    if len(dataset) == 0:  # type: ignore[arg-type]
        raise ValueError("evaluation dataset is empty (no held-out instances)")
    mask_id = getattr(collator, "mask_id", None)

    def forward(batch: dict[str, torch.Tensor], indices: list[int]) -> Any:
        return model(**{k: v for k, v in batch.items() if k not in ("masked_lm_labels", "sentence_order_label")})

    def keep(out: Any, batch: dict[str, torch.Tensor], indices: list[int]) -> tuple[float, ...]:
        """Sums over the batch: MLM loss/correct/count, the same at [MASK] only, SOP loss/correct/count."""
        logits = out.prediction_logits.float()  # [B, P, V]
        labels = batch["masked_lm_labels"]  # [B, P], -100 = padding
        valid = labels != -100
        ce = nn.functional.cross_entropy(logits.transpose(1, 2), labels.clamp(min=0), reduction="none")  # [B, P]
        hits = logits.argmax(-1) == labels
        at_mask = valid
        if mask_id is not None:
            shown = torch.gather(batch["input_ids"], 1, batch["masked_lm_positions"])
            at_mask = valid & (shown == mask_id)
        sop_logits = out.sop_logits.float()  # [B, 2]
        sop_labels = batch["sentence_order_label"]
        return (float(ce[valid].sum()), float(hits[valid].sum()), float(valid.sum()),
                float(ce[at_mask].sum()), float(hits[at_mask].sum()), float(at_mask.sum()),
                float(nn.functional.cross_entropy(sop_logits, sop_labels, reduction="sum")),
                float((sop_logits.argmax(-1) == sop_labels).sum()), float(len(sop_labels)))

    sums = predict(model, dataset, keep, batch_size=batch_size, collate=collator, device=device, progress=progress,
                   desc="eval", forward=forward)
    mlm_loss, mlm_correct, mlm_count, only_loss, only_correct, only_count, sop_loss, sop_correct, sop_count = (
        sum(column) for column in zip(*sums))
    metrics = {
        "masked_lm_loss": mlm_loss / max(mlm_count, 1.0),
        "masked_lm_accuracy": mlm_correct / max(mlm_count, 1.0),
    }
    if mask_id is not None:
        metrics.update(
            mask_only_loss=only_loss / max(only_count, 1.0),
            mask_only_accuracy=only_correct / max(only_count, 1.0),
            mask_only_tokens=only_count,
        )
    return {
        **metrics,
        "sentence_order_loss": sop_loss / max(sop_count, 1.0),
        "sentence_order_accuracy": sop_correct / max(sop_count, 1.0),
        "masked_tokens": mlm_count,
        "instances": sop_count,
    }


def _prepare(inputs: Sequence[str | os.PathLike], tokenizer: Any, corpus_dir: Path, heldout_docs: int, seed: int, num_workers: int, fallback_encoding: str | None) -> Path:
    from albertkit.pretraining.corpus import prepare_corpus

    return Path(
        prepare_corpus(
            [str(p) for p in inputs], tokenizer, corpus_dir, num_workers=num_workers, heldout_docs=heldout_docs,
            seed=seed, fallback_encoding=fallback_encoding,
        )
    )


def _resolve_corpus(
    inputs: str | os.PathLike | Sequence[str | os.PathLike],
    tokenizer: Any,
    output_dir: Path,
    heldout_docs: int,
    seed: int,
    num_workers: int,
    is_main: bool,
    fallback_encoding: str | None = None,
) -> Path:
    items = [inputs] if isinstance(inputs, (str, os.PathLike)) else list(inputs)
    if not items:
        raise ValueError("no corpus given")
    if len(items) == 1 and is_prepared_corpus(items[0]):
        corpus_dir = Path(items[0])
    else:
        for item in items:
            if not Path(item).exists():
                raise FileNotFoundError(f"corpus input {item} does not exist")
        corpus_dir = output_dir / "corpus"
        if is_main:
            _prepare(items, tokenizer, corpus_dir, heldout_docs, seed, num_workers, fallback_encoding)
    _barrier()
    from albertkit.pretraining.corpus import PretrainingCorpus, tokenizer_checksum

    corpus = PretrainingCorpus(corpus_dir, split="train")
    if corpus.tokenizer_checksum != tokenizer_checksum(tokenizer):
        raise ValueError(f"{corpus_dir} was tokenised with a different tokenizer than the one given")
    return corpus_dir


def _barrier() -> None:
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        torch.distributed.barrier()


def pretrain(
    inputs: str | os.PathLike | Sequence[str | os.PathLike],
    tokenizer: Any,
    config: AlbertConfig | str | os.PathLike,
    output_dir: str | os.PathLike,
    *,
    max_steps: int = 10_000,
    batch_size: int = 128,
    grad_accumulation: int = 1,
    lr: float = 1.76e-3,
    warmup_steps: int | None = None,
    optimizer: str = "lamb",
    weight_decay: float = 0.01,
    adam_betas: tuple[float, float] = (0.9, 0.999),
    adam_eps: float = 1e-6,
    lamb_bias_correction: bool = False,
    max_seq_length: int | None = None,
    short_seq_prob: float = 0.1,
    masked_lm_prob: float = 0.15,
    max_predictions_per_seq: int = 20,
    max_ngram: int = 3,
    subword_masking_steps: int = 0,
    heldout_docs: int = 200,
    eval_instances: int = 2000,
    probe_instances: int = 128,
    seed: int = 0,
    bf16: bool = False,
    compile: bool = False,
    save_every: int = 500,
    eval_every: int = 0,
    log_every: int = 10,
    num_workers: int = 1,
    prepare_workers: int = 2,
    fallback_encoding: str | None = None,
    resume: bool = False,
    stop_after: int | None = None,
    device: str | None = None,
    init_from: str | os.PathLike | None = None,
    start_step: int = 0,
    rewarm_steps: int = 100,
    anneal_steps: int = 0,
) -> dict[str, Any]:
    """Pretrain ``AlbertForPreTraining`` with MLM (n-gram masking) + SOP; returns the run summary.

    ``inputs`` are text files/folders (tokenised once into ``output_dir/corpus``) or one folder
    prepared by ``prepare_corpus``; a line that is not UTF-8 is an error unless ``fallback_encoding``
    (e.g. ``"cp1252"``) is given. ``warmup_steps`` defaults to 2.5% of ``max_steps`` (Google's
    3125 of 125k). The first ``subword_masking_steps`` steps mask single pieces, later ones whole-word
    n-grams (``max_ngram``); the switch is by position in the training stream, so it survives resume.
    ``init_from`` + ``start_step`` continue a schedule from saved weights without the optimizer
    state (see :meth:`~albertkit.training.Trainer.start_at`; ignored when ``resume`` finds a checkpoint);
    with ``anneal_steps`` too, the run is a release branch: its lr falls from the schedule's at
    ``start_step`` to 0 over ``anneal_steps`` steps, and it stops there (checkpointed, not finished).
    The final model and tokenizer land in ``output_dir/model`` (HF layout), and
    ``output_dir/summary.json`` holds the held-out metrics.

        >>> pretrain("corpus/", "spiece.model", "tiny", "runs/t", max_steps=100, batch_size=32)  # doctest: +SKIP
    """
    from albertkit.modeling import AlbertForPreTraining
    from albertkit.pretraining.corpus import PretrainingCorpus
    from albertkit.pretraining.instances import SOPDataset
    from albertkit.pretraining.masking import MaskingCollator
    from albertkit.training import Trainer, TrainingArguments, _default_device, _init_distributed, seed_everything

    # Every setting is checked before the corpus is prepared (which can take long).
    check_positive(max_steps=max_steps, batch_size=batch_size, grad_accumulation=grad_accumulation, lr=lr,
                   max_seq_length=max_seq_length, masked_lm_prob=masked_lm_prob, max_predictions=max_predictions_per_seq,
                   max_ngram=max_ngram, eval_instances=eval_instances, prepare_workers=prepare_workers)
    check_positive(allow_zero=True, warmup_steps=warmup_steps, weight_decay=weight_decay, short_seq_prob=short_seq_prob,
                   heldout_docs=heldout_docs, save_every=save_every, eval_every=eval_every, log_every=log_every,
                   num_workers=num_workers, anneal_steps=anneal_steps)
    if anneal_steps and not start_step:
        raise ValueError("--anneal-steps branches off the schedule at --start-step: give --start-step and --init-from too")
    if not masked_lm_prob < 1 or not short_seq_prob <= 1:
        raise ValueError("--masked-lm-prob must be below 1 and --short-seq-prob at most 1")
    if batch_size % grad_accumulation:
        raise ValueError(f"--batch-size {batch_size} is not divisible by --grad-accumulation {grad_accumulation}")
    output_dir = Path(output_dir)
    dist = _init_distributed(_default_device(device).type)  # before corpus preparation: rank 0 prepares
    tok = load_tokenizer(tokenizer)
    cfg = load_config(config, int(tok.vocab_size))
    if max_seq_length is None:  # the recipe's 128, or what the model's position table allows
        max_seq_length = min(DEFAULT_MAX_SEQ_LENGTH, int(cfg.max_position_embeddings))
    if max_seq_length > cfg.max_position_embeddings:
        raise ValueError(
            f"--max-seq-length {max_seq_length} exceeds the config's max_position_embeddings {cfg.max_position_embeddings}"
        )
    corpus_dir = _resolve_corpus(inputs, tok, output_dir, heldout_docs, seed, prepare_workers, dist.is_main, fallback_encoding)
    train_data = _SOPEpochs(corpus_dir, max_seq_length, short_seq_prob, seed)
    # Under torch.compile every batch gets the same [B, T] and [B, P]: no recompiles, no dynamic-shape kernels.
    collator = MaskingCollator(
        tok, masked_lm_prob, max_predictions_per_seq, max_ngram, seed=seed, static_shapes=max_seq_length if compile else None,
        subword_masking_examples=subword_masking_steps * batch_size,
    )

    eval_fn = None
    heldout = PretrainingCorpus(corpus_dir, split="heldout")
    if len(heldout):
        # Fixed instances and fixed masking (another seed than training), so evals are comparable.
        eval_set: Dataset = SOPDataset(heldout, max_seq_length, short_seq_prob, seed=seed + 1, epoch=0)
        eval_set = Subset(eval_set, range(min(eval_instances, len(eval_set))))  # type: ignore[arg-type]
        eval_collator = MaskingCollator(tok, masked_lm_prob, max_predictions_per_seq, max_ngram, seed=seed + 1)
        per_rank = max(1, batch_size // (dist.world_size * grad_accumulation))
        probes = None
        if probe_instances:
            from albertkit.pretraining.probes import LanguageProbes

            # Single pieces, as issue #14 scores the shipped model; other instances than eval_set's.
            probe_set = SOPDataset(heldout, max_seq_length, short_seq_prob, seed=seed + 2, epoch=0)
            piece_collator = MaskingCollator(tok, masked_lm_prob, max_predictions_per_seq, 1, seed=seed + 2, whole_word=False)
            probes = LanguageProbes(piece_collator, probe_set, max_instances=probe_instances, batch_size=per_rank)

        def eval_fn(model: nn.Module) -> dict[str, float]:
            metrics = evaluate_pretraining(model, eval_set, eval_collator, batch_size=per_rank)
            if probes is not None:
                metrics.update({f"probe_{k}": v for k, v in probes(model).items()})
            return metrics
    else:
        logger.warning("the corpus has no held-out documents: no evaluation (prepare it with heldout_docs > 0)")

    seed_everything(seed)  # model init; DDP then broadcasts rank 0's weights
    if init_from is not None:
        model = AlbertForPreTraining.from_pretrained(str(init_from))
    else:
        model = AlbertForPreTraining(cfg)
    if warmup_steps is None:
        warmup_steps = max(1, round(0.025 * max_steps))
    args = TrainingArguments(
        output_dir=output_dir,
        max_steps=max_steps,
        batch_size=batch_size,
        grad_accumulation=grad_accumulation,
        lr=lr,
        warmup_steps=warmup_steps,
        weight_decay=weight_decay,
        optimizer=optimizer,
        adam_betas=adam_betas,
        adam_eps=adam_eps,
        lamb_bias_correction=lamb_bias_correction,
        bf16=bf16,
        compile=compile,
        seed=seed,
        log_every=log_every,
        eval_every=eval_every,
        save_every=save_every,
        keep_best="mask_only_accuracy" if eval_fn is not None and eval_every else None,
        num_workers=num_workers,
        device=device,
    )
    trainer = Trainer(
        model, args, train_data, collate_fn=collator, eval_fn=eval_fn, index_key="stream_index",
        log_outputs=("masked_lm_loss", "sentence_order_loss"),
    )
    if dist.is_main:
        output_dir.mkdir(parents=True, exist_ok=True)
        cfg.save_pretrained(output_dir)  # config.json at the top shows what is being trained
        recipe = {
            "corpus": str(corpus_dir),
            "train_documents": len(PretrainingCorpus(corpus_dir, split="train")),
            "heldout_documents": len(heldout),
            "max_seq_length": max_seq_length,
            "short_seq_prob": short_seq_prob,
            "masked_lm_prob": masked_lm_prob,
            "max_predictions_per_seq": max_predictions_per_seq,
            "max_ngram": max_ngram,
            "subword_masking_steps": subword_masking_steps,
            "parameters": sum(p.numel() for p in {id(p): p for p in model.parameters()}.values()),
            "training": args.to_dict(),
        }
        atomic_write_text(output_dir / "pretraining_recipe.json", json.dumps(recipe, indent=2))
    if start_step:
        from albertkit.training import latest_checkpoint

        if init_from is None:
            raise ValueError("start_step continues a schedule from saved weights: give init_from too")
        if not (resume and latest_checkpoint(output_dir) is not None):
            trainer.start_at(start_step, rewarm_steps, anneal_steps)
        if anneal_steps:
            stop_after = min(stop_after or max_steps, start_step + anneal_steps)
    summary = trainer.train(resume=resume, stop_after=stop_after)
    if dist.is_main and trainer.step >= max_steps:
        for folder in ("model", "best"):
            if (output_dir / folder).is_dir():
                tok.save_pretrained(output_dir / folder)
        summary["heldout"] = summary.get("metrics", {})
        atomic_write_text(output_dir / "summary.json", json.dumps(summary, indent=2, default=str))
    return summary
