"""``albertkit pretrain`` and ``albertkit evaluate-pretraining``.

    $ albertkit pretrain ../shared/data/corpus/ --tokenizer spiece.model --config tiny \\
          --batch-size 64 --max-steps 2000 --lr 1e-3 --output runs/mini
    $ albertkit evaluate-pretraining runs/mini/model held_out_texts/
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import tempfile
from pathlib import Path

logger = logging.getLogger(__name__)


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "pretrain",
        help="pretrain an ALBERT (MLM with n-gram masking + SOP, LAMB) on text files",
        description="Pretrain AlbertForPreTraining from raw text. Works under torchrun for several processes.",
    )
    p.add_argument("corpus", nargs="+", help="text files or folders (*.txt), or one folder made by prepare_corpus")
    tok = p.add_mutually_exclusive_group(required=True)
    tok.add_argument("--tokenizer", help="spiece.model file, tokenizer folder or hub name")
    tok.add_argument("--train-tokenizer-vocab-size", type=int, metavar="N", help="train an N-piece SentencePiece vocab on the corpus first")
    p.add_argument("--config", default="albert-base-v2", help="preset name (tiny, albert-base-v2, ...) or a config.json (default: %(default)s)")
    p.add_argument("--output", required=True, help="output folder (checkpoints, logs, final model in OUTPUT/model)")
    p.add_argument("--batch-size", type=int, default=128, help="global batch per optimizer step (default: %(default)s)")
    p.add_argument("--grad-accumulation", type=int, default=1)
    p.add_argument("--max-steps", type=int, default=10_000)
    p.add_argument("--lr", type=float, default=1.76e-3, help="peak learning rate (default: %(default)s, Google's for batch 4096)")
    p.add_argument("--warmup-steps", type=int, default=None, help="default: 2.5%% of --max-steps")
    p.add_argument("--optimizer", choices=("lamb", "adamw"), default="lamb")
    p.add_argument("--weight-decay", type=float, default=0.01, help="decoupled for adamw; never on LayerNorm/bias (default: %(default)s)")
    p.add_argument("--adam-betas", type=float, nargs=2, default=(0.9, 0.999), metavar=("B1", "B2"), help="(default: 0.9 0.999; issue #14's AdamW recipe: 0.9 0.98)")
    p.add_argument("--adam-eps", type=float, default=1e-6)
    p.add_argument(
        "--lamb-bias-correction", action="store_true",
        help="bias-correct LAMB's adapted tensors too (LayerNorm/bias tensors always are)",
    )
    p.add_argument("--max-seq-length", type=int, default=None, help="default: 128, or the model's max_position_embeddings if fewer")
    p.add_argument("--short-seq-prob", type=float, default=0.1)
    p.add_argument("--masked-lm-prob", type=float, default=0.15)
    p.add_argument("--max-predictions", type=int, default=20, help="max masked tokens per sequence")
    p.add_argument("--max-ngram", type=int, default=3)
    p.add_argument(
        "--subword-masking-steps", type=int, default=0, metavar="N",
        help="mask single pieces (not whole words) for the first N steps, then n-grams; e.g. 25%% of --max-steps",
    )
    p.add_argument("--heldout-docs", type=int, default=200, help="documents kept out of training for evaluation")
    p.add_argument("--eval-instances", type=int, default=2000, help="held-out instances per evaluation")
    p.add_argument(
        "--probe-instances", type=int, default=128,
        help="held-out instances for the plateau probes logged at each evaluation (0: none)",
    )
    p.add_argument("--fallback-encoding", default=None, help="decode non-UTF-8 lines with this encoding (e.g. cp1252) instead of failing")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--bf16", action="store_true", help="bfloat16 autocast (CPUs with AVX512-BF16/AMX, recent GPUs)")
    p.add_argument("--compile", action="store_true", help="torch.compile the model (needs a C++ compiler on CPU; first steps are slow)")
    p.add_argument("--save-every", type=int, default=500)
    p.add_argument("--eval-every", type=int, default=0, help="0: evaluate at the end only")
    p.add_argument("--log-every", type=int, default=10)
    p.add_argument("--num-workers", type=int, default=1, help="data loader processes")
    p.add_argument("--device", default=None, help="cpu, cuda, cuda:1 ... (default: cuda if available)")
    p.add_argument("--resume", action="store_true", help="continue from the latest checkpoint in --output")
    p.add_argument(
        "--stop-after", type=int, default=None, metavar="STEP",
        help="checkpoint and exit after this step (the schedule still runs to --max-steps; continue with --resume)",
    )
    p.add_argument("--init-from", default=None, help="start from these AlbertForPreTraining weights instead of random")
    p.add_argument(
        "--start-step", type=int, default=0, metavar="STEP",
        help="with --init-from: continue the schedule at STEP (data and lr) with a fresh optimizer, when its checkpoint is gone",
    )
    p.add_argument("--rewarm-steps", type=int, default=100, help="lr ramp after --start-step (default: %(default)s)")
    p.add_argument(
        "--anneal-steps", type=int, default=0, metavar="N",
        help="with --start-step: a release branch; the lr falls from the schedule's at STEP to 0 over N steps, then the run stops",
    )
    p.set_defaults(func=_pretrain)

    e = subparsers.add_parser(
        "evaluate-pretraining",
        help="masked-LM ([MASK]-only and all targets) and sentence-order loss/accuracy on held-out text",
        description="Reports masked_lm_* over all targets (80/10/10 masking) and mask_only_* over the targets "
        "shown as [MASK], the figure that says whether the model predicts from context.",
    )
    e.add_argument("model", help="model folder (AlbertForPreTraining weights) or hub name")
    e.add_argument("corpus", nargs="+", help="text files or folders, or a prepared corpus folder")
    e.add_argument("--tokenizer", default=None, help="default: the model folder's spiece.model")
    e.add_argument("--split", choices=("heldout", "train"), default="heldout", help="split of a prepared corpus (default: %(default)s)")
    e.add_argument("--max-seq-length", type=int, default=None, help="default: 128, or the model's max_position_embeddings if fewer")
    e.add_argument("--short-seq-prob", type=float, default=0.1)
    e.add_argument("--masked-lm-prob", type=float, default=0.15)
    e.add_argument("--max-predictions", type=int, default=20)
    e.add_argument(
        "--max-ngram", type=int, default=3,
        help="longest masked span in whole words (default 3, as in training; 1 = BERT-style single-word masking)",
    )
    e.add_argument(
        "--single-pieces", action="store_true",
        help="mask single SentencePiece pieces instead of whole words (BERT's subword masking; implies n = 1)",
    )
    e.add_argument(
        "--probes", type=int, default=0, metavar="N",
        help="also run the plateau probes (shuffle gap, attention on neighbours; single pieces) on the first N instances",
    )
    e.add_argument("--max-instances", type=int, default=None)
    e.add_argument("--batch-size", type=int, default=32)
    e.add_argument("--seed", type=int, default=1)
    e.add_argument("--fallback-encoding", default=None)
    e.add_argument("--device", default=None)
    e.add_argument("--output", default=None, help="also write the metrics to this JSON file")
    e.set_defaults(func=_evaluate)


def _text_files(inputs: list[str]) -> list[str]:
    files: list[str] = []
    for item in inputs:
        path = Path(item)
        if path.is_dir():
            files += sorted(str(f) for f in path.rglob("*.txt"))
        elif path.is_file():
            files.append(str(path))
        else:
            raise FileNotFoundError(f"corpus input {item} does not exist")
    if not files:
        raise ValueError(f"no .txt files in {', '.join(inputs)}")
    return files


def _pretrain(args: argparse.Namespace) -> int:
    from albertkit.pretraining.pretrain import is_prepared_corpus, pretrain

    tokenizer = args.tokenizer
    if args.train_tokenizer_vocab_size:
        if len(args.corpus) == 1 and is_prepared_corpus(args.corpus[0]):
            raise ValueError("--train-tokenizer-vocab-size needs raw text, not a prepared corpus")
        from albertkit.tokenization import train_tokenizer

        folder = Path(args.output) / "tokenizer"
        if not (folder / "spiece.model").is_file():
            logger.info("training a %d-piece tokenizer into %s", args.train_tokenizer_vocab_size, folder)
            train_tokenizer(_text_files(args.corpus), args.train_tokenizer_vocab_size, folder)
        tokenizer = folder
    summary = pretrain(
        args.corpus,
        tokenizer,
        args.config,
        args.output,
        max_steps=args.max_steps,
        batch_size=args.batch_size,
        grad_accumulation=args.grad_accumulation,
        lr=args.lr,
        warmup_steps=args.warmup_steps,
        optimizer=args.optimizer,
        weight_decay=args.weight_decay,
        adam_betas=tuple(args.adam_betas),
        adam_eps=args.adam_eps,
        lamb_bias_correction=args.lamb_bias_correction,
        subword_masking_steps=args.subword_masking_steps,
        probe_instances=args.probe_instances,
        max_seq_length=args.max_seq_length,
        short_seq_prob=args.short_seq_prob,
        masked_lm_prob=args.masked_lm_prob,
        max_predictions_per_seq=args.max_predictions,
        max_ngram=args.max_ngram,
        heldout_docs=args.heldout_docs,
        eval_instances=args.eval_instances,
        fallback_encoding=args.fallback_encoding,
        seed=args.seed,
        bf16=args.bf16,
        compile=args.compile,
        save_every=args.save_every,
        eval_every=args.eval_every,
        log_every=args.log_every,
        num_workers=args.num_workers,
        device=args.device,
        resume=args.resume,
        stop_after=args.stop_after,
        init_from=args.init_from,
        start_step=args.start_step,
        rewarm_steps=args.rewarm_steps,
        anneal_steps=args.anneal_steps,
    )
    metrics = summary.get("metrics") or {}
    if metrics:
        sys.stdout.write(json.dumps({"step": summary["step"], **metrics}, indent=2) + "\n")
    return 0


def _evaluate(args: argparse.Namespace) -> int:
    import torch

    from albertkit.checkpoint import resolve_device
    from albertkit.modeling import AlbertForPreTraining
    from albertkit.pretraining.corpus import PretrainingCorpus, prepare_corpus, tokenizer_checksum
    from albertkit.pretraining.instances import SOPDataset
    from albertkit.pretraining.masking import MaskingCollator
    from albertkit.pretraining.pretrain import DEFAULT_MAX_SEQ_LENGTH, evaluate_pretraining, is_prepared_corpus, load_tokenizer
    from albertkit.utils import check_positive
    from albertkit.utils import atomic_write_text

    from albertkit.training import seed_everything

    seed_everything(args.seed)  # a head missing from the checkpoint is initialised at random
    tok = load_tokenizer(args.tokenizer or args.model)
    device = resolve_device(args.device)
    purpose = "evaluating its masked-LM and sentence-order heads"
    model = AlbertForPreTraining.from_pretrained(args.model, require_head=purpose, device=device)
    if model.config.vocab_size != tok.vocab_size:
        raise ValueError(f"model vocab_size {model.config.vocab_size} != tokenizer vocab_size {tok.vocab_size}")
    positions = int(model.config.max_position_embeddings)
    max_seq_length = min(DEFAULT_MAX_SEQ_LENGTH, positions) if args.max_seq_length is None else args.max_seq_length
    if max_seq_length > positions:
        raise ValueError(f"--max-seq-length {max_seq_length} exceeds the model's max_position_embeddings ({positions})")
    check_positive(max_seq_length=max_seq_length, batch_size=args.batch_size, max_instances=args.max_instances,
                   max_predictions=args.max_predictions, max_ngram=args.max_ngram, masked_lm_prob=args.masked_lm_prob)
    with tempfile.TemporaryDirectory(prefix="albertkit-eval-") as tmp:
        if len(args.corpus) == 1 and is_prepared_corpus(args.corpus[0]):
            corpus = PretrainingCorpus(args.corpus[0], split=args.split)
            if corpus.tokenizer_checksum != tokenizer_checksum(tok):
                raise ValueError(f"{args.corpus[0]} was tokenised with a different tokenizer than the model's")
        else:  # raw text: every document is evaluation data
            prepare_corpus(args.corpus, tok, Path(tmp) / "corpus", fallback_encoding=args.fallback_encoding)
            corpus = PretrainingCorpus(Path(tmp) / "corpus", split="train")
        dataset = SOPDataset(corpus, max_seq_length, args.short_seq_prob, seed=args.seed, epoch=0)
        if args.max_instances is not None:
            dataset = torch.utils.data.Subset(dataset, range(min(args.max_instances, len(dataset))))
        collator = MaskingCollator(
            tok, args.masked_lm_prob, args.max_predictions, 1 if args.single_pieces else args.max_ngram, seed=args.seed,
            whole_word=not args.single_pieces,
        )
        metrics = evaluate_pretraining(model, dataset, collator, batch_size=args.batch_size, device=device, progress=True)
        if args.probes:
            from albertkit.pretraining.probes import LanguageProbes

            pieces = MaskingCollator(tok, args.masked_lm_prob, args.max_predictions, 1, seed=args.seed, whole_word=False)
            probes = LanguageProbes(pieces, dataset, max_instances=args.probes, batch_size=args.batch_size, seed=args.seed)
            metrics.update({f"probe_{k}": v for k, v in probes(model).items()})
    text = json.dumps(metrics, indent=2)
    if args.output:
        atomic_write_text(args.output, text + "\n")
    sys.stdout.write(text + "\n")
    return 0
