"""Batched inference, written once: pad features into tensors, run a model over them in batches.

Every evaluation loop in albertkit (pipelines, fine-tuning evaluation, pretraining evaluation,
the trainer's eval loss) is the same three steps, and they all go through here:

    features --(length order)--> batches --pad--> tensors --model--> keep(outputs, batch, indices)

    >>> batch = pad([{"input_ids": [5, 6, 7]}, {"input_ids": [5]}], {"input_ids": 0})
    >>> batch["input_ids"].tolist()
    [[5, 6, 7], [5, 0, 0]]
    >>> order, inverse = length_order([1, 3, 2])
    >>> order, inverse
    ([1, 2, 0], [2, 0, 1])

A feature is a dict of plain lists (one window: ``[T]``, or one row per choice: ``[C, T]``) and
scalars (a label); the model sees what :func:`pad` (or the caller's own ``collate``) makes of them.
"""

from __future__ import annotations

import contextlib
from typing import Any, Callable, Mapping, Sequence, TypeVar

import torch
from torch import Tensor, nn

from albertkit.utils import pad_lists

__all__ = ["pad", "length_order", "predict"]

T = TypeVar("T")


def pad(
    features: Sequence[Mapping[str, Any]],
    pad_values: Mapping[str, int | float],
    *,
    pad_to_multiple_of: int | None = None,
) -> dict[str, Tensor]:
    """Stack the ``pad_values`` fields of ``features`` into tensors, right-padding lists.

    A list field ``[T]`` becomes ``[B, T]`` and a list of rows ``[C, T]`` becomes ``[B, C, T]``,
    padded with that field's value to the longest row (rounded up to ``pad_to_multiple_of``);
    a scalar field becomes ``[B]`` (float32 for floats, int64 otherwise). Fields missing from
    the first feature are skipped; other keys (bookkeeping) are left out.

        >>> pad([{"input_ids": [5, 6], "labels": 1}], {"input_ids": 0, "labels": -100})["labels"]
        tensor([1])
    """
    if not features:
        raise ValueError("cannot collate an empty batch")
    if pad_to_multiple_of is not None and pad_to_multiple_of < 1:
        raise ValueError(f"pad_to_multiple_of must be at least 1, got {pad_to_multiple_of}")
    batch: dict[str, Tensor] = {}
    for key, pad_value in pad_values.items():
        if key not in features[0]:
            continue
        values = [f[key] for f in features]
        first = values[0]
        if isinstance(first, list) and first and isinstance(first[0], list):  # [C, T] per feature
            rows, width = pad_lists([row for v in values for row in v], pad_value, multiple_of=pad_to_multiple_of)
            batch[key] = torch.tensor(rows).view(len(values), -1, width)
        elif isinstance(first, list):  # [T] per feature
            batch[key] = torch.tensor(pad_lists(values, pad_value, multiple_of=pad_to_multiple_of)[0])
        else:
            batch[key] = torch.tensor(values, dtype=torch.float32 if isinstance(first, float) else torch.long)
    return batch


def length_order(lengths: Sequence[int]) -> tuple[list[int], list[int]]:
    """Longest first (ties keep input order), and the inverse permutation back to input order.

    Sorting by length keeps padding small; longest first shows at once whether memory suffices.
    ``order[k]`` is the input position of the k-th item run; ``inverse[i]`` is where input ``i`` ran.
    """
    order = sorted(range(len(lengths)), key=lambda i: -lengths[i])
    inverse = [0] * len(order)
    for k, i in enumerate(order):
        inverse[i] = k
    return order, inverse


def _to_device(batch: Any, device: torch.device) -> Any:
    if isinstance(batch, Tensor):
        return batch.to(device)
    if isinstance(batch, Mapping):
        return {k: _to_device(v, device) for k, v in batch.items()}
    return batch


def predict(
    model: nn.Module,
    features: Sequence[Any],
    keep: Callable[[Any, Any, list[int]], T],
    *,
    batch_size: int,
    collate: Callable[[list[Any]], Any] | None = None,
    order: Sequence[int] | None = None,
    device: torch.device | str | None = None,
    autocast: torch.dtype | bool | None = None,
    inference_mode: bool = False,
    progress: bool = False,
    desc: str = "predict",
    forward: Callable[[Any, list[int]], Any] | None = None,
) -> list[T]:
    """Run ``model`` over ``features`` in batches of ``batch_size``, in eval mode without gradients.

    Each batch is ``collate([features[i] for i in indices])`` (torch's ``default_collate`` when
    ``collate`` is None), moved to ``device`` (default: the model's), run through
    ``forward(batch, indices)`` (default: ``model(**batch)``), and ``keep(outputs, batch, indices)``
    picks what to keep from the batch; its results come back in batch order. ``order`` is the run order of the
    features (e.g. :func:`length_order`; default: as given). ``autocast``: a dtype runs under
    autocast to it, ``False`` turns autocast off, ``None`` keeps the caller's setting.
    ``inference_mode`` uses ``torch.inference_mode`` instead of ``torch.no_grad`` (only where the
    outputs never meet autograd again, as in the pipelines). The model's train/eval mode is restored.

        >>> logits = predict(model, feats, lambda out, batch, idx: out.logits, batch_size=32, collate=collate)  # doctest: +SKIP
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be at least 1, got {batch_size}")
    if collate is None:
        from torch.utils.data import default_collate

        collate = default_collate
    device = torch.device(device) if device is not None else next(model.parameters()).device
    if order is None:
        order = range(len(features))
    if isinstance(autocast, torch.dtype):
        amp: contextlib.AbstractContextManager = torch.autocast(device.type, dtype=autocast)
    elif autocast is False:
        amp = torch.autocast(device.type, enabled=False)
    else:
        amp = contextlib.nullcontext()
    grad = torch.inference_mode() if inference_mode else torch.no_grad()
    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=len(order), desc=desc, unit="seq")
    was_training = model.training
    if was_training:  # models already in eval mode are left alone (an ONNX Runtime stand-in has no train())
        model.eval()
    kept: list[T] = []
    try:
        with grad, amp:
            for lo in range(0, len(order), batch_size):
                indices = list(order[lo : lo + batch_size])
                batch = _to_device(collate([features[i] for i in indices]), device)
                outputs = forward(batch, indices) if forward is not None else model(**batch)
                kept.append(keep(outputs, batch, indices))
                if bar is not None:
                    bar.update(len(indices))
    finally:
        if was_training:
            model.train()
        if bar is not None:
            bar.close()
    return kept
