"""Fine-tuning: albertkit's Trainer vs transformers' Trainer, the same run on both, metric and wall time.

Both sides get exactly the same inputs:

- initial weights: one albertkit model (the checkpoint of ``--model`` with a freshly initialised task
  head, under ``torch.manual_seed(--seed)``; or a random model when no ``--model`` is given) whose
  state dict is copied into transformers' class of the same name;
- tokenized features: albertkit's readers and feature code (``albertkit.finetuning``) run once, and
  both trainers batch them with the same collator;
- hyperparameters: AdamW (torch), lr, betas, eps, weight decay (not on biases and LayerNorm, each
  trainer's own grouping; checked equal below), batch, steps, max_grad_norm, seed, and the schedule
  of ALBERT's recipe: linear warmup, then linear decay counted from step 0 (Google's
  ``create_optimizer``). transformers' ``"linear"`` schedule decays from the end of warmup instead,
  so its Trainer gets albertkit's schedule function through ``create_scheduler``
  (``--hf-schedule`` keeps transformers' own);
- data order: ``--order same`` (default) feeds transformers the exact example stream albertkit's
  Trainer draws (a seeded permutation per epoch) through a sequential sampler, so the two runs see
  the same batches; ``--order own`` lets each trainer shuffle with its own RNG.

Dropout draws still differ (each trainer seeds torch its own way), so the losses agree closely
but not bitwise; with ``--no-dropout`` they should agree to float rounding. The dev metric is
computed for both models by one code path (albertkit's prediction + official metric code), so a
difference in it comes from training. Each trainer writes one checkpoint at the end (albertkit:
``checkpoints/step-N`` + ``model/``; transformers: ``checkpoint-N``), inside the timed region.

Wall time = building the Trainer + ``train()``; with ``--repeats N`` the two trainers alternate
(A, B, A, B, ...) from the same initial weights and the median is reported, so load from other
processes on the shared cores hits both alike.

    python bench/bench_finetune.py --model runs/mini/best --task rte           # RTE train -> dev
    python bench/bench_finetune.py --model runs/mini/best --task squad1         # SQuAD v1.1 articles 0:24 -> 24:48
    python bench/bench_finetune.py --quick                                      # random model, a few steps
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

# Idle OpenMP threads sleep instead of spinning: on shared cores a spinning thread burns the CPU the
# other one needs, and the CPU-time column would count the spinning. Must be set before torch loads.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import torch  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "src"))

SHARED = REPO.parent / "shared" / "data"

# Data used when --train / --eval are not given. SQuAD has no train file here: the v1.1 dev file is
# split by article, first 24 (file order) for training, last 24 for evaluation; the CS224N v2 subset likewise 8/8.
DEFAULT_DATA = {
    "squad1": (SHARED / "squad/dev-v1.1.json", "0:24", SHARED / "squad/dev-v1.1.json", "24:48"),
    "squad2": (SHARED / "squad/dev-v2.0.cs224n-subset.json", "0:8", SHARED / "squad/dev-v2.0.cs224n-subset.json", "8:16"),
    "race": (SHARED / "race/RACE/train", None, SHARED / "race/RACE/dev", None),
}
GLUE_FOLDERS = {"cola": "CoLA", "sst2": "SST-2", "mrpc": "MRPC", "stsb": "STS-B", "qnli": "QNLI", "rte": "RTE", "wnli": "WNLI"}


def _parse(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--task", default="rte", help="a GLUE task (rte, mrpc, ...), squad1, squad2 or race (default rte)")
    p.add_argument("--model", default=None, help="checkpoint folder; default: a random 4-layer, 256-wide ALBERT")
    p.add_argument("--tokenizer", default=None, help="default: the model folder's if it has spiece.model, else ../shared/data/albert-base-v2")
    p.add_argument("--train", default=None, help="training data (default: the task's file under ../shared/data)")
    p.add_argument("--eval", default=None, help="evaluation data (default: the task's dev file)")
    p.add_argument("--train-articles", default=None, help="SQuAD article range for training (default 0:24 / 0:8)")
    p.add_argument("--eval-articles", default=None, help="SQuAD article range for evaluation (default 24:48 / 8:16)")
    p.add_argument("--max-train-examples", type=int, default=None, help="first N training examples (default: all)")
    p.add_argument("--max-eval-examples", type=int, default=None, help="first N eval examples (default: all)")
    p.add_argument("--max-seq-length", type=int, default=None, help="default: 128 (GLUE), 256 (SQuAD), 256 (RACE)")
    p.add_argument("--steps", type=int, default=None, help="default 150 (--quick: 12)")
    p.add_argument("--batch-size", type=int, default=None, help="default 16 (--quick: 8)")
    p.add_argument("--lr", type=float, default=None, help="default: the ALBERT recipe's for the task")
    p.add_argument("--warmup-steps", type=int, default=None, help="default: 10%% of --steps")
    p.add_argument("--weight-decay", type=float, default=0.01)
    p.add_argument("--max-grad-norm", type=float, default=1.0)
    p.add_argument("--adam-eps", type=float, default=1e-6, help="ALBERT's recipe uses 1e-6 (transformers' default is 1e-8)")
    p.add_argument("--seed", type=int, default=42)
    p.add_argument("--eval-batch-size", type=int, default=64)
    p.add_argument("--order", choices=("same", "own"), default="same", help="data order (see the module docstring)")
    p.add_argument("--hf-schedule", action="store_true", help="transformers' own 'linear' schedule instead of ALBERT's")
    p.add_argument("--no-dropout", action="store_true", help="set every dropout to 0 (exact-trajectory check)")
    p.add_argument("--repeats", type=int, default=1, help="alternating runs per trainer; wall time is the median")
    p.add_argument("--device", default=None, help="cpu / cuda (default: cuda if available)")
    p.add_argument("--threads", type=int, default=None,
                   help="torch intra-op threads (default: torch's); 1 is steadier on cores other processes load")
    p.add_argument("--output", default=None, help="folder for both runs' outputs (default: a temporary folder)")
    p.add_argument("--json", default=None, help="also write the results as JSON here")
    p.add_argument("--quick", action="store_true",
                   help="development run: 12 steps of 8, 64 train / 64 eval examples, sequences of 128 (explicit options win)")
    args = p.parse_args(argv)
    if args.quick:
        args.steps = args.steps or 12
        args.batch_size = args.batch_size or 8
        args.max_train_examples = args.max_train_examples or 64
        args.max_eval_examples = args.max_eval_examples or 64
        args.max_seq_length = args.max_seq_length or 128
    args.steps = args.steps or 150
    args.batch_size = args.batch_size or 16
    return args


def _data_paths(args: argparse.Namespace, key: str) -> tuple[Any, Any, Any, Any]:
    if key in DEFAULT_DATA:
        train, train_art, dev, dev_art = DEFAULT_DATA[key]
    elif key in GLUE_FOLDERS:
        train = dev = SHARED / "glue" / GLUE_FOLDERS[key]
        train_art = dev_art = None
    else:
        train = dev = None
        train_art = dev_art = None
    train = args.train or train
    dev = args.eval or dev
    if train is None or dev is None:
        raise SystemExit(f"--train and --eval are required for task {key}")
    if key in ("squad1", "squad2"):
        train_art = args.train_articles or (train_art if args.train is None else None)
        dev_art = args.eval_articles or (dev_art if args.eval is None else None)
    return train, train_art, dev, dev_art


def _random_config(head: dict[str, Any]) -> Any:
    from albertkit import AlbertConfig

    # The shape of the mini model albertkit pretrains on 2 cores (4 layers, hidden 256, E 64).
    return AlbertConfig.from_name("albert-base-v2").replace(
        hidden_size=256, num_hidden_layers=4, num_attention_heads=4, intermediate_size=1024, embedding_size=64,
        hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0, **head,
    )


def _decay_split(model: torch.nn.Module, decayed: set[str]) -> tuple[int, int]:
    n_decay = sum(p.numel() for n, p in model.named_parameters() if n in decayed)
    return n_decay, sum(p.numel() for p in model.parameters()) - n_decay


class _Timer:
    """Wall seconds, and CPU seconds of this process (all threads): the CPU figure moves less when
    other processes load the shared cores."""

    def __enter__(self) -> "_Timer":
        self.t0, self.c0 = time.perf_counter(), time.process_time()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.seconds = time.perf_counter() - self.t0
        self.cpu_seconds = time.process_time() - self.c0


def main(argv: list[str] | None = None) -> dict[str, Any]:
    args = _parse(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    import transformers

    from albertkit import AlbertTokenizer
    from albertkit.finetuning import features as F
    from albertkit.finetuning.kinds import EvalData, get_task, task_key
    from albertkit.finetuning.run import TableColumns, _predict, check_article_split, primary_metric
    from albertkit.finetuning.readers import parse_article_range
    from albertkit.optim import WarmupLinearDecay, build_optimizer
    from albertkit.training import Trainer as AkTrainer
    from albertkit.training import TrainingArguments as AkArgs
    from albertkit.training import _Position, _Stream

    transformers.logging.set_verbosity_error()
    key = task_key(args.task)
    spec = get_task(key)
    if key in ("ner", "classification", "regression"):
        raise SystemExit(f"bench_finetune covers GLUE, SQuAD and RACE tasks, not {key}")
    defaults = spec.defaults
    lr = args.lr if args.lr is not None else defaults.learning_rate
    warmup = args.warmup_steps if args.warmup_steps is not None else int(0.1 * args.steps)
    max_len = args.max_seq_length or (128 if key not in ("squad1", "squad2", "race") else 256)
    device = torch.device(args.device or ("cuda" if torch.cuda.is_available() else "cpu"))

    # -- data, once ------------------------------------------------------------------------------
    train_path, train_art, dev_path, dev_art = _data_paths(args, key)
    if key in ("squad1", "squad2"):
        check_article_split(train_path, train_art, dev_path, dev_art)
    tok_source = args.tokenizer or (args.model if args.model and (Path(args.model) / "spiece.model").is_file()
                                    else str(SHARED / "albert-base-v2"))
    tokenizer = AlbertTokenizer.from_pretrained(str(tok_source))
    cols = TableColumns()
    t_data = time.perf_counter()
    train_ex = spec.read(train_path, "train", cols, None, True, parse_article_range(train_art))[: args.max_train_examples]
    label_list = spec.label_list(train_ex, None)
    dev_ex = spec.read(dev_path, "dev", cols, label_list, False, parse_article_range(dev_art))[: args.max_eval_examples]
    train_feats = spec.encode(train_ex, tokenizer, label_list, max_len, training=True)
    dev_data = EvalData(dev_ex, spec.encode(dev_ex, tokenizer, label_list, max_len, training=False))
    data_seconds = time.perf_counter() - t_data

    # -- initial weights, once -------------------------------------------------------------------
    head = spec.head_config(label_list)
    torch.manual_seed(args.seed)
    if args.model:
        overrides = dict(head)
        if args.no_dropout:
            overrides.update(hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0, classifier_dropout_prob=0.0)
        initial = spec.model_class.from_pretrained(args.model, **overrides)
    else:
        cfg = _random_config(head)
        if args.no_dropout:
            cfg = cfg.replace(classifier_dropout_prob=0.0)
        initial = spec.model_class(cfg)
    init_state = {k: v.detach().clone() for k, v in initial.state_dict().items()}
    config_dict = initial.config.to_dict()
    cls_name = type(initial).__name__

    def fresh_albertkit() -> torch.nn.Module:
        model = spec.model_class(initial.config)
        model.load_state_dict(init_state)
        return model

    def fresh_transformers() -> torch.nn.Module:
        hf_cfg = transformers.AlbertConfig(**config_dict)
        model = getattr(transformers, cls_name)(hf_cfg)
        missing, unexpected = model.load_state_dict(init_state, strict=False)
        # Tied decoder weights and buffers may be absent from a state dict; nothing else may be.
        bad = [k for k in missing if not k.endswith(("position_ids", "decoder.weight", "decoder.bias"))]
        if bad or unexpected:
            raise RuntimeError(f"weights did not transfer to transformers' {cls_name}: missing {bad}, unexpected {unexpected}")
        return model

    # -- the stream albertkit's Trainer draws, for --order same ------------------------------
    n_examples = args.steps * args.batch_size
    keys, _ = _Stream(train_feats, args.seed).take(_Position(), n_examples)
    ordered = [train_feats[i] for _, _, i in keys]

    root = Path(args.output) if args.output else Path(tempfile.mkdtemp(prefix="bench_finetune_"))

    def run_albertkit(tag: str) -> tuple[torch.nn.Module, _Timer, dict[int, float]]:
        model = fresh_albertkit()
        out = root / f"albertkit-{tag}"
        shutil.rmtree(out, ignore_errors=True)  # a rerun of the bench replaces its own earlier outputs
        with _Timer() as t:
            trainer = AkTrainer(
                model,
                AkArgs(output_dir=out, max_steps=args.steps, batch_size=args.batch_size, lr=lr, warmup_steps=warmup,
                       weight_decay=args.weight_decay, optimizer="adamw", adam_eps=args.adam_eps,
                       max_grad_norm=args.max_grad_norm, seed=args.seed, log_every=10, progress_bar=False,
                       device=str(device)),
                train_feats, collate_fn=F.collate,
            )
            trainer.train()
        import csv

        with open(out / "train_log.csv", newline="") as fh:
            losses = {int(r["step"]): float(r["loss"]) for r in csv.DictReader(fh)}
        return trainer.model, t, losses

    class _HFTrainer(transformers.Trainer):
        def create_scheduler(self, num_training_steps: int, optimizer: Any = None) -> Any:
            if args.hf_schedule:
                return super().create_scheduler(num_training_steps, optimizer)
            if self.lr_scheduler is None:
                self.lr_scheduler = torch.optim.lr_scheduler.LambdaLR(
                    optimizer or self.optimizer, WarmupLinearDecay(warmup, num_training_steps))
            return self.lr_scheduler

    def run_transformers(tag: str) -> tuple[torch.nn.Module, _Timer, dict[int, float]]:
        model = fresh_transformers()
        out = root / f"transformers-{tag}"
        shutil.rmtree(out, ignore_errors=True)
        hf_args = transformers.TrainingArguments(
            output_dir=str(out), max_steps=args.steps, per_device_train_batch_size=args.batch_size,
            learning_rate=lr, warmup_steps=warmup, weight_decay=args.weight_decay, adam_beta1=0.9, adam_beta2=0.999,
            adam_epsilon=args.adam_eps, optim="adamw_torch", max_grad_norm=args.max_grad_norm, lr_scheduler_type="linear",
            seed=args.seed, logging_strategy="steps", logging_steps=10, save_strategy="steps", save_steps=args.steps,
            report_to="none", disable_tqdm=True, remove_unused_columns=False, dataloader_num_workers=0,
            use_cpu=device.type == "cpu",
            train_sampling_strategy="sequential" if args.order == "same" else "random",
        )
        with _Timer() as t:
            trainer = _HFTrainer(model=model, args=hf_args, train_dataset=ordered if args.order == "same" else train_feats,
                                 data_collator=F.collate)
            trainer.remove_callback(transformers.trainer_callback.PrinterCallback)  # its log dicts on stdout
            trainer.train()
        # Both trainers log the mean loss of the steps since their last log line.
        losses = {int(h["step"]): float(h["loss"]) for h in trainer.state.log_history if "loss" in h}
        return trainer.model, t, losses

    # The two trainers' weight-decay groups must be the same tensors (the same hyperparameter).
    probe = fresh_albertkit()
    decay_group = build_optimizer(probe, "adamw", lr=lr, weight_decay=args.weight_decay).param_groups[0]
    assert decay_group["weight_decay"] == args.weight_decay
    ak_names = {n for n, p in probe.named_parameters() if any(p is q for q in decay_group["params"])}
    hf_probe = fresh_transformers()
    # get_decay_parameter_names reads only the model; tied copies are dropped by named_parameters().
    hf_names = set(transformers.Trainer.get_decay_parameter_names(None, hf_probe)) & {n for n, _ in hf_probe.named_parameters()}  # type: ignore[arg-type]
    decay_same = ak_names == hf_names
    if not decay_same:
        print(f"WARNING weight-decay groups differ: only albertkit {sorted(ak_names - hf_names)[:5]}, "
              f"only transformers {sorted(hf_names - ak_names)[:5]}", flush=True)

    runners = {"albertkit": run_albertkit, "transformers": run_transformers}
    times: dict[str, list[float]] = {k: [] for k in runners}
    cpu_times: dict[str, list[float]] = {k: [] for k in runners}
    first: dict[str, tuple[torch.nn.Module, dict[int, float]]] = {}
    for r in range(args.repeats):
        for name, fn in runners.items():
            model, timer, losses = fn(str(r))
            times[name].append(timer.seconds)
            cpu_times[name].append(timer.cpu_seconds)
            if name not in first:
                first[name] = (model, losses)
            print(f"  {name:12s} run {r + 1}/{args.repeats}: {timer.seconds:.1f} s wall, {timer.cpu_seconds:.1f} s CPU", flush=True)

    metric = primary_metric(key)
    results: dict[str, Any] = {}
    for name, (model, losses) in first.items():
        with _Timer() as t:
            scores, _ = spec.score(dev_data, _predict(model.eval(), dev_data.features, args.eval_batch_size), label_list, None)
        results[name] = {
            "train_seconds": statistics.median(times[name]), "train_seconds_all": times[name],
            "train_cpu_seconds": statistics.median(cpu_times[name]), "train_cpu_seconds_all": cpu_times[name],
            "eval_seconds": t.seconds, "train_loss_by_step": losses,
            **{k: v for k, v in scores.items() if isinstance(v, (int, float)) and not isinstance(v, bool)},
        }
    ak, hf = results["albertkit"], results["transformers"]
    ratio = hf["train_seconds"] / ak["train_seconds"]
    cpu_ratio = hf["train_cpu_seconds"] / ak["train_cpu_seconds"]
    common = sorted(set(ak["train_loss_by_step"]) & set(hf["train_loss_by_step"]))
    n_loss = len(common)
    loss_gap = max((abs(ak["train_loss_by_step"][s] - hf["train_loss_by_step"][s]) for s in common), default=float("nan"))
    last_step = common[-1] if common else None
    # Binomial noise of an accuracy difference between two models on the same n examples, as a
    # yardstick for "the same metric within noise" (an upper bound: the two predictions correlate).
    acc_se = None
    if "accuracy" in ak and len(dev_ex):
        p_mean = (ak["accuracy"] + hf["accuracy"]) / 2
        acc_se = (2 * p_mean * (1 - p_mean) / len(dev_ex)) ** 0.5
    summary = {
        "task": key, "model": args.model or "random 4-layer 256-wide ALBERT (seeded)", "device": str(device),
        "torch_threads": torch.get_num_threads(), "train": str(train_path), "train_articles": train_art,
        "eval": str(dev_path), "eval_articles": dev_art, "train_examples": len(train_ex), "train_features": len(train_feats),
        "eval_examples": len(dev_ex), "max_seq_length": max_len, "steps": args.steps, "batch_size": args.batch_size,
        "lr": lr, "warmup_steps": warmup, "weight_decay": args.weight_decay, "adam_eps": args.adam_eps,
        "max_grad_norm": args.max_grad_norm, "seed": args.seed, "order": args.order,
        "schedule": "transformers linear (decay from warmup end) for transformers" if args.hf_schedule else "ALBERT (Google) warmup + linear decay from step 0, both",
        "dropout": "off" if args.no_dropout else "model config", "repeats": args.repeats,
        "decay_groups_identical": decay_same, "data_seconds": data_seconds, "primary_metric": metric,
        "albertkit": ak, "transformers": hf, "wall_time_ratio_transformers_over_albertkit": ratio,
        "cpu_time_ratio_transformers_over_albertkit": cpu_ratio, "accuracy_difference_se": acc_se,
        "max_abs_loss_gap_10_step_means": loss_gap, "loss_windows_compared": n_loss, "outputs": str(root),
    }

    shown = [m for m in (metric, "accuracy", "f1", "exact_match", "matthews_correlation", "pearson", "spearman",
                         "HasAns_f1", "NoAns_f1", "accuracy_middle", "accuracy_high") if m in ak]
    shown = list(dict.fromkeys(shown))
    print(f"\nfine-tuning {key}: {len(train_ex)} train examples ({len(train_feats)} features), {len(dev_ex)} eval, "
          f"{args.steps} steps x batch {args.batch_size}, lr {lr:g}, warmup {warmup}, seq {max_len}, {device}, "
          f"{torch.get_num_threads()} threads, order {args.order}")
    print(f"model: {summary['model']}; weight-decay groups identical: {decay_same}")
    header = f"| trainer | {' | '.join(shown)} | train wall s | train CPU s | eval s | loss at step {last_step} |"
    print(header)
    print("|" + "---|" * (header.count("|") - 1))
    for name in ("albertkit", "transformers"):
        r = results[name]
        last = r["train_loss_by_step"][last_step] if last_step is not None else float("nan")
        print(f"| {name} | {' | '.join(f'{r[m]:.4f}' for m in shown)} | {r['train_seconds']:.1f} | "
              f"{r['train_cpu_seconds']:.1f} | {r['eval_seconds']:.1f} | {last:.4f} |")
    print(f"wall-time ratio transformers / albertkit: {ratio:.2f}x, CPU-time ratio {cpu_ratio:.2f}x "
          f"(medians of {args.repeats}); max |loss gap| over {n_loss} 10-step windows: {loss_gap:.2e}")
    if acc_se is not None:
        print(f"accuracy difference {ak['accuracy'] - hf['accuracy']:+.4f} (binomial noise of a difference: +-{acc_se:.4f} one s.d.)")
    if args.json:
        Path(args.json).write_text(json.dumps(summary, indent=2) + "\n")
    return summary


if __name__ == "__main__":
    main()
