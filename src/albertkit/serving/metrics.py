"""Prometheus metrics of one server (a registry of its own, so several apps can live in one process).

prometheus_client writes the text exposition format (HELP/TYPE lines, label escaping, cumulative
histogram buckets with ``+Inf``, ``_sum``/``_count``) the way Prometheus parses it; that is the
whole reason for the dependency, which is pure Python and part of the ``serve`` extra.
"""

from __future__ import annotations

from typing import Callable

__all__ = ["ServerMetrics"]

_LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
_BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512)
_TOKEN_BUCKETS = (16, 64, 256, 1024, 2048, 4096, 8192, 16384, 32768, 65536)


class ServerMetrics:
    """Request counts by route and status, latency and batch histograms, queue gauges."""

    def __init__(self, queue_size: Callable[[], float], in_flight: Callable[[], float]) -> None:
        from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, disable_created_metrics

        disable_created_metrics()  # no *_created series: they double the output and no dashboard reads them

        self.registry = CollectorRegistry()
        self.requests = Counter(
            "albertkit_requests", "HTTP requests answered, by route and status", ["route", "status"], registry=self.registry
        )
        self.latency = Histogram(
            "albertkit_request_duration_seconds", "Time from request to response, by route", ["route"],
            buckets=_LATENCY_BUCKETS, registry=self.registry,
        )
        self.batch_size = Histogram(
            "albertkit_batch_size", "Sequences per forward pass", buckets=_BATCH_BUCKETS, registry=self.registry
        )
        self.batch_tokens = Histogram(
            "albertkit_batch_tokens", "Padded tokens per forward pass (rows x longest row)",
            buckets=_TOKEN_BUCKETS, registry=self.registry,
        )
        self.inference = Histogram(
            "albertkit_inference_duration_seconds", "Time of one forward pass", buckets=_LATENCY_BUCKETS,
            registry=self.registry,
        )
        queue = Gauge("albertkit_queue_size", "Sequences waiting for a forward pass", registry=self.registry)
        queue.set_function(queue_size)
        flight = Gauge("albertkit_requests_in_flight", "Requests admitted and not yet answered", registry=self.registry)
        flight.set_function(in_flight)

    def observe_batch(self, sequences: int, padded_tokens: int, seconds: float) -> None:
        self.batch_size.observe(sequences)
        self.batch_tokens.observe(padded_tokens)
        self.inference.observe(seconds)

    def observe_request(self, route: str, status: int, seconds: float) -> None:
        self.requests.labels(route, str(status)).inc()
        self.latency.labels(route).observe(seconds)

    def render(self) -> tuple[bytes, str]:
        from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

        return generate_latest(self.registry), CONTENT_TYPE_LATEST
