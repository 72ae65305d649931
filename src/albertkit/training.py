"""One Trainer for every task: accumulation, clipping, schedule, bf16, eval, checkpoints, resume, DDP.

The trainer only needs ``model(**batch).loss``. Data order is a seeded permutation per epoch,
consumed as one global stream (:mod:`albertkit.distributed`): step ``s`` always trains on the same examples whatever the number
of processes or accumulation steps, and a checkpoint stores the stream position, so a run that is
killed (even with SIGKILL) and resumed reaches the same weights as one that never stopped.

    >>> args = TrainingArguments(output_dir="runs/x", max_steps=1000, batch_size=64, lr=1e-3)  # doctest: +SKIP
    >>> Trainer(model, args, train_dataset, collate_fn=collator).train(resume=True)           # doctest: +SKIP

Under ``torchrun --nproc-per-node N`` the same code trains with DistributedDataParallel (gloo on
CPU, nccl on GPU); ``batch_size`` stays the global batch and each process gets ``1/N`` of it.
Only rank 0 writes files.

Output layout::

    output_dir/train_log.csv, eval_log.csv      one row per log / eval step
    output_dir/checkpoints/step-00000100/       model/ (save_pretrained), optimizer.pt,
                                                scheduler.pt, rng_state.pt, trainer_state.json
    output_dir/best/                            model with the best ``keep_best`` metric
    output_dir/model/                           the final model
"""

from __future__ import annotations

import contextlib
import csv
import dataclasses
import io
import json
import logging
import os
import random
import re
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset

from albertkit.batching import predict
from albertkit.checkpoint import load_weights, save_weights
from albertkit.distributed import Dist as _Dist
from albertkit.distributed import Position as _Position
from albertkit.distributed import Stream as _Stream
from albertkit.distributed import StreamBatches as _StreamBatches
from albertkit.distributed import StreamDataset as _StreamDataset
from albertkit.distributed import init_distributed as _init_distributed
from albertkit.fused import fuse_cpu_layers
from albertkit.optim import build_optimizer, linear_warmup_decay
from albertkit.utils import atomic_folder, atomic_write_text

__all__ = [
    "TrainingArguments",
    "Trainer",
    "TrainingStateError",
    "latest_checkpoint",
    "save_model",
    "load_model_state",
    "seed_everything",
]

logger = logging.getLogger(__name__)

CHECKPOINTS = "checkpoints"
_STEP_DIR = re.compile(r"^step-(\d+)$")


class TrainingStateError(ValueError):
    """A checkpoint that cannot be resumed (missing file, different model or batch size)."""


@dataclass
class TrainingArguments:
    """Settings of one training run.

    ``batch_size`` is the *global* batch: examples per optimizer step, summed over processes and
    accumulation steps (Google's ``train_batch_size``). Each process runs micro-batches of
    ``batch_size // (world_size * grad_accumulation)`` examples.

        >>> TrainingArguments(output_dir="out", max_steps=10, batch_size=8, grad_accumulation=2).micro_batch_size(2)
        2
    """

    output_dir: str | os.PathLike
    max_steps: int
    batch_size: int = 32
    grad_accumulation: int = 1
    lr: float = 1e-4
    warmup_steps: int = 0
    weight_decay: float = 0.01
    optimizer: str = "lamb"
    adam_betas: tuple[float, float] = (0.9, 0.999)
    adam_eps: float = 1e-6
    lamb_bias_correction: bool = False  # LAMB's adapted tensors too (LayerNorm/bias always are)
    max_grad_norm: float | None = 1.0
    bf16: bool = False
    compile: bool = False  # torch.compile the model in place (state-dict keys unchanged)
    seed: int = 42
    log_every: int = 10
    eval_every: int = 0  # 0: evaluate only at the end
    save_every: int = 0  # 0: checkpoint only at the end
    save_total_limit: int = 2  # checkpoints kept on disk (oldest removed first)
    keep_best: str | None = None  # eval metric whose best value is kept in output_dir/best
    greater_is_better: bool = True
    num_workers: int = 0
    device: str | None = None  # None: cuda:<local rank> when available, else cpu
    ddp_find_unused_parameters: bool = False
    progress_bar: bool = True

    def __post_init__(self) -> None:
        checks = {
            "max_steps": self.max_steps > 0,
            "batch_size": self.batch_size > 0,
            "grad_accumulation": self.grad_accumulation > 0,
            "lr": self.lr >= 0,
            "warmup_steps": self.warmup_steps >= 0,
            "weight_decay": self.weight_decay >= 0,
            "log_every": self.log_every >= 0,
            "eval_every": self.eval_every >= 0,
            "save_every": self.save_every >= 0,
            "save_total_limit": self.save_total_limit >= 1,
            "num_workers": self.num_workers >= 0,
            "optimizer": self.optimizer.lower() in ("lamb", "adamw"),
        }
        for name, ok in checks.items():
            if not ok:
                raise ValueError(f"TrainingArguments.{name}: invalid value {getattr(self, name)!r}")
        if self.max_grad_norm is not None and self.max_grad_norm <= 0:
            raise ValueError(f"TrainingArguments.max_grad_norm: must be > 0 or None, got {self.max_grad_norm}")
        self.adam_betas = tuple(self.adam_betas)  # type: ignore[assignment]

    def micro_batch_size(self, world_size: int = 1) -> int:
        parts = world_size * self.grad_accumulation
        if self.batch_size % parts:
            raise ValueError(
                f"batch_size {self.batch_size} is not divisible by world_size {world_size} x "
                f"grad_accumulation {self.grad_accumulation}"
            )
        return self.batch_size // parts

    def to_dict(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        data["output_dir"] = str(self.output_dir)
        data["adam_betas"] = list(self.adam_betas)
        return data


# ---------------------------------------------------------------------------------------------
# Devices


def _default_device(requested: str | None) -> torch.device:
    from albertkit.checkpoint import resolve_device

    return resolve_device(requested or None)


def _cpu_has_bf16() -> bool:
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:
        return False
    return "avx512_bf16" in flags or "amx_bf16" in flags


# ---------------------------------------------------------------------------------------------
# Model files


# The weight files of a training checkpoint: albertkit.checkpoint's, under their former names here.
save_model = save_weights
load_model_state = load_weights


def latest_checkpoint(output_dir: str | os.PathLike) -> Path | None:
    """The newest complete checkpoint folder under ``output_dir/checkpoints``, or None."""
    root = Path(output_dir) / CHECKPOINTS
    if not root.is_dir():
        return None
    found = [(int(m.group(1)), p) for p in root.iterdir() if (m := _STEP_DIR.match(p.name)) and (p / "trainer_state.json").is_file()]
    return max(found)[1] if found else None


# ---------------------------------------------------------------------------------------------
# Logs


class _CsvLog:
    """An append-only CSV whose columns are fixed by the first row; truncated on resume."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.fields: list[str] | None = None
        if path.is_file():
            with open(path, newline="") as fh:
                header = next(csv.reader(fh), None)
            self.fields = header or None

    def truncate_after(self, step: int) -> None:
        """Drop rows logged after ``step`` (by a run that was killed later than its last checkpoint)."""
        if not self.path.is_file():
            return
        with open(self.path, newline="") as fh:
            rows = list(csv.reader(fh))
        if not rows:
            return
        keep = [rows[0]] + [r for r in rows[1:] if len(r) == len(rows[0]) and r[0].isdigit() and int(r[0]) <= step]
        buf = io.StringIO()
        csv.writer(buf).writerows(keep)
        atomic_write_text(self.path, buf.getvalue())

    def write(self, row: Mapping[str, Any]) -> None:
        if self.fields is None:
            self.fields = list(row)
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with open(self.path, "w", newline="") as fh:
                csv.writer(fh).writerow(self.fields)
        with open(self.path, "a", newline="") as fh:
            csv.writer(fh).writerow([_fmt(row.get(f, "")) for f in self.fields])


def _fmt(value: Any) -> Any:
    return f"{value:.6g}" if isinstance(value, float) else value


def _tensorboard(log_dir: Path) -> Any:
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:  # tensorboard is optional
        logger.debug("tensorboard not installed; logging to CSV only")
        return None
    return SummaryWriter(str(log_dir))


class _LogWindow:
    """Sums over the steps since the last log row: loss, grad norm, extra outputs, examples, tokens, time."""

    def __init__(self, extras: int) -> None:
        self.sums = torch.zeros(2 + extras, dtype=torch.float64)  # loss, grad_norm, extras
        self.reset()

    def reset(self) -> None:
        self.sums.zero_()
        self.steps, self.examples, self.tokens, self.start = 0, 0, 0, time.perf_counter()

    def add_batch(self, batch: Any) -> None:
        """Count the real (unpadded) tokens of one micro-batch."""
        if isinstance(batch, Mapping):
            ids = batch.get("input_ids")
            if isinstance(ids, torch.Tensor):
                mask = batch.get("attention_mask")
                self.tokens += int(mask.sum()) if isinstance(mask, torch.Tensor) else ids.numel()

    def add_step(self, losses: torch.Tensor, grad_norm: float, examples: int) -> None:
        """``losses``: the step's mean loss, then its extra outputs."""
        self.sums[0] += losses[0]
        self.sums[1] += grad_norm
        self.sums[2:] += losses[1:]
        self.steps += 1
        self.examples += examples


# ---------------------------------------------------------------------------------------------
# RNG state


def seed_everything(seed: int) -> None:
    """Seed Python's, NumPy's and torch's global generators (all devices).

    Call it before anything random happens - building a model initialises its weights - so that
    two runs with one seed are identical:

        >>> seed_everything(42)
    """
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def _rng_state() -> dict[str, Any]:
    kind, keys, pos, has_gauss, gauss = np.random.get_state()
    state = {
        "python": random.getstate(),
        "numpy": [kind, torch.from_numpy(np.asarray(keys, dtype=np.int64)), pos, has_gauss, gauss],
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def _set_rng_state(state: Mapping[str, Any]) -> None:
    py = state["python"]
    random.setstate((py[0], tuple(py[1]), py[2]))
    kind, keys, pos, has_gauss, gauss = state["numpy"]
    np.random.set_state((kind, keys.numpy().astype(np.uint32), pos, has_gauss, gauss))
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


# ---------------------------------------------------------------------------------------------
# The trainer


def _to_device(batch: Any, device: torch.device) -> Any:
    if isinstance(batch, torch.Tensor):
        return batch.to(device, non_blocking=True)
    if isinstance(batch, Mapping):
        return {k: _to_device(v, device) for k, v in batch.items()}
    return batch


class Trainer:
    """Train ``model`` (``model(**batch).loss``) on ``train_dataset`` batched by ``collate_fn``.

    ``train_dataset`` is a map-style dataset or a callable ``epoch -> dataset``. With
    ``index_key`` each example gets its position in the global stream under that key before
    collation (the pretraining collator seeds its masking from it). ``eval_fn(model) -> metrics``
    runs on rank 0 every ``eval_every`` steps and at the end; without it, ``eval_dataset`` gives
    the mean ``loss``. ``log_outputs`` names extra scalar output fields to log (``masked_lm_loss``).
    ``on_save(folder)`` adds files to each saved model folder (fine-tuning writes the tokenizer).

        >>> trainer = Trainer(model, TrainingArguments("out", max_steps=100), ds, collate_fn=collate)  # doctest: +SKIP
        >>> summary = trainer.train(resume=True)                                                     # doctest: +SKIP
    """

    def __init__(
        self,
        model: nn.Module,
        args: TrainingArguments,
        train_dataset: Dataset | Callable[[int], Dataset],
        collate_fn: Callable[[list[Any]], Any] | None = None,
        eval_fn: Callable[[nn.Module], Mapping[str, float]] | None = None,
        eval_dataset: Dataset | None = None,
        index_key: str | None = None,
        log_outputs: Sequence[str] = (),
        on_save: Callable[[Path], None] | None = None,
    ) -> None:
        self.args = args
        # Called with every model folder written (best/, model/, checkpoints' model/) before it is
        # final, so that files that belong beside the weights (the tokenizer) are never missing.
        self.on_save = on_save
        self.output_dir = Path(args.output_dir)
        self.device = _default_device(args.device)
        if self.device.type == "cuda":
            torch.cuda.set_device(self.device)
        self.dist = _init_distributed(self.device.type)
        self.micro_batch = args.micro_batch_size(self.dist.world_size)
        self.model = model.to(self.device)
        if self.device.type == "cpu":
            # oneDNN's fp32 GEMMs for every Linear, forward and backward (albertkit.fused): same
            # parameters and arithmetic, ~1.4x the albert-base pretraining step on an AVX-512 EPYC
            fuse_cpu_layers(self.model)
        self.collate_fn = collate_fn
        self.eval_fn = eval_fn
        self.eval_dataset = eval_dataset
        self.index_key = index_key
        self.log_outputs = tuple(log_outputs)
        self.stream = _Stream(train_dataset, args.seed)
        self.optimizer = build_optimizer(
            model, args.optimizer, lr=args.lr, weight_decay=args.weight_decay, betas=args.adam_betas, eps=args.adam_eps,
            bias_correction=args.lamb_bias_correction,
        )
        self.scheduler = linear_warmup_decay(self.optimizer, args.warmup_steps, args.max_steps)
        self.step = 0
        self.position = _Position()
        self.best_metric: float | None = None
        self.best_step: int | None = None
        if args.bf16:
            if self.device.type == "cpu" and not _cpu_has_bf16():
                logger.warning("bf16 requested but this CPU has no native bf16 (avx512_bf16/amx); expect it to be slow")
            if self.device.type == "cuda" and not torch.cuda.is_bf16_supported():
                raise ValueError("bf16 requested but this GPU does not support bfloat16")

    # -- helpers ----------------------------------------------------------------------------

    def _autocast(self) -> contextlib.AbstractContextManager:
        if not self.args.bf16:
            return contextlib.nullcontext()
        return torch.autocast(device_type=self.device.type, dtype=torch.bfloat16)

    def _loader(self, start: _Position) -> DataLoader:
        sampler = _StreamBatches(self.stream, start, self.args.batch_size, self.args.grad_accumulation, self.dist)
        return DataLoader(
            _StreamDataset(self.stream, self.index_key),
            batch_sampler=sampler,
            collate_fn=self.collate_fn,
            num_workers=self.args.num_workers,
            pin_memory=self.device.type == "cuda",
            # Our own generator: creating the loader must not consume the global torch RNG, or a
            # resumed run's dropout would drift from the uninterrupted run's.
            generator=torch.Generator().manual_seed(self.args.seed),
            persistent_workers=False,
        )

    def _barrier(self) -> None:
        if self.dist.enabled:
            import torch.distributed as dist

            dist.barrier()

    def _all_mean(self, values: torch.Tensor) -> torch.Tensor:
        if self.dist.enabled:
            import torch.distributed as dist

            values = values.clone()
            dist.all_reduce(values)
            values /= self.dist.world_size
        return values

    # -- checkpoints ------------------------------------------------------------------------

    def _state_dict(self) -> dict[str, Any]:
        return {
            "step": self.step,
            "epoch": self.position.epoch,
            "offset": self.position.offset,
            "consumed": self.position.consumed,
            "best_metric": self.best_metric,
            "best_step": self.best_step,
            "world_size": self.dist.world_size,
            "args": self.args.to_dict(),
        }

    def _save_model(self, folder: Path) -> None:
        save_model(self._unwrapped, folder)
        if self.on_save is not None:
            self.on_save(folder)

    def save_checkpoint(self) -> Path | None:
        """Write ``checkpoints/step-N`` atomically (rank 0); every rank's RNG state goes in it."""
        rng = _rng_state()
        if self.dist.enabled:
            import torch.distributed as dist

            states: list[Any] = [None] * self.dist.world_size
            dist.all_gather_object(states, rng)
        else:
            states = [rng]
        target = self.output_dir / CHECKPOINTS / f"step-{self.step:08d}"
        if self.dist.is_main and not target.exists():
            with atomic_folder(target) as tmp:
                self._save_model(tmp / "model")
                torch.save(self.optimizer.state_dict(), tmp / "optimizer.pt")
                torch.save(self.scheduler.state_dict(), tmp / "scheduler.pt")
                torch.save({"ranks": states}, tmp / "rng_state.pt")
                # Written last: a folder with trainer_state.json is complete (the rename is atomic anyway).
                (tmp / "trainer_state.json").write_text(json.dumps(self._state_dict(), indent=2))
            self._prune_checkpoints()
            logger.info("saved checkpoint %s", target)
        self._barrier()
        return target

    def _prune_checkpoints(self) -> None:
        root = self.output_dir / CHECKPOINTS
        found = sorted((int(m.group(1)), p) for p in root.iterdir() if (m := _STEP_DIR.match(p.name)))
        for _, path in found[: max(0, len(found) - self.args.save_total_limit)]:
            shutil.rmtree(path, ignore_errors=True)

    def start_at(self, step: int, rewarm_steps: int = 0, anneal_steps: int = 0) -> None:
        """Begin at schedule step ``step`` with the current weights and a fresh optimizer.

        For continuing a run whose checkpoint (optimizer state) is gone but whose weights were kept
        (e.g. a shipped model, loaded with ``from_pretrained``): the data stream skips the
        ``step * batch_size`` examples already trained on and the learning rate is the schedule's at
        ``step``, ramped up over ``rewarm_steps`` while the fresh Adam moments settle. With
        ``anneal_steps`` the run is a release branch: the learning rate falls linearly from the
        schedule's value at ``step`` to 0 at ``step + anneal_steps`` (train with ``stop_after`` there).

            >>> trainer.start_at(6000, rewarm_steps=100); trainer.train()      # doctest: +SKIP
            >>> trainer.start_at(6000, 50, anneal_steps=500); trainer.train(stop_after=6500)  # doctest: +SKIP
        """
        if not 0 <= step < self.args.max_steps:
            raise ValueError(f"start step {step} must be in [0, max_steps={self.args.max_steps})")
        if anneal_steps < 0:
            raise ValueError(f"anneal_steps must be >= 0, got {anneal_steps}")
        self.step = int(step)
        _, self.position = self.stream.take(_Position(), self.step * self.args.batch_size)
        schedule = self.scheduler.lr_lambdas[0]
        schedule.rewarm_from, schedule.rewarm_steps = self.step, int(rewarm_steps)  # type: ignore[attr-defined]
        schedule.anneal_from, schedule.anneal_steps = self.step, int(anneal_steps)  # type: ignore[attr-defined]
        self.scheduler.last_epoch = self.step
        for group, base in zip(self.optimizer.param_groups, self.scheduler.base_lrs):
            group["lr"] = base * schedule(self.step)
        logger.info("starting at schedule step %d (%d examples skipped), re-warm %d steps%s", self.step, self.position.consumed,
                    rewarm_steps, f", lr annealed to 0 over {anneal_steps} steps" if anneal_steps else "")

    def load_checkpoint(self, folder: str | os.PathLike) -> None:
        """Restore model, optimizer, scheduler, RNG and data position from a checkpoint folder."""
        folder = Path(folder)
        try:
            state = json.loads((folder / "trainer_state.json").read_text())
        except (OSError, json.JSONDecodeError) as exc:
            raise TrainingStateError(f"{folder}: unreadable trainer_state.json ({exc})") from exc
        if state["args"]["batch_size"] != self.args.batch_size:
            raise TrainingStateError(
                f"{folder}: saved with batch_size {state['args']['batch_size']}, resuming with {self.args.batch_size}; "
                "the data position would not line up"
            )
        load_model_state(self._unwrapped, folder / "model")
        self.optimizer.load_state_dict(torch.load(folder / "optimizer.pt", map_location=self.device, weights_only=True))
        self.scheduler.load_state_dict(torch.load(folder / "scheduler.pt", weights_only=True))
        if self.scheduler.lr_lambdas[0].num_train_steps != self.args.max_steps:  # type: ignore[attr-defined]
            # A longer run from the same checkpoint: keep the restored step, use the new horizon.
            self.scheduler.lr_lambdas[0].num_train_steps = self.args.max_steps  # type: ignore[attr-defined]
            for group, base in zip(self.optimizer.param_groups, self.scheduler.base_lrs):
                group["lr"] = base * self.scheduler.lr_lambdas[0](self.scheduler.last_epoch)
        self.step = int(state["step"])
        self.position = _Position(int(state["epoch"]), int(state["offset"]), int(state["consumed"]))
        self.best_metric, self.best_step = state.get("best_metric"), state.get("best_step")
        ranks = torch.load(folder / "rng_state.pt", weights_only=True)["ranks"]
        if len(ranks) == self.dist.world_size:
            _set_rng_state(ranks[self.dist.rank])
        else:  # a different world size: data order is still exact, dropout draws are not
            logger.warning("checkpoint has %d RNG states for %d processes; reseeding", len(ranks), self.dist.world_size)
            seed_everything(self.args.seed + 1000 * self.step + self.dist.rank)
        logger.info("resumed from %s (step %d, %d examples consumed)", folder, self.step, self.position.consumed)

    @property
    def _unwrapped(self) -> nn.Module:
        return self.model.module if hasattr(self.model, "module") else self.model

    # -- evaluation -------------------------------------------------------------------------

    @torch.no_grad()
    def evaluate(self) -> dict[str, float]:
        """Run ``eval_fn`` (or the mean loss over ``eval_dataset``) on the unwrapped model."""
        model = self._unwrapped
        was_training = model.training
        model.eval()
        try:
            with self._autocast():
                if self.eval_fn is not None:
                    metrics = {k: float(v) for k, v in self.eval_fn(model).items()}
                elif self.eval_dataset is not None:
                    metrics = self._mean_eval_loss(model)
                else:
                    metrics = {}
        finally:
            model.train(was_training)
        return metrics

    def _mean_eval_loss(self, model: nn.Module) -> dict[str, float]:
        def keep(out: Any, batch: Mapping[str, Any], indices: list[int]) -> tuple[float, int]:
            n = len(next(iter(batch.values())))
            return float(out.loss) * n, n

        sums = predict(model, self.eval_dataset, keep, batch_size=self.micro_batch, collate=self.collate_fn,  # type: ignore[arg-type]
                       device=self.device)
        total, count = 0.0, 0
        for loss, n in sums:
            total += loss
            count += n
        return {"loss": total / max(count, 1)}

    def _run_eval(self, eval_log: _CsvLog, tb: Any) -> dict[str, float]:
        metrics: dict[str, float] = {}
        if self.dist.is_main and (self.eval_fn is not None or self.eval_dataset is not None):
            metrics = self.evaluate()
            logger.info("eval step %d: %s", self.step, "  ".join(f"{k} {v:.4f}" for k, v in metrics.items()))
            eval_log.write({"step": self.step, **metrics})
            if tb is not None:
                for k, v in metrics.items():
                    tb.add_scalar(f"eval/{k}", v, self.step)
            key = self.args.keep_best
            if key is not None:
                if key not in metrics:
                    raise ValueError(f"keep_best metric {key!r} is not among the eval metrics {sorted(metrics)}")
                value = metrics[key]
                better = self.best_metric is None or (
                    value > self.best_metric if self.args.greater_is_better else value < self.best_metric
                )
                if better:
                    self.best_metric, self.best_step = value, self.step
                    self._save_model(self.output_dir / "best")
                    logger.info("new best %s %.4f at step %d", key, value, self.step)
        self._barrier()
        return metrics

    # -- the loop ---------------------------------------------------------------------------

    def train(self, resume: bool | str | os.PathLike = False, stop_after: int | None = None) -> dict[str, Any]:
        """Train to ``args.max_steps`` (or stop early after step ``stop_after``, to continue later).

        ``resume=True`` continues from the latest checkpoint in ``output_dir`` if there is one;
        a path names a checkpoint folder. Returns a summary (step, last train loss, last metrics).
        """
        args = self.args
        checkpoint: Path | None = None
        if resume:
            checkpoint = Path(resume) if not isinstance(resume, bool) else latest_checkpoint(self.output_dir)
            if checkpoint is None:
                logger.info("no checkpoint in %s; starting from scratch", self.output_dir)
        if checkpoint is not None:
            self.load_checkpoint(checkpoint)
        elif latest_checkpoint(self.output_dir) is not None:
            raise TrainingStateError(
                f"{self.output_dir} already holds checkpoints of another run; resume it or choose a new output folder"
            )
        else:
            seed_everything(args.seed + self.dist.rank)

        if args.compile and not getattr(self, "_compiled", False):
            # In place (nn.Module.compile), so checkpoints keep HF key names. Batches of varying
            # shape recompile once and then run dynamic-shape kernels; pretrain() avoids that by
            # padding every batch to one shape (MaskingCollator static_shapes). On 2 CPU cores
            # this fuses the elementwise ops around each matmul: about 1.15x per step for
            # albert-mini-en at 64x128 on top of bf16.
            self._unwrapped.compile()
            self._compiled = True
        if self.dist.enabled and not isinstance(self.model, nn.parallel.DistributedDataParallel):
            self.model = nn.parallel.DistributedDataParallel(
                self.model,
                device_ids=[self.device.index] if self.device.type == "cuda" else None,
                find_unused_parameters=args.ddp_find_unused_parameters,
            )
        train_log = _CsvLog(self.output_dir / "train_log.csv")
        eval_log = _CsvLog(self.output_dir / "eval_log.csv")
        tb = None
        if self.dist.is_main:
            self.output_dir.mkdir(parents=True, exist_ok=True)
            train_log.truncate_after(self.step)
            eval_log.truncate_after(self.step)
            tb = _tensorboard(self.output_dir / "tensorboard")
            atomic_write_text(self.output_dir / "training_args.json", json.dumps(args.to_dict(), indent=2))

        end = args.max_steps if stop_after is None else min(args.max_steps, stop_after)
        params = [p for p in self.model.parameters() if p.requires_grad]
        self.model.train()
        batches = iter(self._loader(self.position))
        bar = None
        if self.dist.is_main and args.progress_bar:
            from tqdm.auto import tqdm

            bar = tqdm(total=args.max_steps, initial=self.step, desc="train", unit="step", dynamic_ncols=True)
        window = _LogWindow(len(self.log_outputs))
        last_metrics: dict[str, float] = {}
        last_loss = logged_loss = float("nan")
        evaluated_at = saved_at = -1
        try:
            while self.step < end:
                sums = torch.zeros(1 + len(self.log_outputs), dtype=torch.float64)
                for micro in range(args.grad_accumulation):
                    batch = _to_device(next(batches), self.device)
                    sync = micro == args.grad_accumulation - 1
                    # Skip DDP's all-reduce on all but the last micro-batch of a step.
                    no_sync = self.model.no_sync() if self.dist.enabled and not sync else contextlib.nullcontext()
                    with no_sync:
                        with self._autocast():
                            out = self.model(**batch)
                        loss = out.loss
                        if not torch.isfinite(loss.detach()):
                            raise FloatingPointError(
                                f"loss is {float(loss)} at step {self.step}; lower --lr or raise --warmup-steps"
                            )
                        (loss / args.grad_accumulation).backward()
                    sums[0] += float(loss.detach())
                    for k, name in enumerate(self.log_outputs, start=1):
                        value = getattr(out, name, None)
                        sums[k] += float(value.detach()) if value is not None else float("nan")
                    window.add_batch(batch)
                max_norm = args.max_grad_norm if args.max_grad_norm is not None else float("inf")
                grad_norm = torch.nn.utils.clip_grad_norm_(params, max_norm)
                lr = self.optimizer.param_groups[0]["lr"]
                self.optimizer.step()
                self.scheduler.step()
                self.optimizer.zero_grad(set_to_none=True)
                _, self.position = self.stream.take(self.position, args.batch_size)
                self.step += 1
                sums /= args.grad_accumulation
                last_loss = float(sums[0])
                window.add_step(sums, float(grad_norm), args.batch_size)
                if bar is not None:
                    bar.update(1)
                if args.log_every and (self.step % args.log_every == 0 or self.step == end):
                    means = self._all_mean(window.sums / window.steps)
                    seconds = time.perf_counter() - window.start
                    tokens = float(self._all_mean(torch.tensor([float(window.tokens)]))[0]) * self.dist.world_size
                    row = {
                        "step": self.step,
                        "epoch": self.position.epoch,
                        "examples": self.position.consumed,
                        "lr": lr,
                        "loss": float(means[0]),
                        **{name: float(means[k]) for k, name in enumerate(self.log_outputs, start=2)},
                        "grad_norm": float(means[1]),
                        "examples_per_s": window.examples / seconds,
                        "tokens_per_s": tokens / seconds,
                    }
                    logged_loss = row["loss"]
                    if self.dist.is_main:
                        train_log.write(row)
                        if tb is not None:
                            for k, v in row.items():
                                if k != "step":
                                    tb.add_scalar(f"train/{k}", v, self.step)
                        text = f"loss {row['loss']:.4f} lr {lr:.3g} gnorm {row['grad_norm']:.3f}"
                        if bar is not None:
                            bar.set_postfix_str(text)
                        logger.info("step %d/%d %s %.0f tok/s", self.step, args.max_steps, text, row["tokens_per_s"])
                    window.reset()
                if args.eval_every and self.step % args.eval_every == 0:
                    last_metrics = self._run_eval(eval_log, tb) or last_metrics
                    evaluated_at = self.step
                if args.save_every and self.step % args.save_every == 0:
                    self.save_checkpoint()
                    saved_at = self.step
            if self.step >= args.max_steps and evaluated_at != self.step:
                last_metrics = self._run_eval(eval_log, tb) or last_metrics
            if saved_at != self.step:
                self.save_checkpoint()
            if self.step >= args.max_steps and self.dist.is_main:
                self._save_model(self.output_dir / "model")
                logger.info("final model saved to %s", self.output_dir / "model")
            self._barrier()
        finally:
            if bar is not None:
                bar.close()
            if tb is not None:
                tb.close()
        # "loss": the last logged value (the mean over its logging window, as the progress bar and
        # train_log.csv show it), not the last step's alone, which disagreed with both.
        loss = logged_loss if logged_loss == logged_loss else last_loss
        return {"step": self.step, "loss": loss, "metrics": last_metrics, "best_metric": self.best_metric}
