"""Which examples each training process sees: the torchrun process group and one global data stream.

Data order is a seeded permutation per epoch, consumed as one global stream: step ``s`` always
trains on the same examples whatever the number of processes or accumulation steps, and the
stream position (:class:`Position`) is all a checkpoint needs to resume it exactly.

    >>> stream = Stream(list(range(10)), seed=3)
    >>> keys, pos = stream.take(Position(), 4)       # (stream index, epoch, dataset index) each
    >>> pos
    Position(epoch=0, offset=4, consumed=4)
"""

from __future__ import annotations

import os
import re
import sys
from dataclasses import dataclass
from typing import Any, Callable, Iterator

import numpy as np
from torch.utils.data import Dataset

__all__ = ["Dist", "init_distributed", "peer_stopped", "peer_stopped_message", "Position", "Stream", "StreamBatches", "StreamDataset"]


# ----------------------------------------------------------------------------- the process group


@dataclass
class Dist:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def enabled(self) -> bool:
        return self.world_size > 1


def init_distributed(device_type: str) -> Dist:
    """Join the torchrun process group when ``WORLD_SIZE`` > 1 (gloo on CPU, nccl on CUDA)."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return Dist()
    import torch.distributed as dist

    if not dist.is_initialized():
        dist.init_process_group(backend="nccl" if device_type == "cuda" else "gloo")
    return Dist(dist.get_rank(), dist.get_world_size(), int(os.environ.get("LOCAL_RANK", "0")))


# gloo's TCP transport, when the process at the other end of a connection is gone (it exited on its
# own error, crashed or was killed), fails the collective with a RuntimeError such as
#   [.../gloo/transport/tcp/pair.cc:553] Connection closed by peer [127.0.0.1]:58089. This is ...
# ("Connection reset by peer" / "Broken pipe" when the close races a read or write).
_PEER_GONE = re.compile(r"gloo[/\\]transport[/\\]\S*\].*\b(connection closed by peer|connection reset by peer|broken pipe)", re.I | re.S)


def peer_stopped(exc: BaseException) -> bool:
    """True when ``exc`` is a collective failing because another process of the run went away.

        >>> peer_stopped(RuntimeError("[../gloo/transport/tcp/pair.cc:553] Connection closed by peer [127.0.0.1]:58089"))
        True
        >>> peer_stopped(RuntimeError("mat1 and mat2 shapes cannot be multiplied"))
        False

    Such a process reports nothing new: the peer that stopped first printed why. Only gloo's own
    message counts (an exception it raised, or one raised ``from`` it), so other errors stay bugs.
    """
    seen: BaseException | None = exc
    for _ in range(8):  # the explicit cause chain, bounded
        if seen is None:
            break
        if isinstance(seen, RuntimeError) and _PEER_GONE.search(str(seen)):
            return True
        seen = seen.__cause__
    return False


def peer_stopped_message(exc: BaseException) -> str | None:
    """The one line a process reports when :func:`peer_stopped` holds for ``exc``, else None."""
    if not peer_stopped(exc):
        return None
    rank = os.environ.get("RANK")
    if rank is None and "torch.distributed" in sys.modules:
        import torch.distributed as dist

        rank = str(dist.get_rank()) if dist.is_available() and dist.is_initialized() else None
    who = f"rank {rank}: " if rank is not None else ""
    return f"{who}another process of this distributed run stopped (see its error above); stopping too"


# ------------------------------------------------------------------------------------ the stream


@dataclass
class Position:
    """Where the global example stream stands: ``consumed`` examples so far, at ``epoch``/``offset``."""

    epoch: int = 0
    offset: int = 0
    consumed: int = 0


class Stream:
    """The global order of training examples: epoch ``e`` is a permutation seeded by ``(seed, e)``.

    ``source`` is a dataset, or a callable ``epoch -> dataset`` for data that changes per epoch
    (fresh SOP pairs each epoch); epochs may then differ in length.
    """

    def __init__(self, source: Dataset | Callable[[int], Dataset], seed: int) -> None:
        self.source = source
        self.seed = seed
        self._cache: tuple[int, Dataset] | None = None
        self._perm: tuple[int, np.ndarray] | None = None

    def dataset(self, epoch: int) -> Dataset:
        if isinstance(self.source, Dataset) or not callable(self.source):
            return self.source  # type: ignore[return-value]
        if self._cache is None or self._cache[0] != epoch:
            self._cache = (epoch, self.source(epoch))
        return self._cache[1]

    def permutation(self, epoch: int) -> np.ndarray:
        if self._perm is None or self._perm[0] != epoch:
            n = len(self.dataset(epoch))  # type: ignore[arg-type]
            if n == 0:
                raise ValueError(f"the training dataset of epoch {epoch} is empty")
            self._perm = (epoch, np.random.default_rng([self.seed, epoch]).permutation(n))
        return self._perm[1]

    def take(self, pos: Position, count: int) -> tuple[list[tuple[int, int, int]], Position]:
        """The next ``count`` examples as ``(stream index, epoch, dataset index)`` and the new position."""
        keys: list[tuple[int, int, int]] = []
        epoch, offset, consumed = pos.epoch, pos.offset, pos.consumed
        while len(keys) < count:
            perm = self.permutation(epoch)
            if offset >= len(perm):
                epoch, offset = epoch + 1, 0
                continue
            grab = perm[offset : offset + count - len(keys)]
            keys.extend((consumed + k, epoch, int(i)) for k, i in enumerate(grab))
            offset += len(grab)
            consumed += len(grab)
        return keys, Position(epoch, offset, consumed)


class StreamBatches:
    """Batch sampler for one rank: for each optimizer step from ``start``, ``accum`` micro-batches.

    Micro-batch ``a`` of rank ``r`` is slice ``(a * world + r)`` of the global batch, so the union
    over ranks and accumulation steps is exactly the global batch of a single-process run.
    """

    def __init__(self, stream: Stream, start: Position, global_batch: int, accum: int, dist: Dist) -> None:
        self.stream, self.start = stream, start
        self.global_batch, self.accum, self.dist = global_batch, accum, dist
        self.micro = global_batch // (accum * dist.world_size)

    def __iter__(self) -> Iterator[list[tuple[int, int, int]]]:
        pos = self.start
        while True:
            keys, pos = self.stream.take(pos, self.global_batch)
            for a in range(self.accum):
                part = (a * self.dist.world_size + self.dist.rank) * self.micro
                yield keys[part : part + self.micro]


class StreamDataset(Dataset):
    """Fetches ``(stream index, epoch, i)`` keys; optionally records the stream index in the item.

    The stream index is unique per example *occurrence*, so a collator that seeds its masking from
    it masks each epoch differently and reproducibly (also in DataLoader workers, and on resume).
    """

    def __init__(self, stream: Stream, index_key: str | None) -> None:
        self.stream, self.index_key = stream, index_key

    def __len__(self) -> int:  # DataLoader only needs it for samplers we do not use
        return 0

    def __getitem__(self, key: tuple[int, int, int]) -> Any:
        stream_index, epoch, i = key
        item = self.stream.dataset(epoch)[i]
        if self.index_key is not None:
            item = dict(item)
            item[self.index_key] = stream_index
        return item
