"""The outermost ASGI layer of the server: bearer auth, the payload limit, early 429s, metrics.

    >>> app = Guard(fastapi_app, api)  # what create_app returns  # doctest: +SKIP
"""

from __future__ import annotations

import hmac
import time
from typing import Any, Callable

from albertkit.serving.errors import error_body

__all__ = ["Guard", "ROUTES", "GET_ROUTES"]

# Route -> the model capability it needs (None: any ALBERT).
ROUTES = {
    "/embed": "embed",
    "/embed_all": "embed_all",
    "/v1/embeddings": "embed",
    "/predict": "predict",
    "/rerank": "rerank",
    "/fill-mask": "fill-mask",
    "/tokenize": None,
    "/decode": None,
}
GET_ROUTES = ("/health", "/info", "/metrics")


class Guard:
    """Outermost ASGI layer: bearer auth, the payload limit, and per-route metrics.

    The body is read here, up to ``payload_limit`` bytes (413 past it, before the app sees it), and
    replayed to the app; so a 10 MB body costs at most the limit in memory.
    """

    def __init__(self, app: Any, api: Any) -> None:
        self.app = app
        self.api = api
        self.state = app.state  # the FastAPI app's: .api, .on_load_error
        key = api.settings.api_key
        self.expected = f"Bearer {key}".encode("utf-8") if key else None

    async def __call__(self, scope: dict, receive: Callable, send: Callable) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        path = scope.get("path", "")
        route = path if path in ROUTES or path in GET_ROUTES else "other"
        start = time.perf_counter()
        status_seen = [500]

        async def send_and_count(message: dict) -> None:
            if message["type"] == "http.response.start":
                status_seen[0] = message["status"]
            await send(message)
            if message["type"] == "http.response.body" and not message.get("more_body", False) and route in ROUTES:
                self.api.answered += 1

        try:
            await self._handle(scope, receive, send_and_count, path)
        finally:
            self.api.metrics.observe_request(route, status_seen[0], time.perf_counter() - start)

    async def _handle(self, scope: dict, receive: Callable, send: Callable, path: str) -> None:
        headers = dict(scope.get("headers") or [])
        if self.expected is not None and path != "/health":  # probes (load balancers, k8s) carry no key
            given = headers.get(b"authorization", b"")
            if not hmac.compare_digest(given, self.expected):
                return await _reply(send, path, 401, "missing or wrong API key: send the header `Authorization: Bearer KEY`", "unauthorized")
        if scope.get("method") != "POST":
            return await self.app(scope, receive, send)
        batcher = self.api.batcher
        if ROUTES.get(path) is not None and batcher.in_flight >= batcher.max_concurrent_requests:
            # Full: refuse before reading the body, so that overload costs the least (the handler's
            # admit() is the exact check; this one only answers the obvious case early).
            return await _reply(send, path, 429, f"Model is overloaded: the limit of {batcher.max_concurrent_requests} requests in flight (--max-concurrent-requests) is reached", "overloaded")
        limit = self.api.settings.payload_limit
        declared = headers.get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > limit:
            return await _reply(send, path, 413, f"request body of {int(declared)} bytes is over the payload limit of {limit} bytes (--payload-limit)", "validation")
        chunks, size = [], 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > limit:
                return await _reply(send, path, 413, f"request body is over the payload limit of {limit} bytes (--payload-limit)", "validation")
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        body = b"".join(chunks)
        sent = False

        async def replay() -> dict:
            nonlocal sent
            if not sent:
                sent = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        await self.app(scope, replay, send)


async def _reply(send: Callable, path: str, status: int, message: str, error_type: str) -> None:
    body = error_body(path, status, message, error_type)
    await send({"type": "http.response.start", "status": status, "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})
