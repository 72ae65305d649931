"""`albertkit serve`: every route against the pipelines, the error statuses, real clients.

Servers run on 127.0.0.1 with an ephemeral port (uvicorn in a thread); clients are httpx, the
`openai` package and curl. Models: the shipped albert-mini-en (fill-mask, embed) and random
transformers checkpoints with a sequence-classification head (3 labels: predict; 1 label: rerank).
The SIGTERM-under-load check is in the slow suite (`pytest -m slow tests/test_serving.py`) and in
bench/load_test_serve.py.
"""

from __future__ import annotations

import base64
import json
import math
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import httpx  # the test extra brings albertkit[serve], httpx and openai
from test_pipelines_common import corpus_sentences, hf_checkpoint, mask_sentences

REPO = Path(__file__).resolve().parents[1]
MINI = REPO / "src" / "albertkit" / "models" / "albert-mini-en"


# ------------------------------------------------------------------------------ helpers
def assert_json_close(got: Any, want: Any, where: str = "$", rtol: float = 1e-4, atol: float = 1e-6) -> None:
    """Same structure, same strings/ints/bools, floats within tolerance (batch padding may move the
    last bits of a float; nothing else may differ)."""
    if isinstance(want, float) or isinstance(got, float):
        assert isinstance(got, (int, float)) and isinstance(want, (int, float)), f"{where}: {got!r} vs {want!r}"
        assert math.isclose(got, want, rel_tol=rtol, abs_tol=atol), f"{where}: {got!r} vs {want!r}"
    elif isinstance(want, dict):
        assert isinstance(got, dict) and set(got) == set(want), f"{where}: keys {sorted(got)} vs {sorted(want)}"
        for k in want:
            assert_json_close(got[k], want[k], f"{where}.{k}", rtol, atol)
    elif isinstance(want, (list, tuple)):
        assert isinstance(got, list) and len(got) == len(want), f"{where}: length {len(got)} vs {len(want)}"
        for i, (g, w) in enumerate(zip(got, want)):
            assert_json_close(g, w, f"{where}[{i}]", rtol, atol)
    else:
        assert got == want, f"{where}: {got!r} vs {want!r}"


class LiveServer:
    """uvicorn serving ``app`` on 127.0.0.1:<free port> in a thread (no signal handlers off the main thread)."""

    def __init__(self, app: Any) -> None:
        import uvicorn

        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.bind(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self.server = uvicorn.Server(uvicorn.Config(app, log_config=None, access_log=False))
        self.thread = threading.Thread(target=self.server.run, kwargs={"sockets": [self.sock]}, daemon=True)
        self.app = app

    def __enter__(self) -> "LiveServer":
        self.thread.start()
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                if httpx.get(self.url + "/health", timeout=2).status_code == 200:
                    return self
            except httpx.TransportError:
                pass
            time.sleep(0.05)
        raise RuntimeError("server did not become healthy")

    def __exit__(self, *exc: Any) -> None:
        self.server.should_exit = True
        self.thread.join(30)
        self.sock.close()

    def post(self, route: str, body: Any, **kw: Any) -> httpx.Response:
        return httpx.post(self.url + route, json=body, timeout=30, **kw)


def make_app(model: Any, **settings: Any) -> Any:
    from albertkit.serving import ServerSettings, create_app

    return create_app(model, ServerSettings(**settings))


# ------------------------------------------------------------------------------ fixtures
@pytest.fixture(scope="module")
def mini():
    from albertkit.serving import ServedModel

    return ServedModel.load(str(MINI), fast="fp32")


@pytest.fixture(scope="module")
def mini_server(mini):
    with LiveServer(make_app(mini, max_client_batch_size=32)) as server:
        yield server


@pytest.fixture(scope="module")
def classifier_folder(tmp_path_factory, spiece_path):
    folder = tmp_path_factory.mktemp("cls3")
    return hf_checkpoint(
        folder, spiece_path, "ForSequenceClassification", seed=3, num_labels=3,
        id2label={0: "negative", 1: "neutral", 2: "positive"}, label2id={"negative": 0, "neutral": 1, "positive": 2},
        max_position_embeddings=64,
    )


@pytest.fixture(scope="module")
def reranker_folder(tmp_path_factory, spiece_path):
    return hf_checkpoint(tmp_path_factory.mktemp("rerank"), spiece_path, "ForSequenceClassification", seed=4, num_labels=1)


@pytest.fixture(scope="module")
def classifier_server(classifier_folder):
    from albertkit.serving import ServedModel

    with LiveServer(make_app(ServedModel.load(str(classifier_folder), fast="fp32"))) as server:
        yield server


@pytest.fixture(scope="module")
def reranker_server(reranker_folder):
    from albertkit.serving import ServedModel

    with LiveServer(make_app(ServedModel.load(str(reranker_folder), fast="fp32"))) as server:
        yield server


@pytest.fixture(scope="module")
def sentences(shared_data):
    return corpus_sentences(shared_data, 6, seed=1)


@pytest.fixture(scope="module")
def pipelines():
    """Pipelines built independently of the server, through the public API (one model load)."""
    from albertkit import AlbertForMaskedLM, AlbertTokenizer, pipeline

    model, tok = AlbertForMaskedLM.from_pretrained(str(MINI)), AlbertTokenizer.from_pretrained(str(MINI))
    return {
        "fill-mask": pipeline("fill-mask", model=model, tokenizer=tok),
        "embed": pipeline("sentence-embedding", model=model.albert, tokenizer=tok, pooling="mean"),
        "features": pipeline("feature-extraction", model=model.albert, tokenizer=tok),
    }


# ------------------------------------------------------------------------------ routes vs pipelines
def test_fill_mask_equals_pipeline(mini_server, pipelines, sentences):
    masked = mask_sentences(sentences, seed=2)
    unmasker = pipelines["fill-mask"]
    r = mini_server.post("/fill-mask", {"inputs": masked[0], "top_k": 3})
    assert r.status_code == 200, r.text
    assert_json_close(r.json(), unmasker(masked[0], top_k=3))
    r = mini_server.post("/fill-mask", {"inputs": masked[:4]})
    assert_json_close(r.json(), unmasker.run_many(masked[:4]))
    # one input in a list: still a list per input (the model card's schema per input)
    r = mini_server.post("/fill-mask", {"inputs": [masked[1]], "targets": ["the", "a", "cat"]})
    assert_json_close(r.json(), unmasker.run_many([masked[1]], targets=["the", "a", "cat"]))
    two = "The [MASK] sat on the [MASK]."
    assert_json_close(mini_server.post("/fill-mask", {"inputs": two, "top_k": 2}).json(), unmasker(two, top_k=2))


def test_embed_and_embed_all_equal_pipelines(mini_server, pipelines, sentences):
    embed, features = pipelines["embed"], pipelines["features"]
    r = mini_server.post("/embed", {"inputs": sentences[:5]})
    assert r.status_code == 200, r.text
    assert_json_close(r.json(), embed.run_many(sentences[:5], normalize=True))  # TEI: normalize defaults to true
    r = mini_server.post("/embed", {"inputs": sentences[0], "normalize": False})
    assert_json_close(r.json(), [embed(sentences[0], normalize=False)])  # one string -> still [[...]]
    r = mini_server.post("/embed_all", {"inputs": sentences[:2]})
    assert_json_close(r.json(), [x[0] for x in features.run_many(sentences[:2])])
    assert len(r.json()[0]) == len(pipelines["embed"].tokenizer(sentences[0])["input_ids"])


def test_openai_client_embeddings(mini_server, pipelines, sentences):
    import openai
    client = openai.OpenAI(base_url=mini_server.url + "/v1", api_key="unused", max_retries=0)
    want = pipelines["embed"].run_many(sentences[:3], normalize=True)
    # The package asks for base64 by default and decodes it itself; float is the other format.
    for fmt in (openai.NOT_GIVEN, "float"):
        out = client.embeddings.create(model="albert-mini-en", input=sentences[:3], encoding_format=fmt)
        assert [d.index for d in out.data] == [0, 1, 2]
        assert_json_close([list(map(float, d.embedding)) for d in out.data], want)
        n_tokens = sum(len(pipelines["embed"].tokenizer(s)["input_ids"]) for s in sentences[:3])
        assert out.usage.prompt_tokens == out.usage.total_tokens == n_tokens
        assert out.model == "albert-mini-en"
    raw = mini_server.post("/v1/embeddings", {"input": "a cat", "encoding_format": "base64"}).json()
    vec = np.frombuffer(base64.b64decode(raw["data"][0]["embedding"]), dtype="<f4")
    assert_json_close(vec.tolist(), pipelines["embed"]("a cat", normalize=True))
    with pytest.raises(openai.BadRequestError) as info:  # OpenAI's error shape: the package reads it
        client.embeddings.create(model="m", input=[])
    assert info.value.status_code == 400 and "`input` cannot be empty" in str(info.value)


def test_tokenize_and_decode_equal_tokenizer(mini_server, mini):
    tok = mini.tokenizer
    text = "Héllo, my dög is cute"
    got = mini_server.post("/tokenize", {"inputs": [text, "two words"]}).json()
    enc = tok(text, return_offsets_mapping=True)
    assert [t["id"] for t in got[0]] == enc["input_ids"]
    assert got[0][0] == {"id": tok.cls_token_id, "text": "[CLS]", "special": True, "start": None, "stop": None}
    assert [(t["start"], t["stop"]) for t in got[0][1:-1]] == [tuple(o) for o in enc["offset_mapping"][1:-1]]
    assert [t["text"] for t in got[0][1:3]] == ["Héllo", ","]
    bare = mini_server.post("/tokenize", {"inputs": "two words", "add_special_tokens": False}).json()
    assert [t["id"] for t in bare[0]] == tok("two words", add_special_tokens=False)["input_ids"]
    assert mini_server.post("/decode", {"ids": enc["input_ids"]}).json() == [tok.decode(enc["input_ids"], skip_special_tokens=True)]
    both = mini_server.post("/decode", {"ids": [enc["input_ids"], [5, 6]], "skip_special_tokens": False}).json()
    assert both == [tok.decode(enc["input_ids"]), tok.decode([5, 6])]


def test_predict_equals_pipeline(classifier_server, classifier_folder, sentences):
    from albertkit import pipeline

    classify = pipeline("text-classification", model=str(classifier_folder))
    r = classifier_server.post("/predict", {"inputs": sentences[0][:80]})
    assert r.status_code == 200, r.text
    assert_json_close(r.json(), classify(sentences[0][:80], top_k=None))
    pair = ["A man plays a guitar.", "Someone makes music."]
    want = classify({"text": pair[0], "text_pair": pair[1]}, top_k=None)
    assert_json_close(classifier_server.post("/predict", {"inputs": pair}).json(), want)
    batch = [["one text"], pair]
    got = classifier_server.post("/predict", {"inputs": batch, "raw_scores": True}).json()
    assert_json_close(got, classify.run_many(["one text", {"text": pair[0], "text_pair": pair[1]}], top_k=None, function_to_apply="none"))
    assert [d["label"] for d in got[0]] != [] and got[0][0]["score"] >= got[0][-1]["score"]
    info = httpx.get(classifier_server.url + "/info").json()
    assert info["model_type"]["classifier"]["id2label"] == {"0": "negative", "1": "neutral", "2": "positive"}


def test_rerank_equals_pipeline(reranker_server, reranker_folder):
    from albertkit import pipeline

    cross = pipeline("text-classification", model=str(reranker_folder))
    query, texts = "What is ALBERT?", ["A lite BERT.", "A cat.", "Parameter sharing across layers."]
    r = reranker_server.post("/rerank", {"query": query, "texts": texts, "return_text": True})
    assert r.status_code == 200, r.text
    scores = [cross({"text": query, "text_pair": t})["score"] for t in texts]  # sigmoid of the one logit
    want = sorted(({"index": i, "score": s, "text": texts[i]} for i, s in enumerate(scores)), key=lambda d: -d["score"])
    assert_json_close(r.json(), want)
    raw = reranker_server.post("/rerank", {"query": query, "texts": texts, "raw_scores": True}).json()
    logits = [cross({"text": query, "text_pair": t}, function_to_apply="none")["score"] for t in texts]
    assert_json_close(sorted(raw, key=lambda d: d["index"]), [{"index": i, "score": s} for i, s in enumerate(logits)])


def test_routes_the_heads_cannot_serve(mini_server, classifier_server):
    for server, route, body, what in [
        (mini_server, "/predict", {"inputs": "x"}, "sequence-classification"),
        (mini_server, "/rerank", {"query": "q", "texts": ["t"]}, "re-ranker"),
        (classifier_server, "/fill-mask", {"inputs": "a [MASK]"}, "masked-language-model"),
        (classifier_server, "/rerank", {"query": "q", "texts": ["t"]}, "one label"),
    ]:
        r = server.post(route, body)
        assert r.status_code == 424, (route, r.text)
        assert r.json()["error_type"] == "backend" and what in r.json()["error"]
    assert "/predict" not in httpx.get(mini_server.url + "/info").json()["routes"]
    # the classifier's backbone still embeds
    assert classifier_server.post("/embed", {"inputs": "x"}).status_code == 200


# ------------------------------------------------------------------------------ errors
def test_error_statuses_and_messages(mini_server):
    url = mini_server.url
    cases = [
        (b'{"inputs": ', 422, "not valid JSON"),
        (b'{"inputs": 3}', 422, "`inputs` must be a string or a list of strings"),
        (b'{"inputs": ["ok", 3]}', 422, "`inputs[1]` must be a string"),
        (b'{"inputs": "x", "normalize": "yes"}', 422, "`normalize` must be true or false"),
        (b'["inputs"]', 422, "must be a JSON object"),
        (b'{"text": "x"}', 422, "missing field `inputs`"),
        (b'{"inputs": "caf\xe9"}', 422, "not valid UTF-8"),
        (b'{"inputs": []}', 400, "`inputs` cannot be empty"),
        (b'{"inputs": "  "}', 400, "`inputs` is empty"),
        (json.dumps({"inputs": ["a"] * 1000}).encode(), 413, "batch size 1000 > maximum allowed batch size 32"),
        (b'{"inputs": "' + b"word " * 2_100_000 + b'"}', 413, "payload limit"),  # a ~10 MB body
        (json.dumps({"inputs": "word " * 600}).encode(), 413, "more than the model's limit of 512"),
    ]
    for body, status, message in cases:
        r = httpx.post(url + "/embed", content=body, headers={"content-type": "application/json"}, timeout=30)
        assert r.status_code == status, (body[:40], r.text)
        assert message in r.json()["error"], (body[:40], r.text)
        assert r.json()["error_type"] == "validation"
    r = httpx.post(url + "/fill-mask", json={"inputs": "no mask here"})
    assert r.status_code == 422 and "no mask token" in r.json()["error"]
    r = httpx.post(url + "/fill-mask", json={"inputs": "a [MASK]", "top_k": 0})
    assert r.status_code == 422 and "top_k" in r.json()["error"]
    # /v1/*: OpenAI's error shape
    r = httpx.post(url + "/v1/embeddings", json={"input": [""]})
    assert r.status_code == 400 and r.json()["error"]["message"] == "`input[0]` is empty" and r.json()["error"]["code"] == 400


def test_truncate_cuts_instead_of_413(mini_server, pipelines):
    long = "the cat sat on the mat " * 120  # ~720 tokens
    r = mini_server.post("/embed", {"inputs": long, "truncate": True})
    assert r.status_code == 200, r.text
    from albertkit import pipeline

    cut = pipeline("sentence-embedding", model=str(MINI), truncation="warn")
    assert_json_close(r.json(), [cut(long, normalize=True)])


def test_api_key(mini):
    with LiveServer(make_app(mini, api_key="s3cret")) as server:  # /health stays open for probes
        for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": "s3cret"}):
            r = server.post("/embed", {"inputs": "x"}, headers=headers)
            assert r.status_code == 401 and r.json()["error_type"] == "unauthorized", r.text
        r = server.post("/v1/embeddings", {"input": "x"})
        assert r.status_code == 401 and "API key" in r.json()["error"]["message"]
        assert httpx.get(server.url + "/info").status_code == 401
        assert server.post("/embed", {"inputs": "x"}, headers={"Authorization": "Bearer s3cret"}).status_code == 200


def test_overload_answers_429_at_once(mini):
    """Two requests hold the model; the third is refused at once with 429, then all recover."""
    app = make_app(mini, max_concurrent_requests=2)
    pipe = mini.pipeline("embed")
    gate = threading.Event()
    original = pipe.forward_batch

    def held(group, **params):
        gate.wait(30)
        return original(group, **params)

    pipe.forward_batch = held
    try:
        with LiveServer(app) as server, ThreadPoolExecutor(2) as pool:
            slow = [pool.submit(server.post, "/embed", {"inputs": f"held {i}"}) for i in range(2)]
            deadline = time.monotonic() + 10
            while app.state.api.batcher.in_flight < 2 and time.monotonic() < deadline:
                time.sleep(0.01)
            start = time.monotonic()
            r = server.post("/embed", {"inputs": "one too many"})
            assert r.status_code == 429 and r.json()["error_type"] == "overloaded", r.text
            assert time.monotonic() - start < 2.0
            gate.set()
            assert [f.result().status_code for f in slow] == [200, 200]
            assert server.post("/embed", {"inputs": "after"}).status_code == 200
    finally:
        gate.set()
        del pipe.forward_batch


def test_health_is_503_until_loaded(mini):
    ready = threading.Event()

    def load():
        ready.wait(30)
        return mini

    app = make_app(load)
    from starlette.testclient import TestClient

    with TestClient(app) as client:
        r = client.get("/health")
        assert r.status_code == 503 and r.json() == {"error": "the model is still loading", "error_type": "unhealthy"}
        assert client.post("/embed", json={"inputs": "x"}).status_code == 503
        ready.set()
        app.state.loader.join(10)
        assert client.get("/health").status_code == 200


def test_concurrent_requests_are_batched_and_equal_single_answers(mini, pipelines, sentences):
    masked = mask_sentences(sentences, seed=5)
    want = {m: pipelines["fill-mask"](m) for m in masked}
    want_embed = {s: pipelines["embed"](s, normalize=True) for s in sentences}
    app = make_app(mini)
    with LiveServer(app) as server, ThreadPoolExecutor(16) as pool:
        jobs = [(("/fill-mask", m) if i % 2 else ("/embed", s)) for i, (m, s) in enumerate(zip(masked * 4, sentences * 4))]
        futures = [pool.submit(server.post, route, {"inputs": text}) for route, text in jobs]
        for (route, text), f in zip(jobs, futures):
            r = f.result()
            assert r.status_code == 200, r.text
            assert_json_close(r.json(), want[text] if route == "/fill-mask" else [want_embed[text]])
        metrics = httpx.get(server.url + "/metrics").text
    from prometheus_client.parser import text_string_to_metric_families

    families = {f.name: f for f in text_string_to_metric_families(metrics)}
    counts = {(s.labels["route"], s.labels["status"]): s.value for s in families["albertkit_requests"].samples if s.name.endswith("_total")}
    assert counts[("/fill-mask", "200")] == 12 and counts[("/embed", "200")] == 12
    sizes = {s.name: s.value for s in families["albertkit_batch_size"].samples if not s.labels}
    assert sizes["albertkit_batch_size_sum"] == 24  # every sequence ran exactly once
    assert sizes["albertkit_batch_size_count"] <= 24
    assert "albertkit_queue_size" in families and "albertkit_request_duration_seconds" in families


def test_batcher_forms_length_aware_batches_within_the_token_budget():
    import asyncio

    from albertkit.pipelines.base import Feature, Job
    from albertkit.serving.batcher import Batcher

    class Recorder:
        def __init__(self):
            self.batches = []

        def forward_batch(self, group, **params):
            self.batches.append(([len(f) for f in group], params))
            for f in group:
                f.outputs = {"n": len(f)}

    pipe = Recorder()
    batcher = Batcher(max_batch_tokens=40, max_concurrent_requests=10)

    async def main():
        lengths = [[3, 20], [4], [19, 5], [50]]
        jobs = [Job([None] * len(ls), [[Feature(0, [1] * n, [0] * n)] for n in ls], {"k": i % 2}, {}) for i, ls in enumerate(lengths)]
        tasks = [asyncio.ensure_future(batcher.submit(pipe, job)) for job in jobs]
        await asyncio.sleep(0)
        batcher.start()
        await asyncio.gather(*tasks)
        batcher.stop()
        return jobs

    jobs = asyncio.run(main())
    assert all(f.outputs == {"n": len(f)} for job in jobs for f in job.features)
    for lengths, params in pipe.batches:
        assert len(lengths) == 1 or len(lengths) * max(lengths) <= 40  # the budget (one over-long row runs alone)
    flat = sorted((tuple(sorted(ls)), p["k"]) for ls, p in pipe.batches)
    # k=0: 3, 20, 19, 5 -> short ones together, long ones together; k=1: 4 and 50 never share with k=0
    assert flat == [((3, 5), 0), ((4,), 1), ((19, 20), 0), ((50,), 1)]


def test_batcher_workers_run_batches_side_by_side_with_their_intra_op_threads():
    import asyncio

    import torch

    from albertkit.pipelines.base import Feature, Job
    from albertkit.serving.batcher import Batcher

    both_running = threading.Barrier(2, timeout=10)  # one worker alone never gets past it
    threads_seen = []

    class Pipe:
        def forward_batch(self, group, **params):
            threads_seen.append(torch.get_num_threads())
            both_running.wait()
            for f in group:
                f.outputs = {"n": len(f)}

    main_threads = torch.get_num_threads()
    batcher = Batcher(max_batch_tokens=4, max_concurrent_requests=10, workers=2, intra_op_threads=1)

    async def main():
        batcher.start()
        await asyncio.sleep(0.2)  # both workers asleep on the queue
        # One request, two batches (the budget holds one row): its submit wakes one worker, and that
        # worker must wake the other one for the second batch.
        job = Job([None, None], [[Feature(0, [1] * 4, [0] * 4)], [Feature(1, [1] * 4, [0] * 4)]], {}, {})
        await asyncio.wait_for(batcher.submit(Pipe(), job), 20)
        batcher.stop(timeout=10)
        return [job]

    jobs = asyncio.run(main())
    assert all(f.outputs == {"n": 4} for job in jobs for f in job.features)
    assert threads_seen == [1, 1]
    assert torch.get_num_threads() == main_threads  # the workers set their own threads only
    assert not any(t.is_alive() for t in batcher._threads)


def test_cpu_batch_budget_and_model_threads(mini):
    from types import SimpleNamespace

    import torch

    from albertkit.serving import ServedModel

    # 4 MiB of the widest activation [tokens, intermediate_size] in float32
    assert mini.default_batch_tokens() == (4 << 20) // (4 * mini.config.intermediate_size) == 1024
    base = SimpleNamespace(device=torch.device("cpu"), config=SimpleNamespace(intermediate_size=3072, hidden_size=768))
    assert ServedModel.default_batch_tokens(base) == 341
    gpu = SimpleNamespace(device=torch.device("cuda"), config=base.config)
    assert ServedModel.default_batch_tokens(gpu) == 16384  # TEI's default where memory, not the caches, bounds a batch
    assert mini.model_threads(2) == (2, 1) and mini.model_threads(16) == (4, 4) and mini.model_threads(1) == (1, 1)
    assert mini.model_threads(2, requested=1) == (1, 2)
    assert ServedModel.model_threads(gpu, 16) == (1, None)
    app = make_app(mini)
    with LiveServer(app) as server:
        info = httpx.get(server.url + "/info").json()
    cores = app.state.api.cores
    assert info["max_batch_tokens"] == 1024 and info["model_threads"] == min(4, cores)
    assert info["intra_op_threads"] == max(1, cores // min(4, cores))
    with LiveServer(make_app(mini, max_batch_tokens=300, model_threads=1)) as server:
        info = httpx.get(server.url + "/info").json()
    assert (info["max_batch_tokens"], info["model_threads"], info["intra_op_threads"]) == (300, 1, cores)
    with pytest.raises(ValueError, match="--model-threads must be a positive integer"):
        make_app(mini, model_threads=0)


def test_load_test_client_reads_what_httpx_reads(mini_server):
    """bench/load_test_serve.py's own keep-alive client (httptools) against httpx, on the same server."""
    sys.path.insert(0, str(REPO))
    from bench.load_test_serve import Client, TransportError, run_async, same

    bodies = [("/embed", {"inputs": "a cat sat"}), ("/fill-mask", {"inputs": "Paris is the [MASK] of France."}),
              ("/embed", {"inputs": ""}), ("/fill-mask", {"inputs": "no mask here"})]

    async def ask():
        client = Client(mini_server.url)
        try:
            return [await client.post(route, json.dumps(body).encode()) for route, body in bodies]  # one connection, kept alive
        finally:
            client.close()

    got = run_async(ask())
    for (route, body), (status, text) in zip(bodies, got):
        want = mini_server.post(route, body)
        assert status == want.status_code and same(json.loads(text), want.json(), 1e-6)
    assert [s for s, _ in got] == [200, 200, 400, 422]

    async def refused():
        with socket.socket() as s:  # a port nobody listens on
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        await Client(f"http://127.0.0.1:{port}").post("/embed", b"{}")

    with pytest.raises(TransportError, match="cannot connect"):
        run_async(refused())
    # the answer check: vectors within the tolerance, nothing else
    assert same([0.5, 1.0], [0.50001, 1.0], 1e-4) and not same([0.5, 1.0], [0.51, 1.0], 1e-4)
    assert not same([0.5], [0.5, 1.0], 1e-4) and not same(["x"], [0.5], 1e-4) and same({"a": [1.0]}, {"a": [1.0]})
    # fill-mask candidates: a near-tie (within the tolerance) may swap ranks or the top-k boundary, nothing else
    cand = [{"score": 0.30, "token": 1, "sequence": "a"}, {"score": 0.2995, "token": 2, "sequence": "b"},
            {"score": 0.10, "token": 3, "sequence": "c"}]
    swapped = [dict(cand[1], score=0.3001), dict(cand[0], score=0.2999), cand[2]]
    boundary = [cand[0], cand[1], {"score": 0.0999, "token": 9, "sequence": "z"}]
    assert same(swapped, cand, 1e-2) and not same(swapped, cand, 1e-5)
    assert same(boundary, cand, 1e-2) and not same(boundary, cand, 1e-5)
    assert not same([cand[2], cand[0], cand[1]], cand, 1e-2)  # out of score order
    assert not same([cand[0], dict(cand[1], sequence="x"), cand[2]], cand, 1e-2)


def test_curl_against_each_route(mini_server, classifier_server, reranker_server, pipelines):
    curl = shutil.which("curl")
    if curl is None:
        pytest.fail("curl is not installed (the issue asks for plain curl against each route)")

    def run(server, method, route, body=None):
        cmd = [curl, "-s", "-S", "-w", "\n%{http_code}", "-X", method, server.url + route]
        if body is not None:
            cmd += ["-H", "Content-Type: application/json", "-d", json.dumps(body)]
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=60, check=True).stdout
        text, code = out.rsplit("\n", 1)
        return int(code), text

    code, text = run(mini_server, "POST", "/fill-mask", {"inputs": "Paris is the [MASK] of France."})
    assert code == 200
    assert_json_close(json.loads(text), pipelines["fill-mask"]("Paris is the [MASK] of France."))
    code, text = run(mini_server, "POST", "/embed", {"inputs": ["a cat"]})
    assert code == 200 and len(json.loads(text)[0]) == 256
    for server, route, body in [
        (mini_server, "/embed_all", {"inputs": "a cat"}),
        (mini_server, "/v1/embeddings", {"input": "a cat", "model": "m"}),
        (mini_server, "/tokenize", {"inputs": "a cat"}),
        (mini_server, "/decode", {"ids": [2, 21, 3]}),
        (classifier_server, "/predict", {"inputs": "a cat"}),
        (reranker_server, "/rerank", {"query": "a", "texts": ["b", "c"]}),
    ]:
        code, text = run(server, "POST", route, body)
        assert code == 200, (route, text)
        assert json.loads(text) == server.post(route, body).json() or route in ("/embed_all", "/v1/embeddings")
    assert run(mini_server, "GET", "/health")[0] == 200
    assert json.loads(run(mini_server, "GET", "/info")[1])["max_input_length"] == 512
    code, text = run(mini_server, "GET", "/metrics")
    assert code == 200 and "albertkit_requests_total" in text


@pytest.mark.slow
def test_cli_serve_sigterm_finishes_in_flight_requests_and_exits_0(tmp_path):
    """`albertkit serve` in a subprocess; SIGTERM while requests are in flight: all answered, exit 0."""
    port_sock = socket.socket()
    port_sock.bind(("127.0.0.1", 0))
    port = port_sock.getsockname()[1]
    port_sock.close()
    env = {**__import__("os").environ, "PYTHONPATH": str(REPO / "src")}
    proc = subprocess.Popen(
        [sys.executable, "-m", "albertkit", "serve", str(MINI), "--port", str(port), "--fast", "fp32", "--max-batch-tokens", "512"],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            try:
                if httpx.get(url + "/health", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.2)
        long = ["the cat sat on the mat and looked at the [MASK] " * 20] * 8
        deadline = time.monotonic() + 120
        with ThreadPoolExecutor(8) as pool:
            futures = [pool.submit(httpx.post, url + "/fill-mask", json={"inputs": long}, timeout=120) for _ in range(8)]
            # SIGTERM once the server has admitted all eight (they are queued or on the model)
            in_flight = False
            while proc.poll() is None and time.monotonic() < deadline and not in_flight:
                in_flight = "albertkit_requests_in_flight 8.0" in httpx.get(url + "/metrics", timeout=10).text
                time.sleep(0.02)
            assert in_flight, "the eight requests were never in flight together"
            proc.send_signal(signal.SIGTERM)
            codes = [f.result().status_code for f in futures]
        assert codes == [200] * 8
        assert proc.wait(60) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
        log = proc.stdout.read()
    # albertkit's own lines (the CLI's logging shows albertkit's loggers, not uvicorn's "Shutting down")
    assert "SIGTERM: shut down" in log and "shutdown: 8 requests answered on the POST routes, 0 in flight" in log
    assert "server stopped" in log


def test_base_checkpoint_serves_embeddings_only(tmp_path, spiece_path):
    from albertkit import pipeline
    from albertkit.serving import ServedModel

    folder = hf_checkpoint(tmp_path / "base", spiece_path, "Model", seed=5)
    served = ServedModel.load(str(folder), fast="fp32", pooling="cls")
    assert served.tasks == ["embed", "embed_all"]
    with LiveServer(make_app(served)) as server:
        r = server.post("/embed", {"inputs": ["a cat", "the dogs barked"], "normalize": False})
        assert_json_close(r.json(), pipeline("sentence-embedding", model=str(folder), pooling="cls").run_many(["a cat", "the dogs barked"]))
        assert server.post("/fill-mask", {"inputs": "a [MASK]"}).status_code == 424
        assert httpx.get(server.url + "/info").json()["model_type"] == {"embedding": {"pooling": "cls"}}


def test_cli_serve_reports_a_model_that_fails_to_load(tmp_path, capsys):
    from albertkit.cli import main

    assert main(["serve", str(tmp_path / "no-such-model"), "--port", "0"]) == 2
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert err.startswith("albertkit serve: error: the model failed to load:") and "no-such-model" in err


def test_int8_served_model_calibrates_on_the_given_texts(shared_data) -> None:
    import torch

    from albertkit import AlbertForMaskedLM, AlbertTokenizer
    from albertkit.quantization import Int8Linear, calibration_from_texts, quantize_int8
    from albertkit.serving import ServedModel

    texts = corpus_sentences(shared_data, 8)
    served = ServedModel.load(str(MINI), fast="int8", calibration=texts)
    batches = calibration_from_texts(AlbertTokenizer.from_pretrained(str(MINI)), texts, max_length=512)
    direct = quantize_int8(AlbertForMaskedLM.from_pretrained(str(MINI)), calibration=batches)

    def smoothing(model) -> list:
        return [m.input_smoothing for m in model.modules() if isinstance(m, Int8Linear)]

    got = smoothing(served._pipes["fill-mask", False].model)
    assert len(got) == 6 and all(torch.equal(a, b) for a, b in zip(got, smoothing(direct)))
    assert served._pipes["embed", False].model is served._pipes["fill-mask", False].model.albert  # one copy
    with pytest.raises(ValueError, match="int8 path only, not 'fp32'"):
        ServedModel.load(str(MINI), fast="fp32", calibration=texts)


def test_serve_cli_refuses_calibration_without_int8(tmp_path, capsys) -> None:
    from albertkit.cli import main

    calib = tmp_path / "calib.txt"
    calib.write_text("a sentence\n", encoding="utf-8")
    assert main(["serve", str(MINI), "--fast", "auto", "--calibration", str(calib)]) == 2
    assert "use it with --fast int8, not auto" in capsys.readouterr().err
    assert main(["serve", str(MINI), "--fast", "int8", "--calibration", str(tmp_path / "missing.txt")]) == 2
    assert "missing.txt: no such calibration file" in capsys.readouterr().err
