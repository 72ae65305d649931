"""Load test of `albertkit serve` against a per-request transformers baseline (FastAPI + uvicorn too).

Loopback only (127.0.0.1), bounded in time and requests, stops by itself. Phases:

1. **Load, side by side.** For each round, albertkit then the baseline (alternating, so that the
   other engineers' jobs on the shared cores hit both alike): start the server, ask every request
   of the pool once, one at a time (the single-request answers), then ``--clients`` concurrent
   clients send random requests of the pool (short and long real sentences from ../shared/data,
   to ``/embed`` and ``/fill-mask``) for ``--duration`` seconds. Every response is checked against
   that request's single-request answer (same tokens, labels and strings; floats within 1e-4).
   Reported: requests/s, p50/p99 latency, 5xx, transport errors, mismatches, peak RSS.
2. **Overload.** albertkit with ``--max-concurrent-requests C`` under 10 x C clients: 429s must
   come fast, nothing may crash, peak RSS stays bounded.
3. **SIGTERM under load.** The last albertkit round gets SIGTERM while its clients are busy: the
   requests it had admitted must all be answered (200) and the process must exit 0.

    $ python bench/load_test_serve.py                      # 2 rounds x 60 s each, ~7 minutes
    $ python bench/load_test_serve.py --duration 10 --rounds 1 --output /tmp/serve_load.json
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import json
import math
import os
import random
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("ALBERTKIT_SHARED_DATA", REPO.parent / "shared" / "data"))
MINI = REPO / "src" / "albertkit" / "models" / "albert-mini-en"
PYTHON = sys.executable
MAX_REQUESTS_PER_PHASE = 2_000_000  # a bound besides the duration


# ------------------------------------------------------------------------------ the request pool
def request_pool(n: int, seed: int = 0) -> list[tuple[str, dict]]:
    """``n`` requests: half /embed, half /fill-mask; half short sentences (SST-2, CoLA, MRPC), half
    long passages (consecutive lines of the pretraining corpus, 80-250 words)."""
    rng = random.Random(seed)
    short: list[str] = []
    with open(SHARED / "glue" / "SST-2" / "dev.tsv", encoding="utf-8") as fh:
        short += [r["sentence"] for r in csv.DictReader(fh, delimiter="\t", quoting=csv.QUOTE_NONE)]
    with open(SHARED / "glue" / "MRPC" / "dev.tsv", encoding="utf-8-sig") as fh:
        short += [r["#1 String"] for r in csv.DictReader(fh, delimiter="\t", quoting=csv.QUOTE_NONE)]
    short = [s for s in short if 4 <= len(s.split()) <= 30]
    long: list[str] = []
    for path in sorted((SHARED / "corpus").rglob("*.txt"))[:200]:
        words: list[str] = []
        with open(path, encoding="utf-8", errors="replace") as fh:
            for _, line in zip(range(400), fh):
                words += line.split()
                if len(words) >= 80:
                    long.append(" ".join(words[: rng.randint(80, 250)]))
                    words = []
    long = [t for t in long if t.isascii()]
    texts = rng.sample(short, n // 2) + rng.sample(long, n - n // 2)
    pool = []
    for i, text in enumerate(texts):
        if i % 2:
            words = text.split()
            plain = [j for j, w in enumerate(words) if w.isalpha()] or [0]
            words[rng.choice(plain)] = "[MASK]"
            pool.append(("/fill-mask", {"inputs": " ".join(words)}))
        else:
            pool.append(("/embed", {"inputs": text}))
    return pool


def same(got: Any, want: Any, tol: float = 1e-4) -> bool:
    """Same structure, strings, ints; floats within ``tol`` (padding in a batch moves the last bits:
    ~1e-6 in fp32; in bf16, 8 mantissa bits, up to ~1e-3, hence ``--tol`` 1e-2 there)."""
    if isinstance(want, list) and want and isinstance(want[0], float):  # a vector: one numpy check, same rule
        if not isinstance(got, list) or len(got) != len(want) or not all(isinstance(x, (int, float)) for x in got):
            return False
        g, w = np.asarray(got, dtype=np.float64), np.asarray(want, dtype=np.float64)
        return bool(np.all(np.abs(g - w) <= np.maximum(tol * np.maximum(np.abs(g), np.abs(w)), tol)))
    if isinstance(want, float) or isinstance(got, float):
        return isinstance(got, (int, float)) and isinstance(want, (int, float)) and math.isclose(got, want, abs_tol=tol, rel_tol=tol)
    if _is_candidates(want) and _is_candidates(got):
        return same_candidates(got, want, tol)
    if isinstance(want, dict):
        return isinstance(got, dict) and got.keys() == want.keys() and all(same(got[k], want[k], tol) for k in want)
    if isinstance(want, list):
        return isinstance(got, list) and len(got) == len(want) and all(same(g, w, tol) for g, w in zip(got, want))
    return got == want


def _is_candidates(x: Any) -> bool:
    return isinstance(x, list) and bool(x) and all(isinstance(c, dict) and "score" in c and "token" in c for c in x)


def same_candidates(got: list[dict], want: list[dict], tol: float) -> bool:
    """One fill-mask answer (top-k candidates, best first) against the single-request one. Each
    candidate both lists name must agree (strings equal, score within ``tol``); since both lists
    are sorted by score, a different order then only swaps candidates whose scores are within
    ``tol`` of each other. A candidate only one list has must lie at the top-k boundary: its score
    within ``tol`` of the other list's last score (a near-tie that the batch's rounding decided).
    In fp32 (tol 1e-4) this is in effect an exact comparison."""
    if len(got) != len(want) or any(a["score"] < b["score"] for a, b in zip(got, got[1:])):
        return False
    by_token = {c["token"]: c for c in want}
    for c in got:
        w = by_token.get(c["token"])
        if w is None:
            if not same(c["score"], want[-1]["score"], tol):
                return False
        elif not same(c, w, tol):
            return False
    got_tokens = {c["token"] for c in got}
    return all(same(w["score"], got[-1]["score"], tol) for w in want if w["token"] not in got_tokens)


# ------------------------------------------------------------------------------ servers
def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """A server subprocess on 127.0.0.1, with its peak RSS sampled (psutil) while it runs."""

    def __init__(self, kind: str, model: str, fast: str, extra: list[str] | None = None, baseline_dtype: str = "fp32") -> None:
        self.kind = kind
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        if kind == "albertkit":
            cmd = [PYTHON, "-m", "albertkit", "serve", model, "--port", str(self.port), "--fast", fast, *(extra or [])]
        else:
            cmd = [PYTHON, str(REPO / "bench" / "serve_baseline.py"), model, "--port", str(self.port), "--dtype", baseline_dtype]
        # Both servers get the same environment: torch's default threads (one per core), whatever
        # OMP_NUM_THREADS the caller runs the load test with.
        env = {k: v for k, v in os.environ.items() if k not in ("OMP_NUM_THREADS", "MKL_NUM_THREADS")}
        env["PYTHONPATH"] = str(REPO / "src")
        # OpenMP workers that spin while waiting burn CPU time that other threads (the server's own,
        # the other tenants') need on a shared machine, and make CPU time per request meaningless.
        env["OMP_WAIT_POLICY"] = "PASSIVE"
        self.log = open(f"/tmp/load_test_{kind}_{self.port}.log", "w")
        self.proc = subprocess.Popen(cmd, env=env, stdout=self.log, stderr=subprocess.STDOUT)
        self.peak_rss = 0
        self._stop_sampling = threading.Event()
        threading.Thread(target=self._sample, daemon=True).start()

    def _sample(self) -> None:
        import psutil

        p = psutil.Process(self.proc.pid)
        while not self._stop_sampling.is_set():
            try:
                self.peak_rss = max(self.peak_rss, p.memory_info().rss)
            except psutil.Error:
                return
            time.sleep(0.1)

    def cpu_seconds(self) -> float:
        """CPU time the server process has used so far (user + system, all its threads)."""
        import psutil

        try:
            t = psutil.Process(self.proc.pid).cpu_times()
        except psutil.Error:
            return float("nan")
        return t.user + t.system

    def wait_healthy(self, timeout: float = 300) -> None:
        import httpx

        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.kind} server exited with {self.proc.returncode}; see {self.log.name}")
            try:
                if httpx.get(self.url + "/health", timeout=5).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.25)
        raise RuntimeError(f"{self.kind} server not healthy after {timeout} s")

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 60) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        try:
            code = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            code = self.proc.wait()
        self._stop_sampling.set()
        self.log.close()
        return code


# ------------------------------------------------------------------------------ the clients
class TransportError(Exception):
    """No HTTP response: refused, reset, closed before the answer, or no answer within the timeout."""


class Connection(asyncio.Protocol):
    """One keep-alive HTTP/1.1 connection of one simulated client; one request at a time.

    The load client has to be cheap: it shares the cores with the server it measures, and httpx
    spent 3-5 ms of CPU per request here, as much as a third of albertkit's own cost per request.
    Requests are pre-encoded bytes; responses are parsed by httptools (llhttp, the parser uvicorn
    uses), so a request costs the client a few hundred microseconds on uvloop.
    """

    def __init__(self) -> None:
        import httptools

        self.parser = httptools.HttpResponseParser(self)
        self.transport: asyncio.Transport | None = None
        self.waiter: asyncio.Future | None = None
        self.body: list[bytes] = []
        self.closed = False

    # asyncio.Protocol
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        import httptools

        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError as exc:
            self._fail(TransportError(f"bad HTTP response: {exc}"))
            self.transport.close()

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self._fail(TransportError(f"connection closed ({exc or 'by the server'})"))

    # httptools callbacks
    def on_body(self, body: bytes) -> None:
        self.body.append(body)

    def on_message_complete(self) -> None:
        status, body = self.parser.get_status_code(), b"".join(self.body)
        self.body = []
        if not self.parser.should_keep_alive():
            self.closed = True
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_result((status, body))

    def _fail(self, exc: Exception) -> None:
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_exception(exc)


class Client:
    """A simulated client: POSTs JSON bytes over its own keep-alive connection (reopened when closed)."""

    def __init__(self, url: str, timeout: float = 120.0) -> None:
        host_port = url.split("://", 1)[1].rstrip("/")
        self.host, port = host_port.rsplit(":", 1)
        self.port = int(port)
        self.timeout = timeout
        self.conn: Connection | None = None

    async def post(self, path: str, body: bytes) -> tuple[int, bytes]:
        loop = asyncio.get_running_loop()
        if self.conn is None or self.conn.closed:
            try:
                _, self.conn = await loop.create_connection(Connection, self.host, self.port)
            except OSError as exc:
                raise TransportError(f"cannot connect: {exc}") from None
        conn = self.conn
        conn.waiter = loop.create_future()
        head = f"POST {path} HTTP/1.1\r\nHost: {self.host}\r\nContent-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
        conn.transport.write(head.encode("ascii") + body)
        timer = loop.call_later(self.timeout, conn._fail, TransportError(f"no answer in {self.timeout} s"))
        try:
            return await conn.waiter
        except TransportError:
            conn.transport.close()
            conn.closed = True
            raise
        finally:
            timer.cancel()
            conn.waiter = None

    def close(self) -> None:
        if self.conn is not None and self.conn.transport is not None:
            self.conn.transport.close()


def run_async(coro: Any) -> Any:
    """``asyncio.run`` on uvloop where it exists (the server's loop too)."""
    try:
        import uvloop
    except ModuleNotFoundError:
        return asyncio.run(coro)
    return uvloop.run(coro)


@dataclass
class PhaseResult:
    seconds: float = 0.0
    latencies: list[float] = field(default_factory=list)  # of 200s
    statuses: dict[int, int] = field(default_factory=dict)
    latency_429: list[float] = field(default_factory=list)
    transport_errors: int = 0
    error_kinds: dict[str, int] = field(default_factory=dict)  # exception class -> count
    mismatches: int = 0
    client_cpu_s: float = 0.0
    server_cpu_s: float = float("nan")
    after_sigterm: dict[str, int] = field(default_factory=dict)

    def summary(self) -> dict[str, Any]:
        lat = sorted(self.latencies)
        q = lambda xs, p: xs[min(len(xs) - 1, int(p * len(xs)))] * 1000 if xs else None  # noqa: E731
        ok = self.statuses.get(200, 0)
        return {
            "seconds": round(self.seconds, 1),
            "requests_ok": ok,
            "throughput_rps": round(ok / self.seconds, 1) if self.seconds else None,
            "p50_ms": q(lat, 0.50),
            "p99_ms": q(lat, 0.99),
            "statuses": {str(k): v for k, v in sorted(self.statuses.items())},
            "http_5xx": sum(v for k, v in self.statuses.items() if k >= 500),
            "transport_errors": self.transport_errors,
            **({"error_kinds": self.error_kinds} if self.error_kinds else {}),
            "mismatches": self.mismatches,
            "p50_429_ms": q(sorted(self.latency_429), 0.50),
            "p99_429_ms": q(sorted(self.latency_429), 0.99),
            "client_cpu_s": round(self.client_cpu_s, 1),
            "client_cpu_ms_per_request": round(1000 * self.client_cpu_s / sum(self.statuses.values()), 2) if self.statuses else None,
            "server_cpu_s": round(self.server_cpu_s, 1),
            # CPU time per answered request: what each server costs, whatever share of the shared cores it got
            "server_cpu_ms_per_request": round(1000 * self.server_cpu_s / ok, 1) if ok else None,
            **({"after_sigterm": self.after_sigterm} if self.after_sigterm else {}),
        }


def encode(pool: list[tuple[str, dict]]) -> list[tuple[str, bytes]]:
    return [(route, json.dumps(body).encode("utf-8")) for route, body in pool]


async def references(url: str, pool: list[tuple[str, dict]]) -> list[Any]:
    """Each request of the pool asked alone, one after the other: the answers the load must match."""
    client = Client(url)
    out = []
    try:
        for route, body in encode(pool):
            status, text = await client.post(route, body)
            if status != 200:
                raise RuntimeError(f"{route} answered {status} to a single request: {text[:200]!r}")
            out.append(json.loads(text))
    finally:
        client.close()
    return out


async def load(
    url: str, pool: list[tuple[str, dict]], refs: list[Any] | None, clients: int, duration: float, seed: int,
    sigterm: Server | None = None, tol: float = 1e-4,
) -> PhaseResult:
    """``clients`` concurrent clients for ``duration`` s; with ``sigterm``, that server gets SIGTERM
    at the end while the clients are still sending, and the phase ends when the process has exited."""
    result = PhaseResult()
    rng = random.Random(seed)
    stop_at = time.monotonic() + duration
    signalled = asyncio.Event()
    sent = 0
    bodies = encode(pool)

    async def client(c: Client) -> None:
        nonlocal sent
        while sent < MAX_REQUESTS_PER_PHASE:
            if sigterm is None and time.monotonic() >= stop_at:
                return
            if sigterm is not None and sigterm.proc.poll() is not None:
                return
            i = rng.randrange(len(pool))
            route, body = bodies[i]
            sent += 1
            after = signalled.is_set()
            start = time.perf_counter()
            try:
                status, text = await c.post(route, body)
            except TransportError as exc:
                kind = str(exc).split(":")[0].split(" (")[0]
                result.error_kinds[kind] = result.error_kinds.get(kind, 0) + 1
                if signalled.is_set():  # after SIGTERM: refused, or a keep-alive connection the server closed
                    key = "transport_error_sent_" + ("after" if after else "before")
                    result.after_sigterm[key] = result.after_sigterm.get(key, 0) + 1
                    if not after:  # a request the server had and dropped: a lost response
                        result.transport_errors += 1
                    await asyncio.sleep(0.05)
                else:
                    result.transport_errors += 1
                continue
            elapsed = time.perf_counter() - start
            result.statuses[status] = result.statuses.get(status, 0) + 1
            if signalled.is_set():
                key = f"status_{status}_sent_" + ("after" if after else "before")
                result.after_sigterm[key] = result.after_sigterm.get(key, 0) + 1
            if status == 200:
                result.latencies.append(elapsed)
                if refs is not None and not same(json.loads(text), refs[i], tol):
                    result.mismatches += 1
            elif status == 429:
                result.latency_429.append(elapsed)

    async def terminator() -> None:
        await asyncio.sleep(max(0.0, stop_at - time.monotonic()))
        signalled.set()
        sigterm.proc.send_signal(signal.SIGTERM)
        while sigterm.proc.poll() is None:
            await asyncio.sleep(0.05)

    cpu0, t0 = time.process_time(), time.perf_counter()
    conns = [Client(url) for _ in range(clients)]
    try:
        tasks = [asyncio.create_task(client(c)) for c in conns]
        if sigterm is not None:
            tasks.append(asyncio.create_task(terminator()))
        await asyncio.gather(*tasks)
    finally:
        for c in conns:
            c.close()
    result.seconds = time.perf_counter() - t0
    result.client_cpu_s = time.process_time() - cpu0
    return result


# ------------------------------------------------------------------------------ main
def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=str(MINI))
    parser.add_argument("--fast", default="fp32", help="albertkit's --fast (default fp32: the baseline runs fp32 too)")
    parser.add_argument("--baseline-dtype", choices=("fp32", "bf16"), default=None,
                        help="the baseline's precision (default: bf16 when --fast is bf16, else fp32: like for like)")
    parser.add_argument("--clients", type=int, default=64)
    parser.add_argument("--duration", type=float, default=60.0, help="seconds per load phase (default 60)")
    parser.add_argument("--rounds", type=int, default=2, help="albertkit/baseline alternations (default 2)")
    parser.add_argument("--pool", type=int, default=200, help="distinct requests (default 200)")
    parser.add_argument("--overload-limit", type=int, default=32, help="--max-concurrent-requests in the overload phase")
    parser.add_argument("--overload-duration", type=float, default=20.0)
    parser.add_argument("--tol", type=float, default=None, help="float tolerance of the answer check (default 1e-4 for fp32, 1e-2 otherwise); tokens, labels and strings must be equal")
    parser.add_argument("--only-overload", action="store_true", help="run the overload phase alone")
    parser.add_argument("--output", help="write the results as JSON here")
    args = parser.parse_args()

    pool = request_pool(args.pool)
    tol = args.tol if args.tol is not None else (1e-4 if args.fast == "fp32" else 1e-2)
    baseline_dtype = args.baseline_dtype or ("bf16" if args.fast == "bf16" else "fp32")
    refs: dict[str, list[Any]] = {}
    rounds: dict[str, list[dict]] = {"albertkit": [], "baseline": []}
    peak: dict[str, int] = {"albertkit": 0, "baseline": 0}
    sigterm_result: dict[str, Any] = {}
    for r in range(0 if args.only_overload else args.rounds):
        for kind in ("albertkit", "baseline"):
            last = kind == "albertkit" and r == args.rounds - 1
            server = Server(kind, args.model, args.fast, baseline_dtype=baseline_dtype)
            server.wait_healthy()
            if kind not in refs:
                refs[kind] = run_async(references(server.url, pool))
            print(f"round {r + 1}: {kind} under {args.clients} clients for {args.duration:.0f} s ...", file=sys.stderr, flush=True)
            cpu0 = server.cpu_seconds()
            res = run_async(load(server.url, pool, refs[kind], args.clients, args.duration, seed=r, sigterm=None, tol=tol))
            res.server_cpu_s = server.cpu_seconds() - cpu0
            if last:  # SIGTERM under load: a short extra phase, not part of the throughput numbers
                print("  SIGTERM under load ...", file=sys.stderr, flush=True)
                term = run_async(load(server.url, pool, refs[kind], args.clients, min(10.0, args.duration), seed=77, sigterm=server, tol=tol))
            code = server.stop()  # after the SIGTERM phase the process has exited already
            if last:
                # Every response the server handed over must have reached its client: compare the
                # count in its shutdown log line with the responses the clients received.
                received = sum(res.statuses.values()) + sum(term.statuses.values()) + (len(pool) if r == 0 else 0)
                answered = _answered(server.log.name)
                sigterm_result = {"exit_code": code, **term.after_sigterm, "mismatches": term.mismatches,
                                  "http_5xx": sum(v for k, v in term.statuses.items() if k >= 500),
                                  "server_answered": answered, "clients_received": received,
                                  "responses_lost": None if answered is None else answered - received}
            peak[kind] = max(peak[kind], server.peak_rss)
            summary = res.summary()
            rounds[kind].append(summary)
            print(f"  {json.dumps(summary)}", file=sys.stderr, flush=True)

    overload = overload_phase(args, pool, refs.get("albertkit"), tol)
    if args.only_overload:
        print(json.dumps(overload, indent=2))
        return 0 if not overload["http_5xx"] else 1

    def median(kind: str, key: str) -> float:
        return statistics.median(x[key] for x in rounds[kind] if x[key] is not None)

    ours, theirs = median("albertkit", "throughput_rps"), median("baseline", "throughput_rps")
    cpu_ours, cpu_theirs = median("albertkit", "server_cpu_ms_per_request"), median("baseline", "server_cpu_ms_per_request")
    report = {
        "cpu": _cpu_name(),
        "cores": os.cpu_count(),
        "model": args.model,
        "fast": args.fast,
        "baseline_dtype": baseline_dtype,
        "tolerance": tol,
        "clients": args.clients,
        "duration_s": args.duration,
        "pool": {"requests": len(pool), "routes": ["/embed", "/fill-mask"]},
        "rounds": rounds,
        "peak_rss_mib": {k: round(v / 2**20) for k, v in peak.items()},
        "throughput_ratio": round(ours / theirs, 2) if theirs else None,
        "cpu_per_request_ratio": round(cpu_theirs / cpu_ours, 2) if cpu_ours else None,
        "p99_ms": {"albertkit": median("albertkit", "p99_ms"), "baseline": median("baseline", "p99_ms")},
        "sigterm": sigterm_result,
        "overload": overload,
    }
    text = json.dumps(report, indent=2)
    print(text)
    if args.output:
        sys.path.insert(0, str(REPO / "src"))
        from albertkit.utils import atomic_write_text

        atomic_write_text(args.output, text + "\n")
    bad = sum(x["http_5xx"] + x["mismatches"] + x["transport_errors"] for k in rounds for x in rounds[k] if k == "albertkit")
    lost = sigterm_result.get("responses_lost")
    return 1 if bad or sigterm_result.get("exit_code") != 0 or overload["http_5xx"] or lost else 0


def curl_probe(url: str, stop: threading.Event, out: list[tuple[int, float]]) -> None:
    """Time requests from a separate process (curl), one at a time: the load client's own event
    loop, busy with hundreds of connections on a shared machine, would add its delays to the
    latencies it measures; curl's ``time_total`` is the server's answer time plus the loopback."""
    body = json.dumps({"inputs": "a short probe sentence ."})
    while not stop.is_set():
        r = subprocess.run(
            ["curl", "-s", "-o", "/dev/null", "-w", "%{http_code} %{time_total}", "-H", "Content-Type: application/json",
             "-d", body, url + "/embed"], capture_output=True, text=True, timeout=120,
        )
        code, seconds = r.stdout.split()
        out.append((int(code), float(seconds)))
        stop.wait(0.2)


def overload_phase(args: argparse.Namespace, pool: list, refs: list | None, tol: float) -> dict[str, Any]:
    """albertkit at ``--max-concurrent-requests C`` under 10 x C clients, with a curl probe."""
    server = Server("albertkit", args.model, args.fast, ["--max-concurrent-requests", str(args.overload_limit)])
    server.wait_healthy()
    if refs is None:
        refs = run_async(references(server.url, pool))
    print(f"overload: {10 * args.overload_limit} clients, limit {args.overload_limit} ...", file=sys.stderr, flush=True)
    stop, probes = threading.Event(), []
    probe = threading.Thread(target=curl_probe, args=(server.url, stop, probes), daemon=True)
    probe.start()
    over = run_async(load(server.url, pool, refs, 10 * args.overload_limit, args.overload_duration, seed=99, tol=tol))
    stop.set()
    probe.join(130)
    code = server.stop()
    t429 = sorted(t for c, t in probes if c == 429)
    return {
        **over.summary(), "peak_rss_mib": round(server.peak_rss / 2**20), "exit_code": code,
        "curl_probe": {
            "statuses": {str(c): sum(1 for x, _ in probes if x == c) for c in sorted({x for x, _ in probes})},
            "p50_429_ms": round(1000 * t429[len(t429) // 2], 1) if t429 else None,
            "max_429_ms": round(1000 * t429[-1], 1) if t429 else None,
        },
    }


def _answered(log: str) -> int | None:
    """The server's count of answered POST requests, from its shutdown log line."""
    import re

    found = re.findall(r"shutdown: (\d+) requests answered", Path(log).read_text(errors="replace"))
    return int(found[-1]) if found else None


def _cpu_name() -> str:
    try:
        for line in open("/proc/cpuinfo", encoding="utf-8"):
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return "unknown"


if __name__ == "__main__":
    raise SystemExit(main())
