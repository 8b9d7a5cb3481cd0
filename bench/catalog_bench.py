"""Catalog bench: product list and detail vs a bare Flask ceiling, and SQL per request.

    python -m bench.catalog_bench [--duration 10] [--concurrency 16] [--profile]

On 10 000 products x 3 variants in PostgreSQL database ``ecom_bench`` (created,
migrated and filled if needed), the app and the ceiling each under the same
gunicorn settings, load from separate processes at fixed concurrency.
"""

from __future__ import annotations

import argparse
import random
import sys
import urllib.request

from bench import datagen, harness
from bench.loadgen import run_load

DATABASE = "ecom_bench"
PRODUCTS = 10_000
APP_PORT = 8811
CEILING_PORT = 8812
TARGETS = {"list": 0.5, "detail": 0.6}
P99_TARGET_MS = 100.0
LIST_PAGES = 40  # the list bench walks the first pages, newest first


def prepare() -> str:
    url = harness.ensure_database(DATABASE)
    harness.migrate(url)
    engine = harness.engine_for(url)
    datagen.ensure_dataset(engine, products=PRODUCTS)
    engine.dispose()
    return url


def list_paths() -> list[str]:
    return [f"/api/v1/products?per_page=24&page={page}" for page in range(1, LIST_PAGES + 1)]


def detail_paths(count: int = 2000) -> list[str]:
    rng = random.Random(7)
    return [f"/api/v1/products/product-{rng.randint(1, PRODUCTS)}" for _ in range(count)]


class QueryCounter:
    """Counts the SQL statements the app runs, with a before_cursor_execute listener."""

    def __init__(self, engine):
        from sqlalchemy import event

        self.count = 0
        self.statements: list[str] = []
        event.listen(engine, "before_cursor_execute", self._on_execute)

    def _on_execute(self, conn, cursor, statement, parameters, context, executemany):
        self.count += 1
        self.statements.append(statement)

    def measure(self, call) -> tuple[int, object]:
        self.count = 0
        self.statements = []
        result = call()
        return self.count, result


def queries_per_request(url: str) -> dict:
    """SQL statements for one request each (after a warm-up request), in process."""
    from ecom.app import create_app
    from ecom.extensions import db

    app = create_app({"SQLALCHEMY_DATABASE_URI": _sqlalchemy_url(url), "REDIS_URL": harness.REDIS_URL,
                      "RATELIMIT_STORAGE_URI": "memory://", "LOG_LEVEL": "WARNING", **harness.BENCH_SECRETS})
    client = app.test_client()
    counts = {}
    with app.app_context():
        counter = QueryCounter(db.engine)
    cases = {
        "list_per_page_5": "/api/v1/products?per_page=5",
        "list_per_page_24": "/api/v1/products?per_page=24",
        "list_per_page_100": "/api/v1/products?per_page=100",
        "detail": "/api/v1/products/product-42",
    }
    for name, path in cases.items():
        client.get(path)  # warm caches (e.g. reflection), as a running server would be
        queries, response = counter.measure(lambda p=path: client.get(p))
        if response.status_code != 200:
            body = response.get_data(as_text=True)[:300]
            raise RuntimeError(f"{path} answered {response.status_code}: {body}")
        counts[name] = queries
    return counts


def _sqlalchemy_url(url: str) -> str:
    from ecom.config import _normalise_db_url

    return _normalise_db_url(url)


def profile(url: str, path: str, requests: int = 300) -> str:
    """A pyinstrument profile of ``requests`` in-process requests to ``path``."""
    from pyinstrument import Profiler

    from ecom.app import create_app

    app = create_app({"SQLALCHEMY_DATABASE_URI": _sqlalchemy_url(url), "REDIS_URL": harness.REDIS_URL,
                      "RATELIMIT_STORAGE_URI": "memory://", "LOG_LEVEL": "WARNING", **harness.BENCH_SECRETS})
    client = app.test_client()
    client.get(path)
    profiler = Profiler(interval=0.0005)
    with profiler:
        for _ in range(requests):
            client.get(path)
    return profiler.output_text(unicode=False, color=False, show_all=False)


def response_size(base_url: str, paths: list[str], sample: int = 20) -> int:
    sizes = []
    for path in paths[:sample]:
        with urllib.request.urlopen(base_url + path, timeout=10) as response:
            if response.status != 200:
                raise RuntimeError(f"{path} answered {response.status}")
            sizes.append(len(response.read()))
    return round(sum(sizes) / len(sizes))


def measure(server: harness.Gunicorn, paths: list[str], load: dict, url: str | None = None):
    """The load result and the CPU milliseconds per request of the server (and of PostgreSQL)."""
    server_before = server.cpu_seconds()
    pg_before = harness.backend_cpu_seconds(url, DATABASE) if url else {}
    result = run_load("127.0.0.1", server.port, paths, **load)
    server_cpu = server.cpu_seconds() - server_before
    pg_cpu = 0.0
    if url:
        pg_after = harness.backend_cpu_seconds(url, DATABASE)
        pg_cpu = sum(after - pg_before.get(pid, 0.0) for pid, after in pg_after.items())
    # Warm-up requests are not counted, so this slightly overstates the cost per request.
    total = max(result.requests, 1)
    return result, {"server_cpu_ms": round(server_cpu * 1000 / total, 3),
                    "postgres_cpu_ms": round(pg_cpu * 1000 / total, 3)}


def run(duration: float, concurrency: int, want_profile: bool) -> int:
    url = prepare()
    counts = queries_per_request(url)
    lists, details = list_paths(), detail_paths()
    load = {"concurrency": concurrency, "duration": duration}
    with harness.app_server(url, APP_PORT, name="catalog-app") as app:
        settings = app.settings
        sizes = {"list": response_size(app.base_url(), lists),
                 "detail": response_size(app.base_url(), details)}
        measured, cpu = {}, {}
        for name, paths in (("list", lists), ("detail", details)):
            measured[name], cpu[name] = measure(app, paths, load, url)
    with harness.ceiling_server(CEILING_PORT) as bare:
        ceiling, ceiling_cpu = {}, {}
        for name, size in sizes.items():
            ceiling[name], ceiling_cpu[name] = measure(bare, [f"/payload/{size}"], load)

    figures: dict = {"server": settings, "concurrency": concurrency, "duration_s": duration,
                     "products": PRODUCTS, "queries_per_request": counts}
    rows, cpu_rows = [], []
    ok = counts["list_per_page_5"] == counts["list_per_page_100"]
    for name in ("list", "detail"):
        app_result, top = measured[name], ceiling[name]
        ratio = app_result.rps / top.rps if top.rps else 0.0
        met = (ratio >= TARGETS[name] and app_result.pct(99) < P99_TARGET_MS
               and app_result.server_errors == 0 and app_result.errors == 0)
        ok = ok and met
        app_cost = cpu[name]["server_cpu_ms"] + cpu[name]["postgres_cpu_ms"]
        cpu_ratio = ceiling_cpu[name]["server_cpu_ms"] / app_cost if app_cost else 0.0
        figures[name] = {"app": app_result.summary(), "ceiling": top.summary(), "ratio": round(ratio, 3),
                         "target_ratio": TARGETS[name], "payload_bytes": sizes[name], "met": met,
                         "cpu_ms_per_request": {"app": cpu[name]["server_cpu_ms"],
                                                "postgres": cpu[name]["postgres_cpu_ms"],
                                                "ceiling": ceiling_cpu[name]["server_cpu_ms"]},
                         "cpu_ratio": round(cpu_ratio, 3)}
        cpu_rows.append([name, cpu[name]["server_cpu_ms"], cpu[name]["postgres_cpu_ms"],
                         ceiling_cpu[name]["server_cpu_ms"], f"{cpu_ratio:.2f}"])
        for label, result in (("app", app_result), ("ceiling", top)):
            rows.append([name, label, f"{result.rps:.0f}", f"{result.pct(50):.1f}", f"{result.pct(95):.1f}",
                         f"{result.pct(99):.1f}", result.requests, result.server_errors + result.errors,
                         f"{ratio:.2f}" if label == "app" else ""])
    harness.print_table(f"catalog bench ({settings}, concurrency {concurrency}, {PRODUCTS} products x 3)",
                        ["page", "server", "req/s", "p50 ms", "p95 ms", "p99 ms", "requests", "errors",
                         "ratio"], rows)
    harness.print_table("CPU milliseconds per request (independent of other load on the machine)",
                        ["page", "app", "postgres", "ceiling", "ceiling / (app + postgres)"], cpu_rows)
    harness.print_table("SQL queries per request", ["request", "queries"],
                        [[k, v] for k, v in counts.items()])
    figures["targets_met"] = ok
    if want_profile or not ok:
        for name, path in (("list", lists[0]), ("detail", details[0])):
            print(f"\n--- pyinstrument profile: {name} {path} ---")
            print(profile(url, path))
    harness.emit_json("catalog", figures)
    broken = any(measured[n].server_errors or measured[n].errors or measured[n].requests == 0
                 for n in measured)
    return 1 if broken else 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--duration", type=float, default=10.0)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--profile", action="store_true", help="always print the profiles")
    args = parser.parse_args(argv)
    return run(args.duration, args.concurrency, args.profile)


if __name__ == "__main__":
    sys.exit(main())
