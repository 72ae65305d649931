"""A small regression task for Trainer tests, usable in-process and as a script (subprocess, torchrun).

    python tests/train_helpers.py OUT --max-steps 12 --save-every 3 [--resume] [--sleep 0.05]
"""

from __future__ import annotations

import argparse
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn
from torch.utils.data import Dataset

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from albertkit.training import Trainer, TrainingArguments  # noqa: E402


@dataclass
class Output:
    loss: torch.Tensor
    aux_loss: torch.Tensor


class TinyRegressor(nn.Module):
    """Linear -> LayerNorm -> dropout -> Linear, MSE averaged per example (so batch splits are exact)."""

    def __init__(self, dropout: float = 0.0, sleep: float = 0.0) -> None:
        super().__init__()
        self.dense = nn.Linear(6, 8)
        self.LayerNorm = nn.LayerNorm(8)
        self.dropout = nn.Dropout(dropout)
        self.out = nn.Linear(8, 1)
        self.sleep = sleep

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> Output:
        if self.sleep:
            time.sleep(self.sleep)  # lets a test SIGKILL the run between checkpoints
        pred = self.out(self.dropout(torch.tanh(self.LayerNorm(self.dense(x))))).squeeze(-1)
        loss = ((pred - y) ** 2).mean()
        return Output(loss=loss, aux_loss=pred.abs().mean())


class Points(Dataset):
    def __init__(self, n: int = 40) -> None:
        g = torch.Generator().manual_seed(123)
        self.x = torch.randn(n, 6, generator=g)
        self.y = self.x @ torch.linspace(-1, 1, 6) + 0.1 * torch.randn(n, generator=g)

    def __len__(self) -> int:
        return len(self.x)

    def __getitem__(self, i: int) -> dict:
        return {"x": self.x[i], "y": self.y[i]}


def noisy_collate(items: list[dict]) -> dict:
    """Adds input noise seeded by each item's stream index: like dynamic masking, per occurrence."""
    xs = []
    for item in items:
        g = torch.Generator().manual_seed(1000 + int(item["index"]))
        xs.append(item["x"] + 0.05 * torch.randn(6, generator=g))
    return {"x": torch.stack(xs), "y": torch.stack([item["y"] for item in items])}


def make_trainer(out: str | Path, *, dropout: float = 0.1, sleep: float = 0.0, **overrides) -> Trainer:
    torch.manual_seed(0)
    model = TinyRegressor(dropout=dropout, sleep=sleep)
    settings = dict(
        output_dir=str(out), max_steps=12, batch_size=8, lr=0.05, warmup_steps=2, optimizer="lamb",
        log_every=2, save_every=3, progress_bar=False, seed=7,
    )
    settings.update(overrides)
    return Trainer(
        model, TrainingArguments(**settings), Points(), collate_fn=noisy_collate, index_key="index", log_outputs=("aux_loss",)
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("out")
    parser.add_argument("--max-steps", type=int, default=12)
    parser.add_argument("--save-every", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--grad-accumulation", type=int, default=1)
    parser.add_argument("--dropout", type=float, default=0.1)
    parser.add_argument("--sleep", type=float, default=0.0)
    parser.add_argument("--resume", action="store_true")
    a = parser.parse_args()
    trainer = make_trainer(
        a.out, dropout=a.dropout, sleep=a.sleep, max_steps=a.max_steps, save_every=a.save_every,
        batch_size=a.batch_size, grad_accumulation=a.grad_accumulation,
    )
    trainer.train(resume=a.resume)


if __name__ == "__main__":
    main()
