"""The cost of one ``POST /checkout/payment-intent``, in process: SQL round trips and CPU.

    python -m bench.checkout_profile [--orders 200] [--lines 1] [--statements] [--profile | --cpu-profile]

Independent of other load on the machine (unlike the checkout bench's rate):
on its own database ``ecom_bench_checkout_profile`` (10 products x 3 variants,
ample stock), ``--orders`` shoppers created in SQL, each with ``--lines``
one-unit lines in their cart, place their order through the Flask test client
one after another. Counted per request: SQL statements (a
``before_cursor_execute`` listener), the pool's pre-ping round trips, commits,
CPU and wall milliseconds of this process, and CPU milliseconds of the
PostgreSQL backends (from /proc, in clock ticks: a rough figure).
``--statements`` prints one request's statements, ``--profile`` a pyinstrument
profile of all of them (wall time, database waits included), ``--cpu-profile``
a cProfile of their CPU time (``time.process_time``) by function.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
import uuid

from sqlalchemy import event, text

from bench import checkout_bench, datagen, harness

DATABASE = "ecom_bench_checkout_profile"
PRODUCTS = 10
INTENT = "/api/v1/checkout/payment-intent"


def prepare(orders: int, lines: int) -> tuple[str, list[int]]:
    url = harness.ensure_database(DATABASE)
    harness.migrate(url)
    engine = harness.engine_for(url)
    with engine.begin() as conn:
        datagen.reset(conn)
        datagen.generate_catalog(conn, products=PRODUCTS, locations=checkout_bench.LOCATIONS)
        # Ample stock at the last warehouse only: each line is allocated over all three.
        last = datagen.ensure_locations(conn, checkout_bench.LOCATIONS)[-1]
        conn.execute(text("UPDATE inventory SET quantity = CASE WHEN location_id = :last THEN 1000000 "
                          "ELSE 0 END, reserved = 0"), {"last": last})
        datagen.ensure_voucher(conn, checkout_bench.VOUCHER)
        conn.execute(text("TRUNCATE outbox_events, notifications, idempotency_keys"))
        users = datagen.seed_shoppers(conn, orders + 1, prefix=f"profile-{uuid.uuid4().hex[:6]}-")
        skus = [f"SKU-{p}-{v}" for p in range(1, PRODUCTS + 1) for v in (1, 2, 3)]
        for line in range(lines):
            for index, sku in enumerate(skus):
                wanting = users[(index + line) % len(skus)::len(skus)]
                if wanting:
                    datagen.fill_carts(conn, wanting, sku, 1)
    engine.dispose()
    return url, users


class RoundTrips:
    """Statements, pre-pings and commits the app sends to the database."""

    def __init__(self, engine):
        self.statements: list[str] = []
        self.pings = 0
        self.commits = 0
        event.listen(engine, "before_cursor_execute", self._on_execute)
        event.listen(engine, "commit", self._on_commit)
        dialect = engine.dialect
        do_ping = dialect.do_ping

        def counted_ping(dbapi_connection):
            self.pings += 1
            return do_ping(dbapi_connection)

        dialect.do_ping = counted_ping

    def _on_execute(self, conn, cursor, statement, parameters, context, executemany):
        self.statements.append(statement)

    def _on_commit(self, conn):
        self.commits += 1

    def reset(self) -> None:
        self.statements, self.pings, self.commits = [], 0, 0


def make_app(url: str):
    from ecom.config import _normalise_db_url
    from shop.app import create_app

    return create_app({"SQLALCHEMY_DATABASE_URI": _normalise_db_url(url), "REDIS_URL": harness.REDIS_URL,
                       "RATELIMIT_STORAGE_URI": "memory://", "LOG_LEVEL": "WARNING",
                       **harness.BENCH_SECRETS})


def run(orders: int, lines: int, show_statements: bool, want_profile: bool,
        want_cpu_profile: bool = False) -> int:
    from ecom.extensions import db

    url, users = prepare(orders, lines)
    app = make_app(url)
    client = app.test_client()
    with app.app_context():
        trips = RoundTrips(db.engine)
    body = checkout_bench.checkout_body()  # the race's request: tax, default shipping, a voucher

    def place(user_id: int):
        headers = {"Authorization": f"Bearer {harness.mint_token(user_id)}"}
        return client.post(INTENT, json=body, headers=headers)

    warm = place(users[0])  # first request: imports, caches, the pool's first connection
    if warm.status_code != 201:
        raise RuntimeError(f"payment-intent answered {warm.status_code}: {warm.get_data(as_text=True)[:300]}")
    profiler = None
    if want_profile:
        from pyinstrument import Profiler

        profiler = Profiler(interval=0.0005)
        profiler.start()
    elif want_cpu_profile:
        import cProfile

        profiler = cProfile.Profile(time.process_time)
        profiler.enable()
    counts, pings, commits, cpu_ms, wall_ms = [], [], [], [], []
    first_statements: list[str] = []
    pg_before = harness.backend_cpu_seconds(url, DATABASE)
    for user_id in users[1:]:
        trips.reset()
        cpu, wall = time.process_time(), time.perf_counter()
        response = place(user_id)
        cpu_ms.append((time.process_time() - cpu) * 1000)
        wall_ms.append((time.perf_counter() - wall) * 1000)
        if response.status_code != 201:
            raise RuntimeError(f"payment-intent answered {response.status_code}: "
                               f"{response.get_data(as_text=True)[:300]}")
        counts.append(len(trips.statements))
        pings.append(trips.pings)
        commits.append(trips.commits)
        first_statements = first_statements or list(trips.statements)
    pg_after = harness.backend_cpu_seconds(url, DATABASE)
    pg_ms = sum(after - pg_before.get(pid, 0.0) for pid, after in pg_after.items()) * 1000 / len(counts)
    if profiler is not None:
        profiler.disable() if want_cpu_profile else profiler.stop()
    figures = {
        "orders": orders, "lines_per_order": lines,
        "statements_per_request": statistics.median(counts),
        "pings_per_request": statistics.median(pings),
        "commits_per_request": statistics.median(commits),
        "round_trips_per_request": statistics.median(c + p + m for c, p, m in zip(counts, pings, commits,
                                                                                  strict=True)),
        "cpu_ms_per_request": round(statistics.mean(cpu_ms), 2),
        "cpu_ms_median": round(statistics.median(cpu_ms), 2),
        "wall_ms_median": round(statistics.median(wall_ms), 2),
        "postgres_cpu_ms_per_request": round(pg_ms, 2),
    }
    harness.print_table(f"payment-intent in process ({orders} orders x {lines} line(s))",
                        ["figure", "value"], [[k, v] for k, v in figures.items()])
    if show_statements:
        print("\nstatements of one request:")
        for number, statement in enumerate(first_statements, 1):
            print(f"{number:3}. {' '.join(statement.split())[:200]}")
    if want_cpu_profile:
        import pstats

        profiler.dump_stats(harness.LOG_DIR / "checkout_profile.pstats")  # for pstats callers/callees
        stats = pstats.Stats(profiler).strip_dirs()
        stats.sort_stats("tottime").print_stats(40)
        stats.sort_stats("cumulative").print_stats(80)
    elif profiler is not None:
        print(profiler.output_text(unicode=False, color=False, show_all=False))
    harness.emit_json("checkout_profile", figures)
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--orders", type=int, default=200)
    parser.add_argument("--lines", type=int, default=1, help="one-unit lines per cart")
    parser.add_argument("--statements", action="store_true", help="print one request's statements")
    parser.add_argument("--profile", action="store_true", help="print a pyinstrument profile")
    parser.add_argument("--cpu-profile", action="store_true", help="print a cProfile of CPU time")
    args = parser.parse_args(argv)
    return run(args.orders, args.lines, args.statements, args.profile, args.cpu_profile)


if __name__ == "__main__":
    sys.exit(main())
