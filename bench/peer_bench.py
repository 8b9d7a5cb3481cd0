"""Peer bench: the app against django-oscar 4.2 + oscarapi 3.3 on the same catalog.

    python -m bench.peer_bench [--seconds 10] [--warmup 2] [--rounds 3] [--concurrency 16]

``make bench-peer`` creates ``.venv-peer`` (requirements-peer.txt) and runs this with the
app's virtualenv; Oscar runs from ``.venv-peer`` only (its manage.py, its gunicorn), so
nothing of Oscar is ever imported here.

Both shops hold 2 000 products x 3 variants (the app: bench/datagen.py in
``ecom_bench_peer_app``; Oscar: a parent product with three child products, each with a
stock record, in ``ecom_bench_peer_oscar``, bench/peer/peershop/management/commands/
peer_catalog.py), both under gunicorn with the same flags (gthread, 2 workers x 4 threads,
keep-alive 30, ``--no-control-socket``), both loaded by bench/loadgen.py at the same
concurrency. Operations, in rounds that alternate who goes first:

- list: the app's ``/api/v1/products?per_page=24&page=N`` uncached (a server with
  ``CATALOG_CACHE_SECONDS=0``) and cached (production settings but a 10-minute page
  lifetime, every page fetched once first: the figure is a hit's cost), against
  oscarapi's ``/api/products/?structure=parent&page=N`` (24 a page: the peer shop sets
  DRF's PageNumberPagination; oscarapi's default is every product, children included,
  in one answer); pages 1-40 of both.
- detail: ``/api/v1/products/product-<p>`` (uncached and cached) against
  ``/api/products/<p>/`` (the parent product with its children), the same 2 000 random p.
- add-to-cart: ``POST /api/v1/cart/items`` {sku, quantity 1} with a guest cart's
  ``X-Cart-Token`` against ``POST /api/basket/add-product/`` {url, quantity 1} with
  Django's session cookie; each connection starts a new cart (a new visitor) every 8 adds,
  8 different in-stock variants per cart, on both.
- search: the catalog bench's ``search_paths()`` (``/api/v1/products?per_page=24&q=<text>``,
  10 texts of which 2 are typos: our full-text search, then its trigram fallback) uncached,
  against the peer shop's ``/bench/search/?q=<text>``: Oscar's search without Solr, i.e.
  haystack's simple backend, done fairly - every word ``icontains`` in the UPC, title or
  description of a browsable product, ANDed, newest first. Oscar finds nothing for the typos.
- filtered: the catalog bench's ``filtered_paths()`` (category + price range + sort;
  ``attr.size`` + ``in_stock`` + page; category + ``in_stock`` + ``sort=rating``) uncached,
  against ``/bench/products/?<the same query>``: the app's filters with Django's ORM on Oscar's
  models (category with its treebeard descendants, the lowest child stock record price,
  a child's ProductAttributeValue, a child's stock record with num_in_stock > num_allocated).
- facets: the catalog bench's ``facets_paths()`` (``facets=true`` with category + in_stock,
  and with q) uncached, against the same view with ``facets=true``: the list plus the app's
  counts (per category, price bucket and attribute value, each under the other filters) as
  grouped ORM counts.

The three answer as oscarapi's list does (its ``ProductLinkSerializer``, DRF's page-number
pagination with a total count, 24 a page); bench/peer/peershop/views.py says what each
filter does there, docs/v2/issue-17-peer-search.md why it is the fair equivalent. Before
anything is measured, each distinct path of the three is asked once of both shops and the
answers' totals are printed side by side (``answer_totals`` in the JSON): equal but for the
two typo searches.

Figures: req/s, p50/p99, CPU milliseconds per request from /proc (the gunicorn master and
workers, plus the PostgreSQL backends of the shop's database, sampled at the start and the
end of the measured window), and the average body size. Redis's CPU is not counted for
either (the server is shared with other benches; the app's cached pages live there).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import subprocess
import sys
import threading
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from bench import datagen, harness
from bench.catalog_bench import facets_paths, filtered_paths, search_paths
from bench.loadgen import SPAWN_SECONDS, LoadResult, Session, run_load

APP_DATABASE = "ecom_bench_peer_app"
OSCAR_DATABASE = "ecom_bench_peer_oscar"
PRODUCTS = 2000
LIST_PAGES = 40
DETAIL_PATHS = 2000
CART_ADDS = 2000
ADDS_PER_CART = 8
APP_CACHED_PORT = 8831
APP_UNCACHED_PORT = 8832
OSCAR_PORT = 8833
CACHED_SECONDS = 600
PEER_DIR = harness.ROOT / "bench" / "peer"
PEER_PYTHON = harness.ROOT / ".venv-peer" / "bin" / "python"
PEER_VERSIONS = "django-oscar 4.2.1, django-oscar-api 3.3.0, Django 5.2.19, DRF 3.16.1"
JSON_HEADERS = {"Accept": "application/json", "Content-Type": "application/json"}


# --- the two shops -------------------------------------------------------------------------

def prepare_app() -> str:
    """The app's database: migrated, 2 000 products x 3 variants, no carts."""
    url = harness.ensure_database(APP_DATABASE)
    harness.migrate(url)
    engine = harness.engine_for(url)
    datagen.ensure_dataset(engine, products=PRODUCTS)
    with engine.begin() as conn:
        from sqlalchemy import text

        conn.execute(text("TRUNCATE cart_items, carts RESTART IDENTITY CASCADE"))
    engine.dispose()
    return url


def oscar_env() -> dict[str, str]:
    """The peer shop's environment: the same PostgreSQL server and Redis as the app's."""
    parts = urlsplit(harness.PG_BASE)
    env = dict(os.environ)
    env.update(DJANGO_SETTINGS_MODULE="peershop.settings", PEER_DB_NAME=OSCAR_DATABASE,
               PEER_DB_USER=parts.username or "postgres", PEER_DB_PASSWORD=parts.password or "",
               PEER_DB_HOST=parts.hostname or "127.0.0.1", PEER_DB_PORT=str(parts.port or 5432),
               PEER_REDIS_URL=harness.REDIS_URL, PYTHONUNBUFFERED="1")
    return env


def manage(*args: str, timeout: float = 400) -> str:
    """``manage.py`` of the peer shop, with .venv-peer's python."""
    result = subprocess.run([str(PEER_PYTHON), "manage.py", *args], cwd=PEER_DIR, env=oscar_env(),
                            capture_output=True, text=True, timeout=timeout)
    if result.returncode:
        raise RuntimeError(f"manage.py {' '.join(args)} failed:\n{result.stdout}\n{result.stderr}")
    return result.stdout.strip()


def prepare_oscar() -> str:
    """Oscar's database: migrated by its own manage.py, the same catalog, no baskets."""
    url = harness.ensure_database(OSCAR_DATABASE)
    started = time.monotonic()
    manage("migrate", "--noinput", "-v", "0")
    print(f"oscar migrated in {time.monotonic() - started:.1f}s", flush=True)
    print(manage("peer_catalog", "--products", str(PRODUCTS)), flush=True)
    return url


def oscar_server() -> harness.Gunicorn:
    return harness.Gunicorn("peershop.wsgi:application", OSCAR_PORT, oscar_env(), name="peer-oscar",
                            python=str(PEER_PYTHON), cwd=PEER_DIR)


# --- what is requested ---------------------------------------------------------------------

def detail_numbers() -> list[int]:
    rng = random.Random(7)
    return [rng.randint(1, PRODUCTS) for _ in range(DETAIL_PATHS)]


def cart_variants() -> list[int]:
    """Variant ids to add, in stock in both shops (the datagen sells out every 17th)."""
    rng = random.Random(11)
    found: list[int] = []
    while len(found) < CART_ADDS:
        vid = rng.randint(1, PRODUCTS * 3)
        if vid % 17:
            found.append(vid)
    return found


def sku(vid: int) -> str:
    product, size = (vid - 1) // 3 + 1, (vid - 1) % 3 + 1
    return f"SKU-{product}-{size}"


OURS_LIST = "/api/v1/products?per_page=24&"


def oscar_equivalent(path: str) -> str:
    """The peer shop's path for one of the catalog bench's list paths (bench/catalog_bench.py):
    a search only (``q`` alone) to ``/bench/search/``, the rest to ``/bench/products/``, with the
    same query string less ``per_page=24`` (the peer shop's page size is 24)."""
    if not path.startswith(OURS_LIST):
        raise ValueError(f"not a list path of the app: {path}")
    query = path.removeprefix(OURS_LIST)
    only_search = all(part.startswith("q=") for part in query.split("&"))
    return f"/bench/{'search' if only_search else 'products'}/?{query}"


@dataclass
class Target:
    """One side of one operation: which server, what to send, which database it uses."""

    side: str  # "app" / "app, uncached" / "oscar"
    server: harness.Gunicorn
    database: str
    url: str
    paths: list[str]
    method: str = "GET"
    bodies: list[bytes] | None = None
    session: Session | None = None
    warm: bool = False  # fetch every page once first (a warm cache)


def targets(app_url: str, oscar_url: str, app: harness.Gunicorn, uncached: harness.Gunicorn,
            oscar: harness.Gunicorn) -> dict[str, list[Target]]:
    pages = range(1, LIST_PAGES + 1)
    numbers = detail_numbers()
    variants = cart_variants()
    ours_list = [f"/api/v1/products?per_page=24&page={page}" for page in pages]
    ours_detail = [f"/api/v1/products/product-{n}" for n in numbers]
    oscar_base = oscar.base_url()
    searches, filters, facets = search_paths(), filtered_paths(), facets_paths()
    return {
        "list": [
            Target("app, uncached", uncached, APP_DATABASE, app_url, ours_list),
            Target("app", app, APP_DATABASE, app_url, ours_list, warm=True),
            Target("oscar", oscar, OSCAR_DATABASE, oscar_url,
                   [f"/api/products/?structure=parent&page={page}" for page in pages]),
        ],
        "detail": [
            Target("app, uncached", uncached, APP_DATABASE, app_url, ours_detail),
            Target("app", app, APP_DATABASE, app_url, ours_detail, warm=True),
            Target("oscar", oscar, OSCAR_DATABASE, oscar_url, [f"/api/products/{n}/" for n in numbers]),
        ],
        "add-to-cart": [
            Target("app", app, APP_DATABASE, app_url, ["/api/v1/cart/items"] * len(variants), "POST",
                   [json.dumps({"sku": sku(v), "quantity": 1}).encode() for v in variants],
                   Session("X-Cart-Token", "X-Cart-Token", renew_every=ADDS_PER_CART)),
            Target("oscar", oscar, OSCAR_DATABASE, oscar_url, ["/api/basket/add-product/"] * len(variants),
                   "POST",
                   [json.dumps({"url": f"{oscar_base}/api/products/{PRODUCTS + v}/", "quantity": 1}).encode()
                    for v in variants],
                   Session("Set-Cookie", "Cookie", renew_every=ADDS_PER_CART, cookies=True)),
        ],
        # The catalog bench's paths, ours uncached; Oscar's equivalents in bench/peer/peershop/views.py.
        "search": [
            Target("app, uncached", uncached, APP_DATABASE, app_url, searches),
            Target("oscar", oscar, OSCAR_DATABASE, oscar_url, [oscar_equivalent(p) for p in searches]),
        ],
        "filtered": [
            Target("app, uncached", uncached, APP_DATABASE, app_url, filters),
            Target("oscar", oscar, OSCAR_DATABASE, oscar_url, [oscar_equivalent(p) for p in filters]),
        ],
        "facets": [
            Target("app, uncached", uncached, APP_DATABASE, app_url, facets),
            Target("oscar", oscar, OSCAR_DATABASE, oscar_url, [oscar_equivalent(p) for p in facets]),
        ],
    }


# --- measuring -----------------------------------------------------------------------------

@dataclass
class Measured:
    side: str
    round: int
    result: LoadResult
    server_cpu_ms: float
    postgres_cpu_ms: float
    load_avg: float
    extra: dict = field(default_factory=dict)

    @property
    def cpu_ms(self) -> float:
        return self.server_cpu_ms + self.postgres_cpu_ms

    @property
    def not_ok(self) -> int:
        return self.result.errors + sum(n for status, n in self.result.statuses.items()
                                        if not 200 <= status < 300)

    def summary(self) -> dict:
        return {"side": self.side, "round": self.round, **self.result.summary(),
                "server_cpu_ms": round(self.server_cpu_ms, 3),
                "postgres_cpu_ms": round(self.postgres_cpu_ms, 3), "cpu_ms": round(self.cpu_ms, 3),
                "load_avg_1m": self.load_avg}


def in_round_order(sides: list, round_number: int, key=lambda target: target.side) -> list:
    """Odd rounds: ours first, then Oscar; even rounds: Oscar first (ours keep their order)."""
    oscar_first = round_number % 2 == 0
    return sorted(sides, key=lambda side: (key(side) == "oscar") != oscar_first)


def warm(base_url: str, paths: list[str]) -> None:
    """Fetch each distinct page once (8 at a time), so that the measured run finds it cached."""
    def fetch(path: str) -> None:
        with urllib.request.urlopen(base_url + path, timeout=30) as response:
            response.read()

    with ThreadPoolExecutor(8) as pool:
        list(pool.map(fetch, dict.fromkeys(paths)))


COMPARED = ("search", "filtered", "facets")


def compare_totals(plan: dict[str, list[Target]]) -> dict:
    """Each distinct path of the search / filtered / facets operations asked once of both shops
    (before anything is measured): the answers' total counts side by side, so that the report
    shows the two did the same work - or where they did not (Oscar has no typo fallback)."""
    def total(target: Target, path: str) -> int:
        with urllib.request.urlopen(target.server.base_url() + path, timeout=60) as response:
            body = json.load(response)
        return int(body["total"] if "total" in body else body["count"])

    found = {}
    for operation in COMPARED:
        ours, oscar = (next(t for t in plan[operation] if (t.side == "oscar") == is_oscar)
                       for is_oscar in (False, True))
        pairs = list(dict.fromkeys(zip(ours.paths, oscar.paths, strict=True)))
        totals = [(total(ours, a), total(oscar, b)) for a, b in pairs]
        found[operation] = {
            "paths": len(pairs), "ours_total": sum(a for a, _ in totals),
            "oscar_total": sum(b for _, b in totals),
            "differ": [{"ours": a, "oscar": b, "ours_total": x, "oscar_total": y}
                       for (a, b), (x, y) in zip(pairs, totals, strict=True) if x != y]}
        print(f"totals {operation:9} {len(pairs):3} paths: ours {found[operation]['ours_total']}, "
              f"Oscar {found[operation]['oscar_total']}"
              + "".join(f"\n  differ: {d['ours']} {d['ours_total']} / Oscar {d['oscar_total']}"
                        for d in found[operation]["differ"]), flush=True)
    return found


class CpuWindow(threading.Thread):
    """CPU seconds of a server and of its database's backends over exactly the measured window
    (from the end of the warm-up to the deadline), sampled from /proc on a thread of its own:
    warm-up requests are not counted, so their CPU must not be either - a slow peer measured
    over a short window would otherwise be charged its warm-up."""

    def __init__(self, target: Target, begin: float, end: float):
        super().__init__(daemon=True)
        self.target, self.begin, self.end = target, begin, end
        self.server_cpu = self.postgres_cpu = 0.0

    def _sample(self) -> tuple[float, dict[int, float]]:
        return (self.target.server.cpu_seconds(),
                harness.backend_cpu_seconds(self.target.url, self.target.database))

    def run(self) -> None:
        time.sleep(max(0.0, self.begin - time.time()))
        server_before, pg_before = self._sample()
        time.sleep(max(0.0, self.end - time.time()))
        server_after, pg_after = self._sample()
        self.server_cpu = server_after - server_before
        self.postgres_cpu = sum(after - pg_before.get(pid, 0.0) for pid, after in pg_after.items())


def measure(target: Target, load: dict, round_number: int) -> Measured:
    if target.warm:
        warm(target.server.base_url(), target.paths)
    start_at = time.time() + SPAWN_SECONDS
    window = CpuWindow(target, start_at + load["warmup"], start_at + load["warmup"] + load["duration"])
    window.start()
    result = run_load("127.0.0.1", target.server.port, target.paths, headers=JSON_HEADERS,
                      method=target.method, bodies=target.bodies, session=target.session,
                      start_at=start_at, **load)
    window.join(timeout=60)
    total = max(result.requests, 1)
    return Measured(target.side, round_number, result, window.server_cpu * 1000 / total,
                    window.postgres_cpu * 1000 / total, round(os.getloadavg()[0], 2))


def median_of(runs: list[Measured]) -> dict:
    def med(values):
        return round(statistics.median(values), 3) if values else 0.0

    return {"rps": med([r.result.rps for r in runs]), "p50_ms": med([r.result.pct(50) for r in runs]),
            "p99_ms": med([r.result.pct(99) for r in runs]),
            "server_cpu_ms": med([r.server_cpu_ms for r in runs]),
            "postgres_cpu_ms": med([r.postgres_cpu_ms for r in runs]),
            "cpu_ms": med([r.cpu_ms for r in runs]),
            "avg_bytes": med([r.result.summary()["avg_bytes"] for r in runs]),
            "not_2xx": sum(r.not_ok for r in runs)}


def round_ratios(runs: list[Measured], side: str) -> list[tuple[float, float]]:
    """(req/s ratio, CPU ms ratio) of ``side`` over Oscar in each round both ran."""
    ours = {m.round: m for m in runs if m.side == side}
    oscar = {m.round: m for m in runs if m.side == "oscar"}
    return [(ours[r].result.rps / oscar[r].result.rps if oscar[r].result.rps else 0.0,
             ours[r].cpu_ms / oscar[r].cpu_ms if oscar[r].cpu_ms else 0.0)
            for r in sorted(ours.keys() & oscar.keys())]


def run(seconds: float, warmup: float, rounds: int, concurrency: int) -> int:
    if not PEER_PYTHON.exists():
        print(f"{PEER_PYTHON} is missing: `make bench-peer` creates it from requirements-peer.txt")
        return 2
    started = time.monotonic()
    load_at_start = os.getloadavg()
    app_url = prepare_app()
    oscar_url = prepare_oscar()
    from bench.catalog_bench import forget_cached_pages

    forget_cached_pages()
    load = {"concurrency": concurrency, "duration": seconds, "warmup": warmup}
    measured: dict[str, list[Measured]] = {}
    # The cached server keeps pages 10 minutes instead of production's 30 s: on a busy machine
    # warming 2 000 detail pages takes longer than 30 s, and the figure is meant to be a hit's
    # cost (every write still bumps the catalog version and retires every page at once).
    with harness.app_server(app_url, APP_CACHED_PORT, name="peer-app",
                            CATALOG_CACHE_SECONDS=str(CACHED_SECONDS)) as app, \
            harness.app_server(app_url, APP_UNCACHED_PORT, name="peer-app-uncached",
                               CATALOG_CACHE_SECONDS="0") as uncached, \
            oscar_server() as oscar:
        plan = targets(app_url, oscar_url, app, uncached, oscar)
        totals = compare_totals(plan)
        for round_number in range(1, rounds + 1):
            for operation, sides in plan.items():
                for target in in_round_order(sides, round_number):
                    m = measure(target, load, round_number)
                    measured.setdefault(operation, []).append(m)
                    print(f"round {round_number} {operation:11} {m.side:14} {m.result.rps:8.1f} req/s  "
                          f"p99 {m.result.pct(99):7.1f} ms  CPU {m.cpu_ms:6.2f} ms  "
                          f"load {m.load_avg}", flush=True)
        settings = app.settings
    return report(measured, settings, load, rounds, load_at_start, time.monotonic() - started, totals)


def report(measured: dict[str, list[Measured]], settings: str, load: dict, rounds: int,
           load_at_start: tuple[float, float, float], elapsed: float, totals: dict | None = None) -> int:
    figures: dict = {"server": settings, "concurrency": load["concurrency"], "seconds": load["duration"],
                     "rounds": rounds, "products": PRODUCTS, "peer": PEER_VERSIONS,
                     "load_avg_at_start": [round(v, 2) for v in load_at_start],
                     "load_avg_at_end": [round(v, 2) for v in os.getloadavg()], "operations": {}}
    summary_rows = []
    for operation, runs in measured.items():
        rows = []
        for m in sorted(runs, key=lambda m: (m.side, m.round)):
            r = m.result
            rows.append([m.side, m.round, f"{r.rps:.0f}", f"{r.pct(50):.1f}", f"{r.pct(99):.1f}",
                         f"{m.server_cpu_ms:.2f}", f"{m.postgres_cpu_ms:.2f}", f"{m.cpu_ms:.2f}",
                         r.summary()["avg_bytes"], r.requests, m.not_ok, m.load_avg])
        sides = list(dict.fromkeys(m.side for m in runs))
        medians = {side: median_of([m for m in runs if m.side == side]) for side in sides}
        for side, med in medians.items():
            rows.append([side, "median", f"{med['rps']:.0f}", f"{med['p50_ms']:.1f}", f"{med['p99_ms']:.1f}",
                         f"{med['server_cpu_ms']:.2f}", f"{med['postgres_cpu_ms']:.2f}",
                         f"{med['cpu_ms']:.2f}",
                         round(med["avg_bytes"]), "", med["not_2xx"], ""])
        harness.print_table(f"{operation} ({settings}, concurrency {load['concurrency']}, "
                            f"{load['duration']:g} s measured)",
                            ["server", "round", "req/s", "p50 ms", "p99 ms", "server CPU ms", "PG CPU ms",
                             "CPU ms", "bytes", "requests", "not 2xx", "load 1m"], rows)
        oscar = medians.get("oscar")
        ratios = {}
        for side, med in medians.items():
            if side == "oscar" or not oscar:
                continue
            rps_ratio = med["rps"] / oscar["rps"] if oscar["rps"] else 0.0
            cpu_ratio = med["cpu_ms"] / oscar["cpu_ms"] if oscar["cpu_ms"] else 0.0
            # The same ratios within each round (the two ran minutes apart at most), then their
            # median: steadier than the ratio of medians while other work on the machine drifts.
            per_round = round_ratios(runs, side)
            round_rps = statistics.median(r for r, _ in per_round) if per_round else 0.0
            round_cpu = statistics.median(c for _, c in per_round) if per_round else 0.0
            ratios[side] = {"rps_ratio": round(rps_ratio, 3), "cpu_ratio": round(cpu_ratio, 3),
                            "rps_ratio_per_round": [round(r, 3) for r, _ in per_round],
                            "cpu_ratio_per_round": [round(c, 3) for _, c in per_round],
                            "rps_ratio_median_of_rounds": round(round_rps, 3),
                            "cpu_ratio_median_of_rounds": round(round_cpu, 3)}
            summary_rows.append([operation, side, f"{med['rps']:.0f}", f"{oscar['rps']:.0f}",
                                 f"{rps_ratio:.2f} ({round_rps:.2f})",
                                 f"{med['cpu_ms']:.2f}", f"{oscar['cpu_ms']:.2f}",
                                 f"{cpu_ratio:.2f} ({round_cpu:.2f})",
                                 f"{med['avg_bytes']:.0f} / {oscar['avg_bytes']:.0f}"])
        figures["operations"][operation] = {"runs": [m.summary() for m in runs], "median": medians,
                                            "ours_over_oscar": ratios}
    harness.print_table("ours / Oscar: ratio of the medians over the rounds (in brackets: median of the "
                        "ratios within each round); req/s: higher is better for us, CPU ms: lower is",
                        ["operation", "ours", "ours req/s", "Oscar req/s", "req/s ratio", "ours CPU ms",
                         "Oscar CPU ms", "CPU ratio", "bytes ours / Oscar"], summary_rows)
    print(f"\nload average (1, 5, 15 min): {figures['load_avg_at_start']} at the start, "
          f"{figures['load_avg_at_end']} at the end; {elapsed:.0f} s in all. The machine's other "
          "work moves req/s; CPU ms per request moves much less.")
    figures["elapsed_s"] = round(elapsed)
    figures["answer_totals"] = totals or {}
    harness.emit_json("peer", figures)
    broken = any(m.not_ok or m.result.requests == 0 for runs in measured.values() for m in runs)
    return 1 if broken else 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=10.0, help="measured seconds per run")
    parser.add_argument("--warmup", type=float, default=2.0)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--concurrency", type=int, default=16)
    args = parser.parse_args(argv)
    return run(args.seconds, args.warmup, args.rounds, args.concurrency)


if __name__ == "__main__":
    sys.exit(main())
