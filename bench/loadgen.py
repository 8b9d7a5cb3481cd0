"""A bounded HTTP load generator: keep-alive connections at fixed concurrency.

The load runs in separate processes (spawned, so they share nothing with the
harness) with a few threads each; every thread owns one keep-alive
``http.client`` connection and loops over its share of the paths until the
deadline or the request cap, whichever comes first. Only requests that start
after the warm-up and finish before the deadline are measured.

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
    conn = http.client.HTTPConnection(plan.host, plan.port, timeout=plan.timeout)
    try:
        while not stop.is_set():
            started_wall = time.time()
            if started_wall >= deadline:
                break
            path = paths[position % len(paths)]
            position += 1
            started = time.perf_counter()
            try:
                conn.request("GET", path, headers=headers)
                response = conn.getresponse()
                body = response.read()
                status = response.status
            except (OSError, http.client.HTTPException):
                conn.close()
                conn = http.client.HTTPConnection(plan.host, plan.port, timeout=plan.timeout)
                status = None
                body = b""
            elapsed_ms = (time.perf_counter() - started) * 1000
            if started_wall < measure_from or time.time() > deadline:
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
) -> LoadResult:
    """GET ``paths`` round-robin at ``concurrency`` for ``duration`` seconds after ``warmup``."""
    if not paths:
        raise ValueError("no paths to request")
    duration = min(duration, MAX_DURATION_SECONDS)
    max_requests = min(max_requests, MAX_REQUESTS)
    processes = max(1, min(processes, concurrency))
    per_process = [concurrency // processes + (1 if i < concurrency % processes else 0)
                   for i in range(processes)]
    start_at = time.time() + 1.5  # time for the spawned processes to import
    plans = []
    offset = 0
    for threads in per_process:
        plans.append(_Plan(host, port, tuple(paths), tuple((headers or {}).items()), threads, offset,
                           start_at, warmup, duration,
                           max(threads, max_requests * threads // concurrency), timeout))
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
