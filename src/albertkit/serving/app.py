"""The ASGI app: text-embeddings-inference's routes over albertkit's pipelines, plus ``/fill-mask``.

Each inference route checks its JSON, runs ``Pipeline.plan`` (tokenization) on a worker pool,
hands the features to the :class:`~albertkit.serving.batcher.Batcher` (one thread owns the model
and batches across requests), and answers with ``Pipeline.finish``: the same objects and steps as
``pipeline(...)(inputs)``, so a response equals the pipeline's result for the same inputs.

    >>> from albertkit.serving import ServerSettings, create_app, ServedModel
    >>> app = create_app(lambda: ServedModel.load("my-model"), ServerSettings())  # doctest: +SKIP
    >>> # uvicorn.run(app, host="127.0.0.1", port=8080)
"""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import threading
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np
import torch

from albertkit.pipelines.base import InputTooLongError, PipelineInputError
from albertkit.serving.batcher import Batcher, Overloaded
from albertkit.serving.errors import ApiError, error_body
from albertkit.serving.guard import ROUTES, Guard
from albertkit.serving.metrics import ServerMetrics
from albertkit.serving.model import ServedModel

__all__ = ["ServerSettings", "create_app", "ROUTES"]

logger = logging.getLogger(__name__)

_WHY_NOT = {
    "fill-mask": "it has no masked-language-model head (predictions.*); serve a checkpoint saved from AlbertForMaskedLM or AlbertForPreTraining",
    "predict": "it has no sequence-classification head; serve a checkpoint saved from AlbertForSequenceClassification",
    "rerank": "it is not a re-ranker: /rerank needs a sequence-classification checkpoint with one label (a cross-encoder)",
}


@dataclass
class ServerSettings:
    """Limits and options of one server (the CLI flags of ``albertkit serve``)."""

    max_batch_tokens: int | None = None  # None: ServedModel.default_batch_tokens() (16384 on GPUs, less on CPU)
    max_concurrent_requests: int = 512
    max_client_batch_size: int = 32
    auto_truncate: bool = False
    api_key: str | None = None
    payload_limit: int = 2_000_000  # bytes, TEI's default
    tokenization_workers: int = 2
    model_threads: int | None = None  # None: ServedModel.model_threads() (one per core on CPU, up to 4)

    def __post_init__(self) -> None:
        for name in ("max_batch_tokens", "max_concurrent_requests", "max_client_batch_size", "payload_limit", "tokenization_workers", "model_threads"):
            value = getattr(self, name)
            if value is None and name in ("max_batch_tokens", "model_threads"):
                continue
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"--{name.replace('_', '-')} must be a positive integer, got {value!r}")


# ------------------------------------------------------------------------------ request checks
def _field(body: dict, name: str, kind: type | tuple[type, ...], default: Any = ..., what: str = "") -> Any:
    if name not in body:
        if default is ...:
            raise ApiError(422, f"missing field `{name}`")
        return default
    value = body[name]
    if kind is bool and not isinstance(value, bool):
        raise ApiError(422, f"`{name}` must be true or false, got {json.dumps(value)[:60]}")
    if kind is int and (isinstance(value, bool) or not isinstance(value, int)):
        raise ApiError(422, f"`{name}` must be an integer, got {json.dumps(value)[:60]}")
    if not isinstance(value, kind):
        raise ApiError(422, f"`{name}` must be {what or getattr(kind, '__name__', kind)}, got {type(value).__name__}")
    return value


def _text(value: Any, where: str) -> str:
    if not isinstance(value, str):
        raise ApiError(422, f"{where} must be a string, got {type(value).__name__} ({json.dumps(value)[:40]})")
    if not value.strip():
        raise ApiError(400, f"{where} is empty")
    return value


class _Api:
    """The routes' logic; the FastAPI handlers below are one line each."""

    def __init__(self, settings: ServerSettings) -> None:
        self.settings = settings
        self.served: ServedModel | None = None
        self.load_error: BaseException | None = None
        self.answered = 0  # responses handed to the server for the POST routes (logged at shutdown)
        self.pool = ThreadPoolExecutor(settings.tokenization_workers, thread_name_prefix="albertkit-tokenize")
        self.metrics = ServerMetrics(lambda: self.batcher.queued_features, lambda: self.batcher.in_flight)
        # The batch budget and the worker threads depend on the model and its device: set by
        # start_batcher() once the model is loaded (no request is admitted before).
        self.batcher = Batcher(
            settings.max_batch_tokens or 16384,
            settings.max_concurrent_requests,
            on_batch=lambda s: self.metrics.observe_batch(s.sequences, s.padded_tokens, s.seconds),
        )
        self.cores = torch.get_num_threads()  # read here, on the thread that builds the app: the workers change it

    def start_batcher(self, served: ServedModel) -> None:
        """Size the batcher for ``served`` (its budget, its worker threads) and start it."""
        self.batcher.max_batch_tokens = self.settings.max_batch_tokens or served.default_batch_tokens()
        self.batcher.workers, self.batcher.intra_op_threads = served.model_threads(self.cores, self.settings.model_threads)
        self.batcher.start()

    # -- shared -----------------------------------------------------------------------------------
    def model(self, capability: str | None) -> ServedModel:
        if self.served is None:
            raise ApiError(503, "the model is still loading" if self.load_error is None else "the model failed to load", "unhealthy")
        if capability is not None and not self.served.supports(capability):
            raise ApiError(424, f"model {self.served.name!r} cannot serve this route: {_WHY_NOT[capability]}", "backend")
        return self.served

    def inputs(self, body: dict, name: str = "inputs") -> tuple[bool, list[str]]:
        """``inputs``: a string or a non-empty list of strings (at most --max-client-batch-size)."""
        value = _field(body, name, (str, list), what="a string or a list of strings")
        if isinstance(value, str):
            return True, [_text(value, f"`{name}`")]
        self.check_batch(value, name)
        return False, [_text(x, f"`{name}[{i}]`") for i, x in enumerate(value)]

    def check_batch(self, value: list, name: str) -> None:
        if not value:
            raise ApiError(400, f"`{name}` cannot be empty")
        if len(value) > self.settings.max_client_batch_size:
            raise ApiError(
                413, f"batch size {len(value)} > maximum allowed batch size {self.settings.max_client_batch_size} (`{name}`)"
            )

    def truncate(self, body: dict) -> bool:
        return _field(body, "truncate", bool, self.settings.auto_truncate)

    async def infer(
        self, task: str, items: list[Any], single: bool, params: dict[str, Any], truncate: bool
    ) -> tuple[list[Any], int]:
        """Run ``task``'s pipeline on checked items through the batcher -> (results, prompt tokens)."""
        served = self.model(task)
        pipe = served.pipeline(task, truncate)
        try:
            self.batcher.admit()
        except Overloaded as exc:
            raise ApiError(429, str(exc), "overloaded") from None
        loop = asyncio.get_running_loop()
        try:
            try:
                job = await loop.run_in_executor(self.pool, pipe.plan, items, single, params)
            except InputTooLongError as exc:
                raise ApiError(413, f"{exc} (or set `truncate`: true)") from None
            except (PipelineInputError, ValueError, TypeError) as exc:
                raise ApiError(422, str(exc)) from None
            tokens = sum(len(f) for f in job.features)
            try:
                await self.batcher.submit(pipe, job)
            except RuntimeError as exc:
                raise ApiError(503, str(exc), "unhealthy") from None
            except Exception as exc:
                raise ApiError(500, f"inference failed: {type(exc).__name__}: {exc}", "backend") from None
            results = await loop.run_in_executor(self.pool, pipe.finish, job)
        finally:
            self.batcher.release()
        return results, tokens

    # -- routes -----------------------------------------------------------------------------------
    async def embed(self, body: dict) -> Any:
        single, texts = self.inputs(body)
        normalize = _field(body, "normalize", bool, True)
        results, _ = await self.infer("embed", texts, single, {"normalize": normalize}, self.truncate(body))
        return results  # [[H], ...]: one vector per input, a list even for one string (TEI)

    async def embed_all(self, body: dict) -> Any:
        single, texts = self.inputs(body)
        results, _ = await self.infer("embed_all", texts, single, {}, self.truncate(body))
        return [r[0] for r in results]  # the pipeline's [1, T, H] per input -> TEI's [T, H] per input

    async def openai_embeddings(self, body: dict) -> Any:
        fmt = _field(body, "encoding_format", str, "float")
        if fmt not in ("float", "base64"):
            raise ApiError(422, f'`encoding_format` must be "float" or "base64", got {fmt!r}')
        model_name = _field(body, "model", (str, type(None)), None, "a string")
        single, texts = self.inputs(body, "input")
        results, tokens = await self.infer("embed", texts, single, {"normalize": True}, self.truncate(body))
        data = []
        for i, vector in enumerate(results):
            if fmt == "base64":  # little-endian float32 bytes, as OpenAI sends them
                vector = base64.b64encode(np.asarray(vector, dtype="<f4").tobytes()).decode("ascii")
            data.append({"object": "embedding", "embedding": vector, "index": i})
        served = self.model(None)
        return {
            "object": "list",
            "data": data,
            "model": model_name or served.name,
            "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
        }

    async def fill_mask(self, body: dict) -> Any:
        single, texts = self.inputs(body)
        params: dict[str, Any] = {"top_k": _field(body, "top_k", int, 5)}
        targets = _field(body, "targets", (str, list, type(None)), None, "a string or a list of strings")
        if targets is not None:
            params["targets"] = targets
        results, _ = await self.infer("fill-mask", texts, single, params, self.truncate(body))
        return results[0] if single else results

    def predict_items(self, value: Any) -> tuple[bool, list[tuple[str, str | None]]]:
        """TEI's PredictInput: "text", ["text", "pair"], or a batch [["text"], ["text", "pair"], ...]."""

        def sequence(v: Any, where: str) -> tuple[str, str | None]:
            if isinstance(v, list) and 1 <= len(v) <= 2:
                return _text(v[0], f"{where}[0]"), (_text(v[1], f"{where}[1]") if len(v) == 2 else None)
            raise ApiError(422, f"{where} must be [text] or [text, pair], got {json.dumps(v)[:60]}")

        if isinstance(value, str):
            return True, [(_text(value, "`inputs`"), None)]
        if not isinstance(value, list):
            raise ApiError(422, f"`inputs` must be a string, a pair [text, pair] or a batch of those, got {type(value).__name__}")
        if value and all(isinstance(v, str) for v in value):
            if len(value) > 2:
                raise ApiError(422, "`inputs` as a list of strings is one sequence or a pair (1 or 2 strings); a batch is [[text], [text, pair], ...]")
            return True, [sequence(value, "`inputs`")]
        self.check_batch(value, "inputs")
        return False, [sequence(v, f"`inputs[{i}]`") for i, v in enumerate(value)]

    async def predict(self, body: dict) -> Any:
        single, items = self.predict_items(_field(body, "inputs", (str, list), what="a string or a list"))
        raw = _field(body, "raw_scores", bool, False)
        params = {"top_k": None, **({"function_to_apply": "none"} if raw else {})}
        results, _ = await self.infer("predict", items, single, params, self.truncate(body))
        return results[0] if single else results

    async def rerank(self, body: dict) -> Any:
        query = _text(_field(body, "query", str), "`query`")
        texts = _field(body, "texts", list, what="a list of strings")
        self.check_batch(texts, "texts")
        items = [(query, _text(t, f"`texts[{i}]`")) for i, t in enumerate(texts)]
        raw = _field(body, "raw_scores", bool, False)
        return_text = _field(body, "return_text", bool, False)
        params = {"top_k": None, **({"function_to_apply": "none"} if raw else {})}
        self.model("rerank")  # 424 unless the model is a one-label classifier
        results, _ = await self.infer("predict", items, False, params, self.truncate(body))
        ranks = []
        for index, labels in enumerate(results):
            rank: dict[str, Any] = {"index": index, "score": labels[0]["score"]}
            if return_text:
                rank["text"] = texts[index]
            ranks.append(rank)
        return sorted(ranks, key=lambda r: r["score"], reverse=True)

    async def tokenize(self, body: dict) -> Any:
        tokenizer = self.model(None).tokenizer
        _, texts = self.inputs(body)
        add_special = _field(body, "add_special_tokens", bool, True)

        def run() -> list[list[dict[str, Any]]]:
            out = []
            for text in texts:
                enc = tokenizer(text, add_special_tokens=add_special, return_offsets_mapping=True, return_special_tokens_mask=True)
                pieces = tokenizer.convert_ids_to_tokens(enc["input_ids"])
                tokens = []
                for id_, (start, stop), special, piece in zip(enc["input_ids"], enc["offset_mapping"], enc["special_tokens_mask"], pieces):
                    if special:
                        tokens.append({"id": id_, "text": piece, "special": True, "start": None, "stop": None})
                    else:
                        tokens.append({"id": id_, "text": text[start:stop], "special": False, "start": start, "stop": stop})
                out.append(tokens)
            return out

        return await asyncio.get_running_loop().run_in_executor(self.pool, run)

    async def decode(self, body: dict) -> Any:
        tokenizer = self.model(None).tokenizer
        ids = _field(body, "ids", list, what="a list of token ids or a list of such lists")
        skip = _field(body, "skip_special_tokens", bool, True)
        batch = [ids] if not ids or not isinstance(ids[0], list) else ids
        self.check_batch(batch if ids else [], "ids")
        vocab = len(tokenizer)
        for i, row in enumerate(batch):
            if not isinstance(row, list) or not row:
                raise ApiError(422 if not isinstance(row, list) else 400, f"`ids[{i}]` must be a non-empty list of token ids")
            for j, t in enumerate(row):
                if isinstance(t, bool) or not isinstance(t, int) or not 0 <= t < vocab:
                    raise ApiError(422, f"`ids` item {j} of sequence {i} must be a token id in [0, {vocab}), got {json.dumps(t)[:40]}")
        return await asyncio.get_running_loop().run_in_executor(
            self.pool, lambda: [tokenizer.decode(row, skip_special_tokens=skip) for row in batch]
        )

    def info(self) -> dict[str, Any]:
        from albertkit import __version__

        served = self.model(None)
        s = self.settings
        return {
            "model_id": served.name,
            "model_sha": None,
            "model_dtype": served.dtype,
            "model_type": served.model_type,
            "max_concurrent_requests": s.max_concurrent_requests,
            "max_input_length": served.max_input_length,
            "max_batch_tokens": self.batcher.max_batch_tokens,
            "max_batch_requests": None,
            "max_client_batch_size": s.max_client_batch_size,
            "auto_truncate": s.auto_truncate,
            "tokenization_workers": s.tokenization_workers,
            "version": __version__,
            "sha": None,
            "docker_label": None,
            # albertkit's own fields
            "fast_path": served.fast,
            "pooling": served.pooling,
            "payload_limit": s.payload_limit,
            "model_threads": self.batcher.workers,
            "intra_op_threads": self.batcher.intra_op_threads,
            "routes": [r for r, cap in ROUTES.items() if cap is None or served.supports(cap)],
        }


# ------------------------------------------------------------------------------ the app
def create_app(model: ServedModel | Callable[[], ServedModel], settings: ServerSettings | None = None) -> Any:
    """The ASGI app. ``model``: a loaded :class:`ServedModel`, or a function that loads one (called
    on a background thread at startup, so that ``/health`` answers 503 until the model is ready).
    """
    try:
        from fastapi import FastAPI, Request
        from fastapi.responses import Response
        import prometheus_client  # noqa: F401  (the metrics need it; say so now, not at the first request)
    except ModuleNotFoundError as exc:
        from albertkit.serving.options import SERVE_INSTALL_HINT

        raise ModuleNotFoundError(f"{SERVE_INSTALL_HINT} ({exc.name} is missing)", name=exc.name) from None

    settings = settings or ServerSettings()
    api = _Api(settings)

    def load() -> None:
        try:
            served = model() if callable(model) and not isinstance(model, ServedModel) else model
            api.start_batcher(served)
            api.served = served
            b = api.batcher
            logger.info(
                "model %s loaded: %s, fast path %s, routes %s; max_batch_tokens %d, %d model threads x %s intra-op "
                "threads, max_concurrent_requests %d, max_client_batch_size %d, max_input_length %d, auto_truncate %s, "
                "payload_limit %d bytes",
                served.name, served.head_class, served.fast, ", ".join(api.info()["routes"]), b.max_batch_tokens,
                b.workers, b.intra_op_threads or "torch's", settings.max_concurrent_requests,
                settings.max_client_batch_size, served.max_input_length, settings.auto_truncate, settings.payload_limit,
            )
        except BaseException as exc:  # reported by /health and by the CLI's exit status
            logger.error("the model failed to load: %s", exc)
            api.load_error = exc
            if app.state.on_load_error is not None:
                app.state.on_load_error(exc)

    @asynccontextmanager
    async def lifespan(_app: Any):
        loader = threading.Thread(target=load, name="albertkit-load", daemon=True)
        loader.start()
        app.state.loader = loader
        try:
            yield
        finally:
            # Uvicorn has answered every in-flight request by now; the queue is empty.
            api.batcher.stop(timeout=30)
            logger.info("shutdown: %d requests answered on the POST routes, %d in flight", api.answered, api.batcher.in_flight)
            api.pool.shutdown(wait=True)

    app = FastAPI(title="albertkit serve", lifespan=lifespan, docs_url=None, redoc_url=None)
    app.state.api = api
    app.state.on_load_error = None

    def json_response(content: Any, status: int = 200) -> Response:
        return Response(json.dumps(content, ensure_ascii=False, separators=(",", ":")), status_code=status, media_type="application/json")

    async def parse(request: Request) -> dict:
        raw = await request.body()
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise ApiError(422, f"the body is not valid UTF-8 ({exc.reason} at byte {exc.start})") from None
        if not text.strip():
            raise ApiError(422, "the body is empty; send a JSON object")
        try:
            body = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ApiError(422, f"the body is not valid JSON: {exc.msg} at line {exc.lineno}, column {exc.colno}") from None
        if not isinstance(body, dict):
            raise ApiError(422, f"the body must be a JSON object, got {type(body).__name__}")
        return body

    def route(path: str, handler: Callable[[dict], Any]) -> None:
        async def endpoint(request: Request) -> Response:
            try:
                return json_response(await handler(await parse(request)))
            except ApiError as exc:
                return Response(error_body(path, exc.status, exc.message, exc.error_type), exc.status, media_type="application/json")

        # The module's postponed annotations are strings FastAPI would resolve in this module's globals,
        # where Request is not (fastapi is imported lazily): give it the classes themselves.
        endpoint.__annotations__ = {"request": Request, "return": Response}
        app.add_api_route(path, endpoint, methods=["POST"], name=path.strip("/"))

    route("/embed", api.embed)
    route("/embed_all", api.embed_all)
    route("/v1/embeddings", api.openai_embeddings)
    route("/predict", api.predict)
    route("/rerank", api.rerank)
    route("/fill-mask", api.fill_mask)
    route("/tokenize", api.tokenize)
    route("/decode", api.decode)

    @app.get("/health")
    async def health() -> Response:
        try:
            api.model(None)
        except ApiError as exc:
            return Response(error_body("/health", exc.status, exc.message, exc.error_type), exc.status, media_type="application/json")
        return Response(status_code=200)

    @app.get("/info")
    async def info() -> Response:
        try:
            return json_response(api.info())
        except ApiError as exc:
            return Response(error_body("/info", exc.status, exc.message, exc.error_type), exc.status, media_type="application/json")

    @app.get("/metrics")
    async def metrics() -> Response:
        content, media_type = api.metrics.render()
        return Response(content, media_type=media_type)

    return Guard(app, api)
