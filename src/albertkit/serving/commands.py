"""``albertkit serve MODEL``: run the HTTP inference server (FastAPI on uvicorn).

    $ albertkit serve src/albertkit/models/albert-mini-en --port 8080 --fast auto
    $ curl -s 127.0.0.1:8080/fill-mask -H 'Content-Type: application/json' -d '{"inputs": "Paris is the [MASK] of France."}'

SIGTERM (or Ctrl-C) stops accepting connections, answers the requests in flight, and exits 0.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
from typing import Any

__all__ = ["register", "serve"]

logger = logging.getLogger(__name__)

SWITCH_INTERVAL_S = 0.0005  # the server process's sys.setswitchinterval (see serve())


def register(sub: Any) -> None:
    from albertkit.serving import FAST_CHOICES

    p = sub.add_parser(
        "serve",
        help="HTTP inference server with text-embeddings-inference's routes (+ /fill-mask)",
        description="Serve an ALBERT over HTTP: /embed /embed_all /predict /rerank /fill-mask /tokenize /decode "
        "/v1/embeddings /health /info /metrics. Needs: pip install 'albertkit[serve]'.",
    )
    p.add_argument("model", nargs="?", default=None, metavar="MODEL", help="model folder or hub name (default albert-base-v2, else the shipped model)")
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1; 0.0.0.0 for all)")
    p.add_argument("--port", type=int, default=8080, help="port (default 8080; 0 picks a free one)")
    p.add_argument("--fast", choices=FAST_CHOICES, default="auto", help="fast path (auto: bf16 where the CPU/GPU runs it natively, else fp32)")
    p.add_argument("--device", default="cpu", help="torch device (default cpu)")
    p.add_argument("--pooling", choices=("mean", "cls", "max"), default="mean", help="pooling of /embed (default mean)")
    p.add_argument("--calibration", metavar="FILE",
                   help="with --fast int8: texts like the requests to come, one per line, to calibrate the int8 smoothing on")
    p.add_argument(
        "--max-batch-tokens", type=int, default=None,
        help="padded tokens per forward pass (default: 16384 on a GPU; on CPU 4 MiB of FFN activations, 1024 tokens for albert-mini-en)",
    )
    p.add_argument("--max-concurrent-requests", type=int, default=512, help="requests in flight before 429 (default 512)")
    p.add_argument("--max-client-batch-size", type=int, default=32, help="inputs in one request before 413 (default 32)")
    p.add_argument("--auto-truncate", action="store_true", help="cut over-long inputs instead of answering 413")
    p.add_argument("--payload-limit", type=int, default=2_000_000, help="largest request body in bytes (default 2000000)")
    p.add_argument("--tokenization-workers", type=int, default=2, help="threads that tokenize and postprocess (default 2)")
    p.add_argument(
        "--model-threads", type=int, default=None,
        help="threads that run forward passes side by side, sharing the cores and the one model (default: one per core, at most 4, on CPU; 1 on a GPU)",
    )
    p.add_argument("--api-key", default=os.environ.get("ALBERTKIT_API_KEY"), help="require `Authorization: Bearer KEY` (default: $ALBERTKIT_API_KEY)")
    p.set_defaults(func=serve)


def serve(args: argparse.Namespace) -> int:
    from albertkit.cli import CommandError

    try:
        import uvicorn

        import fastapi  # noqa: F401
        import prometheus_client  # noqa: F401

        from albertkit.serving import ServedModel, ServerSettings, create_app
    except ModuleNotFoundError as exc:
        from albertkit.serving import SERVE_INSTALL_HINT

        raise CommandError(f"{SERVE_INSTALL_HINT} ({exc.name} is missing)") from None
    if not 0 <= args.port <= 65535:
        raise CommandError(f"--port must be between 0 and 65535, got {args.port}")
    calibration = None
    if args.calibration is not None:
        if args.fast != "int8":
            raise CommandError(f"--calibration calibrates the int8 path: use it with --fast int8, not {args.fast}")
        from albertkit.pipelines.commands import read_calibration_file

        calibration = read_calibration_file(args.calibration)
    settings = ServerSettings(
        max_batch_tokens=args.max_batch_tokens,
        max_concurrent_requests=args.max_concurrent_requests,
        max_client_batch_size=args.max_client_batch_size,
        auto_truncate=args.auto_truncate,
        api_key=args.api_key or None,
        payload_limit=args.payload_limit,
        tokenization_workers=args.tokenization_workers,
        model_threads=args.model_threads,
    )
    app = create_app(
        lambda: ServedModel.load(args.model, fast=args.fast, pooling=args.pooling, device=args.device, calibration=calibration), settings
    )
    # timeout_keep_alive: uvicorn's 5 s default closes a keep-alive connection whose client is slow to
    # send its next request (a busy client process), racing with that request; 60 s avoids it.
    config = uvicorn.Config(
        app, host=args.host, port=args.port, log_config=None, access_log=False, timeout_graceful_shutdown=None,
        timeout_keep_alive=60,
    )
    server = uvicorn.Server(config)
    # The model threads release the GIL in every torch op and need it back when the op returns;
    # when the event loop holds it, they wait for CPython's switch interval (5 ms by default), up to
    # ~80 times per forward pass. 0.5 ms bounds that wait (more frequent switches cost little). On
    # the loaded 2-core development machine it changed requests/s by +1-5% (noise level, 2 A/B pairs).
    switch_interval = sys.getswitchinterval()
    sys.setswitchinterval(SWITCH_INTERVAL_S)
    failed: list[BaseException] = []

    def on_load_error(exc: BaseException) -> None:
        failed.append(exc)
        server.should_exit = True

    app.state.on_load_error = on_load_error
    # Uvicorn re-raises the signal that stopped it once it has shut down, with the handler that was
    # installed before it started; with Python's default SIGTERM handler that would kill the
    # process (status -15) after a clean drain. This handler makes that re-raise a no-op: exit 0.
    previous = signal.signal(signal.SIGTERM, lambda *_: logger.info("SIGTERM: shut down"))
    try:
        server.run()
    finally:
        signal.signal(signal.SIGTERM, previous)
        sys.setswitchinterval(switch_interval)
    if failed:
        raise CommandError(f"the model failed to load: {failed[0]}")
    logger.info("server stopped")
    return 0
