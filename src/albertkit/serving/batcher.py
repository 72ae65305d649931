"""Dynamic batching across concurrent requests: a few worker threads share the one model.

Requests hand their preprocessed features (``Pipeline.plan``) to the :class:`Batcher`; its threads
form batches by *padded* tokens (rows x longest row <= ``max_batch_tokens``), length-aware: the
oldest waiting feature anchors each batch (so nothing starves) and the batch grows with the
waiting features of the nearest lengths, so little compute goes to padding. Features of different
pipelines or forward parameters (``top_k``, ``pooling``...) never share a batch.

On CPU several workers each run their own batch with few intra-op threads (``intra_op_threads``),
rather than one batch spread over every core: ALBERT's GEMMs at serving sizes gain little from a
second thread, and every op split across threads waits at a barrier for the slowest one, which on
a busy machine is whichever thread the kernel has just descheduled. The workers read the same
weights (inference mode mutates nothing), so the model is in memory once.

    >>> batcher = Batcher(max_batch_tokens=16384, max_concurrent_requests=512)  # doctest: +SKIP
    >>> batcher.start()                                                          # doctest: +SKIP
    >>> job = pipe.plan(["a [MASK] text"], False, {})                            # doctest: +SKIP
    >>> await batcher.submit(pipe, job)  # returns when every feature carries its outputs  # doctest: +SKIP
    >>> pipe.finish(job)                                                          # doctest: +SKIP
"""

from __future__ import annotations

import asyncio
import bisect
import logging
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Callable

from albertkit.pipelines.base import Feature, Job, Pipeline

__all__ = ["Batcher", "Overloaded", "BatchStats"]

logger = logging.getLogger(__name__)


class Overloaded(Exception):
    """More requests in flight than ``max_concurrent_requests`` (the server answers 429)."""


@dataclass
class BatchStats:
    """What one forward pass held: for the metrics."""

    sequences: int
    padded_tokens: int
    seconds: float


@dataclass
class _Request:
    pipe: Pipeline
    job: Job
    key: tuple
    loop: asyncio.AbstractEventLoop
    future: asyncio.Future
    remaining: int
    error: BaseException | None = None


@dataclass(order=True)
class _Pending:
    length: int
    seq: int  # arrival order; ties broken by age
    feature: Feature = field(compare=False)
    request: _Request = field(compare=False)


class Batcher:
    """A bounded queue of features and the one thread that runs the model on them.

    ``max_concurrent_requests`` bounds the requests admitted and not yet answered (more ->
    :class:`Overloaded`); ``max_batch_tokens`` bounds rows x longest row of one forward pass (a
    single feature longer than the budget still runs, alone). ``workers`` threads run forward
    passes side by side, each with torch's intra-op threads set to ``intra_op_threads`` (None:
    left as they are). ``on_batch`` is called after every forward pass with its
    :class:`BatchStats` (from a worker thread).
    """

    def __init__(
        self,
        max_batch_tokens: int = 16384,
        max_concurrent_requests: int = 512,
        *,
        workers: int = 1,
        intra_op_threads: int | None = None,
        on_batch: Callable[[BatchStats], None] | None = None,
    ) -> None:
        if max_batch_tokens < 1 or max_concurrent_requests < 1 or workers < 1:
            raise ValueError("max_batch_tokens, max_concurrent_requests and workers must be positive")
        self.max_batch_tokens = max_batch_tokens
        self.max_concurrent_requests = max_concurrent_requests
        self.workers = workers
        self.intra_op_threads = intra_op_threads
        self.on_batch = on_batch
        self._cond = threading.Condition()
        # Per (pipeline, forward params): waiting features sorted by (length, arrival).
        self._waiting: dict[tuple, list[_Pending]] = {}
        self._seq = 0
        self._in_flight = 0  # admitted requests not yet answered
        self._stopping = False
        self._threads: list[threading.Thread] = []

    # -- event-loop side --------------------------------------------------------------------------
    @property
    def in_flight(self) -> int:
        return self._in_flight

    @property
    def queued_features(self) -> int:
        with self._cond:
            return sum(len(v) for v in self._waiting.values())

    def admit(self) -> None:
        """Count one request in (raises :class:`Overloaded` when full); pair with :meth:`release`."""
        with self._cond:
            if self._in_flight >= self.max_concurrent_requests:
                raise Overloaded(
                    f"Model is overloaded: {self._in_flight} requests in flight, the limit is "
                    f"{self.max_concurrent_requests} (--max-concurrent-requests)"
                )
            self._in_flight += 1

    def release(self) -> None:
        with self._cond:
            self._in_flight -= 1

    async def submit(self, pipe: Pipeline, job: Job) -> None:
        """Queue ``job``'s features; returns when all carry their outputs (or raises the model's error)."""
        features = job.features
        if not features:
            return
        loop = asyncio.get_running_loop()
        key = (id(pipe), _freeze(job.forward_params))
        request = _Request(pipe, job, key, loop, loop.create_future(), remaining=len(features))
        with self._cond:
            if self._stopping:
                raise RuntimeError("the server is shutting down")
            queue = self._waiting.setdefault(key, [])
            for f in features:
                self._seq += 1
                bisect.insort(queue, _Pending(len(f), self._seq, f, request))
            self._cond.notify()
        await request.future

    # -- worker side -------------------------------------------------------------------------------
    def start(self) -> None:
        for i in range(self.workers):
            thread = threading.Thread(target=self._loop, name=f"albertkit-batcher-{i}", daemon=True)
            thread.start()
            self._threads.append(thread)

    def stop(self, timeout: float | None = None) -> None:
        """Finish the queued work, then end the worker threads (``timeout``: for all of them)."""
        with self._cond:
            self._stopping = True
            self._cond.notify_all()
        deadline = None if timeout is None else time.monotonic() + timeout
        for thread in self._threads:
            thread.join(None if deadline is None else max(0.0, deadline - time.monotonic()))

    def _loop(self) -> None:
        if self.intra_op_threads is not None:
            import torch

            # For this thread's OpenMP regions (and threads started after it; the server's own
            # threads do not run torch).
            torch.set_num_threads(self.intra_op_threads)
        while True:
            with self._cond:
                while not any(self._waiting.values()) and not self._stopping:
                    self._cond.wait()
                if not any(self._waiting.values()):
                    return  # stopping and drained
                batch = self._next_batch()
                if any(self._waiting.values()):
                    self._cond.notify()  # more work: wake another worker (submit woke only this one)
            self._run(batch)

    def _next_batch(self) -> list[_Pending]:
        """Take the batch anchored at the oldest waiting feature (caller holds the lock)."""
        key, queue = min(((k, q) for k, q in self._waiting.items() if q), key=lambda kq: min(p.seq for p in kq[1]))
        anchor = min(range(len(queue)), key=lambda i: queue[i].seq)
        lo, hi = anchor, anchor + 1  # queue[lo:hi] is the batch; sorted by length, so width = queue[hi-1]
        while True:
            grow_left = lo > 0 and (hi - lo + 1) * queue[hi - 1].length <= self.max_batch_tokens
            grow_right = hi < len(queue) and (hi - lo + 1) * queue[hi].length <= self.max_batch_tokens
            if grow_left and grow_right:  # the neighbour of the nearer length
                if queue[anchor].length - queue[lo - 1].length <= queue[hi].length - queue[anchor].length:
                    lo -= 1
                else:
                    hi += 1
            elif grow_left:
                lo -= 1
            elif grow_right:
                hi += 1
            else:
                break
        batch = queue[lo:hi]
        del queue[lo:hi]
        if not queue:
            del self._waiting[key]
        return batch

    def _run(self, batch: list[_Pending]) -> None:
        request = batch[0].request
        start = time.perf_counter()
        error: BaseException | None = None
        try:
            request.pipe.forward_batch([p.feature for p in batch], **request.job.forward_params)
        except Exception as exc:  # the model failed: every request in the batch gets the error
            logger.exception("forward pass failed for a batch of %d", len(batch))
            error = exc
        if self.on_batch is not None:
            self.on_batch(BatchStats(len(batch), len(batch) * batch[-1].length, time.perf_counter() - start))
        for p in batch:
            r = p.request
            if error is not None and r.error is None:
                r.error = error
            r.remaining -= 1
            if r.remaining == 0:
                r.loop.call_soon_threadsafe(_resolve, r.future, r.error)


def _resolve(future: asyncio.Future, error: BaseException | None) -> None:
    if future.done():  # the client went away and the handler was cancelled
        return
    if error is None:
        future.set_result(None)
    else:
        future.set_exception(error)


def _freeze(value: Any) -> Any:
    """A hashable stand-in for forward parameters (lists of target ids...)."""
    if isinstance(value, dict):
        return tuple(sorted((k, _freeze(v)) for k, v in value.items()))
    if isinstance(value, (list, tuple)):
        return tuple(_freeze(v) for v in value)
    return value
