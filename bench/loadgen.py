"""A bounded HTTP load generator: keep-alive connections at fixed concurrency.

The load runs in separate processes (spawned, so they share nothing with the
harness) with a few threads each; every thread owns one keep-alive
``http.client`` connection and loops over its share of the paths until the
deadline or the request cap, whichever comes first. A request is measured when
it finishes inside the measured window (after the warm-up, before the deadline),
whenever it started: completions per second is the server's throughput even when
each request takes seconds (counting only requests that also *started* in the
window would miss up to one request per connection at each end, and so
understate a slow server's rate and overstate its CPU per request).

Imports stay light on purpose: each spawned process imports this module.
"""

from __future__ import annotations

import http.client
import math
import multiprocessing
import threading
import time
from collections import Counter
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field

# Hard upper bounds, whatever the caller asks for.
MAX_DURATION_SECONDS = 120.0
MAX_REQUESTS = 1_000_000
# Time for the spawned processes to import before sending starts.
SPAWN_SECONDS = 1.5


def percentile(sorted_values: Sequence[float], pct: float) -> float:
    """Nearest-rank percentile of already sorted values (0.0 for none)."""
    if not sorted_values:
        return 0.0
    if not 0 < pct <= 100:
        raise ValueError("pct must be in (0, 100]")
    rank = math.ceil(pct / 100 * len(sorted_values))
    return sorted_values[max(rank, 1) - 1]


@dataclass
class LoadResult:
    requests: int = 0
    errors: int = 0  # connection errors and timeouts (no HTTP status)
    seconds: float = 0.0
    statuses: Counter = field(default_factory=Counter)
    latencies_ms: list[float] = field(default_factory=list)
    response_bytes: int = 0

    @property
    def rps(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0

    @property
    def server_errors(self) -> int:
        return sum(n for status, n in self.statuses.items() if status >= 500)

    def pct(self, p: float) -> float:
        return percentile(self.latencies_ms, p)

    def summary(self) -> dict:
        return {
            "requests": self.requests,
            "seconds": round(self.seconds, 2),
            "rps": round(self.rps, 1),
            "p50_ms": round(self.pct(50), 2),
            "p95_ms": round(self.pct(95), 2),
            "p99_ms": round(self.pct(99), 2),
            "max_ms": round(self.latencies_ms[-1], 2) if self.latencies_ms else 0.0,
            "errors": self.errors,
            "statuses": {str(k): v for k, v in sorted(self.statuses.items())},
            "avg_bytes": round(self.response_bytes / self.requests) if self.requests else 0,
        }


@dataclass(frozen=True)
class Session:
    """What a stateful load keeps per connection: a value the server hands out in a response
    header (a guest cart's token, or cookies when ``cookies``), sent back on each later request
    of that connection, and forgotten every ``renew_every`` requests so that the next request
    starts a new one (a new cart, a new session) - as a stream of new visitors would."""

    response_header: str  # e.g. "X-Cart-Token", or "Set-Cookie"
    request_header: str  # e.g. "X-Cart-Token", or "Cookie"
    renew_every: int = 0  # 0: never
    cookies: bool = False  # keep a jar of the Set-Cookie name=value pairs


@dataclass(frozen=True)
class _Plan:
    host: str
    port: int
    paths: tuple[str, ...]
    headers: tuple[tuple[str, str], ...]
    threads: int
    thread_offset: int
    start_at: float  # wall clock (time.time) when every process starts sending
    warmup: float
    duration: float
    max_requests: int  # for this process
    timeout: float
    method: str = "GET"
    bodies: tuple[bytes, ...] | None = None  # one per path
    session: Session | None = None


def _remember(session: Session, response: http.client.HTTPResponse, jar: dict[str, str]) -> None:
    """Keep what ``response`` hands out for ``session`` in ``jar``."""
    if session.cookies:
        for header in response.headers.get_all("Set-Cookie") or ():
            name, _, value = header.split(";", 1)[0].partition("=")
            jar[name.strip()] = value.strip()
        return
    value = response.getheader(session.response_header)
    if value:
        jar[session.response_header] = value


def _session_value(session: Session, jar: dict[str, str]) -> str | None:
    if not jar:
        return None
    if session.cookies:
        return "; ".join(f"{name}={value}" for name, value in jar.items())
    return jar.get(session.response_header)


def _thread_loop(plan: _Plan, index: int, out: list, stop: threading.Event) -> None:
    headers = dict(plan.headers)
    paths = plan.paths
    position = (plan.thread_offset + index) * 7919 % len(paths)
    measure_from = plan.start_at + plan.warmup
    deadline = measure_from + plan.duration
    statuses: Counter = Counter()
    latencies: list[float] = []
    errors = 0
    size = 0
    last_end = 0.0
    capped = False
    session, jar, sent = plan.session, {}, 0
    conn = http.client.HTTPConnection(plan.host, plan.port, timeout=plan.timeout)
    try:
        while not stop.is_set():
            started_wall = time.time()
            if started_wall >= deadline:
                break
            index_now = position % len(paths)
            path = paths[index_now]
            payload = plan.bodies[index_now] if plan.bodies else None
            position += 1
            if session is not None:
                if session.renew_every and sent % session.renew_every == 0:
                    jar.clear()
                sent += 1
                value = _session_value(session, jar)
                if value is None:
                    headers.pop(session.request_header, None)
                else:
                    headers[session.request_header] = value
            started = time.perf_counter()
            try:
                conn.request(plan.method, path, body=payload, headers=headers)
                response = conn.getresponse()
                body = response.read()
                status = response.status
                if session is not None:
                    _remember(session, response, jar)
            except (OSError, http.client.HTTPException):
                conn.close()
                conn = http.client.HTTPConnection(plan.host, plan.port, timeout=plan.timeout)
                status = None
                body = b""
            elapsed_ms = (time.perf_counter() - started) * 1000
            finished_wall = time.time()
            if finished_wall < measure_from or finished_wall > deadline:
                continue
            if status is None:
                errors += 1
                continue
            statuses[status] += 1
            latencies.append(elapsed_ms)
            size += len(body)
            last_end = time.time()
            if len(latencies) >= plan.max_requests // plan.threads:
                capped = True
                break
    finally:
        conn.close()
        out.append((statuses, latencies, errors, size, capped, last_end))


def _run_process(plan: _Plan) -> tuple[dict, list[float], int, int, bool, float]:
    time.sleep(max(0.0, plan.start_at - time.time()))
    out: list = []
    stop = threading.Event()
    workers = [
        threading.Thread(target=_thread_loop, args=(plan, i, out, stop), daemon=True)
        for i in range(plan.threads)
    ]
    for worker in workers:
        worker.start()
    hard_limit = plan.warmup + plan.duration + plan.timeout + 5
    for worker in workers:
        worker.join(timeout=hard_limit)
    stop.set()
    statuses: Counter = Counter()
    latencies: list[float] = []
    errors = size = 0
    capped = False
    last_end = 0.0
    for s, lat, err, nbytes, thread_capped, thread_end in out:
        statuses.update(s)
        latencies.extend(lat)
        errors += err
        size += nbytes
        capped = capped or thread_capped
        last_end = max(last_end, thread_end)
    return dict(statuses), latencies, errors, size, capped, last_end


def run_load(
    host: str,
    port: int,
    paths: Sequence[str],
    *,
    concurrency: int = 16,
    duration: float = 10.0,
    warmup: float = 2.0,
    max_requests: int = 200_000,
    processes: int = 2,
    headers: dict[str, str] | None = None,
    timeout: float = 10.0,
    method: str = "GET",
    bodies: Sequence[bytes] | None = None,
    session: Session | None = None,
    start_at: float | None = None,
) -> LoadResult:
    """``method`` ``paths`` round-robin at ``concurrency`` for ``duration`` seconds after ``warmup``.

    ``bodies`` (one per path) are sent with the requests; with ``session``, each connection
    carries its own state from response to request (see ``Session``). ``start_at`` (wall
    clock, at least ``SPAWN_SECONDS`` ahead) is when sending starts, so that a caller can
    sample something over exactly the measured window."""
    if not paths:
        raise ValueError("no paths to request")
    if bodies is not None and len(bodies) != len(paths):
        raise ValueError("one body per path")
    duration = min(duration, MAX_DURATION_SECONDS)
    max_requests = min(max_requests, MAX_REQUESTS)
    processes = max(1, min(processes, concurrency))
    per_process = [concurrency // processes + (1 if i < concurrency % processes else 0)
                   for i in range(processes)]
    if start_at is None:
        start_at = time.time() + SPAWN_SECONDS
    plans = []
    offset = 0
    for threads in per_process:
        plans.append(_Plan(host, port, tuple(paths), tuple((headers or {}).items()), threads, offset,
                           start_at, warmup, duration,
                           max(threads, max_requests * threads // concurrency), timeout,
                           method, tuple(bodies) if bodies is not None else None, session))
        offset += threads
    result = LoadResult(seconds=duration)
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=processes, mp_context=context) as pool:
        capped = False
        last_end = 0.0
        for statuses, latencies, errors, size, was_capped, end in pool.map(_run_process, plans):
            result.statuses.update({int(k): v for k, v in statuses.items()})
            result.latencies_ms.extend(latencies)
            result.errors += errors
            result.response_bytes += size
            capped = capped or was_capped
            last_end = max(last_end, end)
    if capped:  # the request cap ended the run before the deadline
        result.seconds = max(0.001, min(duration, last_end - (start_at + warmup)))
    result.latencies_ms.sort()
    result.requests = len(result.latencies_ms)
    return result
