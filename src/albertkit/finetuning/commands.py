"""``albertkit finetune TASK`` and ``albertkit evaluate TASK``: thin shells over :mod:`albertkit.finetuning.run`.

    $ albertkit finetune rte --model albert-base-v2 --train glue/RTE --eval glue/RTE --output runs/rte
    $ albertkit evaluate squad2 --model runs/squad2/best --data squad/dev-v2.0.json --output runs/squad2/eval

SQuAD v1.1 has no train file here; split dev by article (first 24 articles in file order for
training, last 24 for evaluation):

    $ albertkit finetune squad1 --model M --train squad/dev-v1.1.json --train-articles 0:24 \
          --eval squad/dev-v1.1.json --eval-articles 24:48 --output runs/squad-half
"""

from __future__ import annotations

import argparse
import json
import sys

# Kept free of heavy imports: `albertkit --help` must stay fast.
_TASK_HELP = (
    "cola, sst2, mrpc, stsb, qqp, mnli, qnli, rte, wnli, squad1, squad2, race, ner (CoNLL), "
    "classification / regression (CSV, TSV, JSONL)"
)


def _add_common(p: argparse.ArgumentParser) -> None:
    p.add_argument("task", help=_TASK_HELP)
    p.add_argument("--model", required=True, help="model folder or hub name")
    p.add_argument("--tokenizer", default=None, help="tokenizer folder (default: the model's)")
    p.add_argument("--max-seq-length", type=int, default=None, help="default: what the model was fine-tuned with (evaluate), else the task recipe's (GLUE 128, "
                        "SQuAD 384, RACE 512), at most the model's max_position_embeddings")
    p.add_argument("--null-threshold", type=float, default=None,
                   help="SQuAD v2: fixed null-answer threshold (default: best F1 threshold on the eval data, reported as such)")
    p.add_argument("--text-column", default="text", help="classification/regression: text column")
    p.add_argument("--text-pair-column", default=None, help="classification/regression: second text column")
    p.add_argument("--label-column", default="label", help="classification/regression: label column")
    p.add_argument("--device", default=None, help="cpu, cuda, cuda:1 ... (default: cuda if available)")
    p.add_argument("--bf16", action="store_true", help="bfloat16 autocast")


def register(subparsers: argparse._SubParsersAction) -> None:
    ft = subparsers.add_parser(
        "finetune", help="fine-tune on a task (ALBERT recipe defaults, all overridable)",
        description="Fine-tune with AdamW, warmup + linear decay, clipping; keeps the best checkpoint by the "
                    "task's primary metric on --eval. Unset hyperparameters come from ALBERT's recipe for the task.",
    )
    _add_common(ft)
    ft.add_argument("--train", required=True, help="training file or folder (GLUE task folder, RACE folder, ...)")
    ft.add_argument("--eval", default=None, help="evaluation file or folder")
    ft.add_argument("--output", required=True, help="output folder (checkpoints, best/, model/, logs, predictions)")
    ft.add_argument("--lr", "--learning-rate", dest="learning_rate", type=float, default=None)
    ft.add_argument("--batch-size", type=int, default=None, help="global batch (examples per optimizer step)")
    ft.add_argument("--max-steps", type=int, default=None)
    ft.add_argument("--epochs", dest="num_epochs", type=float, default=None, help="replaces the recipe's step count")
    ft.add_argument("--warmup-steps", type=int, default=None)
    ft.add_argument("--warmup-ratio", type=float, default=None)
    ft.add_argument("--weight-decay", type=float, default=None)
    ft.add_argument("--max-grad-norm", type=float, default=None)
    ft.add_argument("--grad-accumulation", type=int, default=1)
    ft.add_argument("--eval-every", type=int, default=0, help="evaluate every N steps (0: at the end)")
    ft.add_argument("--save-every", type=int, default=0, help="checkpoint every N steps (0: at the end)")
    ft.add_argument("--eval-batch-size", type=int, default=64)
    ft.add_argument("--seed", type=int, default=42)
    ft.add_argument("--resume", action="store_true", help="continue from the latest checkpoint in --output")
    ft.add_argument("--max-train-examples", type=int, default=None, help="use only the first N training examples")
    ft.add_argument("--max-eval-examples", type=int, default=None, help="evaluate on the first N examples only")
    ft.add_argument("--train-articles", default=None, metavar="START:STOP",
                    help="SQuAD: train on articles START..STOP-1 of --train (0-based, file order), e.g. 0:24")
    ft.add_argument("--eval-articles", default=None, metavar="START:STOP",
                    help="SQuAD: evaluate on these articles of --eval, e.g. 24:48; must not overlap --train-articles "
                         "when both name the same file")
    ft.set_defaults(func=_finetune)

    ev = subparsers.add_parser("evaluate", help="official metrics of a fine-tuned model on a task's data")
    _add_common(ev)
    ev.add_argument("--data", required=True, help="evaluation file or folder")
    ev.add_argument("--output", default=None, help="folder for prediction files (official formats) and eval_results.json")
    ev.add_argument("--batch-size", type=int, default=64)
    ev.add_argument("--max-examples", type=int, default=None, help="evaluate on the first N examples only")
    ev.add_argument("--articles", default=None, metavar="START:STOP",
                    help="SQuAD: evaluate on articles START..STOP-1 of --data only (0-based, file order)")
    ev.set_defaults(func=_evaluate)


def _columns(args: argparse.Namespace):
    from albertkit.finetuning.run import TableColumns

    return TableColumns(args.text_column, args.text_pair_column, args.label_column)


def _finetune(args: argparse.Namespace) -> int:
    from albertkit.finetuning.run import finetune

    summary = finetune(
        args.task, args.model, train=args.train, eval=args.eval, output=args.output, tokenizer=args.tokenizer,
        learning_rate=args.learning_rate, batch_size=args.batch_size, max_steps=args.max_steps,
        num_epochs=args.num_epochs, warmup_steps=args.warmup_steps, warmup_ratio=args.warmup_ratio,
        weight_decay=args.weight_decay, max_grad_norm=args.max_grad_norm, max_seq_length=args.max_seq_length,
        grad_accumulation=args.grad_accumulation, eval_every=args.eval_every, eval_batch_size=args.eval_batch_size,
        save_every=args.save_every, bf16=args.bf16, seed=args.seed, resume=args.resume,
        null_threshold=args.null_threshold, columns=_columns(args), device=args.device,
        max_train_examples=args.max_train_examples, max_eval_examples=args.max_eval_examples,
        train_articles=args.train_articles, eval_articles=args.eval_articles,
    )
    sys.stdout.write(json.dumps(summary, indent=2, default=str) + "\n")
    return 0


def _evaluate(args: argparse.Namespace) -> int:
    from albertkit.finetuning.run import evaluate

    scores = evaluate(
        args.task, args.model, args.data, output=args.output, tokenizer=args.tokenizer, batch_size=args.batch_size,
        max_seq_length=args.max_seq_length, null_threshold=args.null_threshold, columns=_columns(args),
        device=args.device, bf16=args.bf16, max_examples=args.max_examples, articles=args.articles,
    )
    sys.stdout.write(json.dumps(scores, indent=2, default=str) + "\n")
    return 0
