"""Checkout bench: concurrent shoppers racing for scarce stock through the HTTP API.

    python -m bench.checkout_bench [--shoppers 32] [--skus 30] [--stock 20]

Each SKU's stock is spread over LOCATIONS (3) shipping warehouses, so reservations
allocate over them (and split lines where one runs short).

Phase 1, the whole flow: shoppers sign up and sign in (untimed setup), then
race: add a scarce SKU to the cart, POST /api/v1/checkout/payment-intent (the
reservation), confirm with the simulated gateway; again until the stock is
gone or the time is up (checkouts/s).
Phase 2, the reservation race: the stock is topped up by RACE_UNITS per SKU,
RACE_SHOPPERS more shoppers (created in SQL, carts filled in SQL, one unit
each, more shoppers than units) all POST payment-intent from ``--shoppers``
client threads at once (reservations/s).
Every payment intent uses the voucher code VOUCHER (10 % off, no use limit), so tax, shipping,
a voucher and three stock locations are all in the path (issue 17's checkout target).
Then SQL checks that no unit was oversold and every order carries the voucher,
pg_stat_database that no deadlock happened, and the client that no request answered 5xx.
"""

from __future__ import annotations

import argparse
import random
import sys
import threading
import time
import uuid
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

from sqlalchemy import text

from bench import datagen, harness
from bench.loadgen import percentile

DATABASE = "ecom_bench_checkout"
APP_PORT = 8821
RESERVATIONS_TARGET = 100.0
RACE_SECONDS_LIMIT = 90.0
RACE_SHOPPERS = 400
RACE_UNITS = 10  # per SKU, for RACE_SHOPPERS / SKUs shoppers each
LOCATIONS = 3  # shipping warehouses each SKU's stock is spread over
SIGN_UP_AT_ONCE = 4
GIVE_UP_AFTER = 8  # consecutive refusals after which a shopper believes stock is gone
VOUCHER = "BENCH10"


class Tally:
    """Thread-safe counters and per-step latencies of one race."""

    def __init__(self):
        self.lock = threading.Lock()
        self.statuses: dict[str, Counter] = {}
        self.latencies: dict[str, list[float]] = {}
        self.reservations = 0
        self.units_reserved = 0
        self.paid = 0

    def record(self, step: str, status: int, elapsed_ms: float) -> None:
        with self.lock:
            self.statuses.setdefault(step, Counter())[status] += 1
            self.latencies.setdefault(step, []).append(elapsed_ms)

    @property
    def server_errors(self) -> int:
        return sum(n for c in self.statuses.values() for s, n in c.items() if s >= 500 or s == 0)


def prepare(skus: int, stock: int, locations: int = LOCATIONS) -> str:
    """The catalog, each SKU's ``stock`` spread over ``locations`` shipping warehouses (the
    first takes the remainder), so reservations allocate over them and split lines."""
    url = harness.ensure_database(DATABASE)
    harness.migrate(url)
    engine = harness.engine_for(url)
    with engine.begin() as conn:
        datagen.reset(conn)
        datagen.generate_catalog(conn, products=max(1, skus // 3), locations=locations)
        first, *_ = datagen.ensure_locations(conn, locations)
        share = stock // locations
        conn.execute(text("UPDATE inventory SET reserved = 0, quantity = CASE WHEN location_id = :first "
                          "THEN :q - :share * (:n - 1) ELSE :share END"),
                     {"q": stock, "share": share, "n": locations, "first": first})
        conn.execute(text("TRUNCATE outbox_events, notifications"))
        datagen.ensure_voucher(conn, VOUCHER)
    engine.dispose()
    return url


def checkout_body() -> dict:
    return {"shipping_address": harness.SHIPPING_ADDRESS, "voucher_code": VOUCHER}


def sku_list(skus: int) -> list[str]:
    return [f"SKU-{p}-{v}" for p in range(1, skus // 3 + 1) for v in (1, 2, 3)]


def sign_up(index: int, run_id: str) -> harness.JsonClient:
    client = harness.JsonClient(APP_PORT)
    email = f"shopper{index}-{run_id}@bench.example"
    password = "shopper-password-1"
    status, body, _ = client.request("POST", "/api/v1/auth/signup",
                                     {"email": email, "password": password, "full_name": f"Shopper {index}"})
    if status != 201:
        raise RuntimeError(f"signup answered {status}: {body}")
    status, body, _ = client.request("POST", "/api/v1/auth/login", {"email": email, "password": password})
    if status != 200:
        raise RuntimeError(f"login answered {status}: {body}")
    client.token = body["access_token"]
    return client


def shop(client: harness.JsonClient, skus: list[str], tally: Tally, deadline: float, seed: int) -> None:
    """One shopper: buy until refused GIVE_UP_AFTER times in a row or the deadline."""
    rng = random.Random(seed)
    refusals = 0
    while refusals < GIVE_UP_AFTER and time.monotonic() < deadline:
        quantity = rng.choice((1, 1, 2))
        status, cart, ms = client.request("POST", "/api/v1/cart/items",
                                          {"sku": rng.choice(skus), "quantity": quantity})
        tally.record("cart_add", status, ms)
        if status != 201:
            refusals += 1
            continue
        status, answer, ms = client.request("POST", "/api/v1/checkout/payment-intent", checkout_body(),
                                            {"Idempotency-Key": uuid.uuid4().hex})
        tally.record("payment_intent", status, ms)
        if status != 201:
            refusals += 1
            _empty_cart(client, cart, tally)
            continue
        refusals = 0
        units = sum(item["quantity"] for item in answer["order"]["items"])
        with tally.lock:
            tally.reservations += 1
            tally.units_reserved += units
        status, _, ms = client.request("POST", "/api/v1/checkout/confirm",
                                       {"payment_intent_id": answer["payment_intent_id"],
                                        "payment_method": "pm_card_visa"})
        tally.record("confirm", status, ms)
        if status == 200:
            with tally.lock:
                tally.paid += 1


def _empty_cart(client: harness.JsonClient, cart: dict | None, tally: Tally) -> None:
    for item in (cart or {}).get("items", []):
        status, _, ms = client.request("DELETE", f"/api/v1/cart/items/{item['id']}")
        tally.record("cart_remove", status, ms)


def prepare_race(url: str, codes: list[str]) -> tuple[list[int], int]:
    """Phase 2's shoppers (their carts filled) and how many reservations the stock allows."""
    engine = harness.engine_for(url)
    with engine.begin() as conn:
        # The race's units arrive at the last warehouse: shoppers' lines split to reach them.
        last = datagen.ensure_locations(conn, LOCATIONS)[-1]
        conn.execute(text("UPDATE inventory SET quantity = quantity + :n WHERE location_id = :last"),
                     {"n": RACE_UNITS, "last": last})
        users = datagen.seed_shoppers(conn, RACE_SHOPPERS, prefix=f"racer-{uuid.uuid4().hex[:6]}-")
        available = dict(conn.execute(text(
            "SELECT v.sku, sum(i.quantity - i.reserved) FROM inventory i "
            "JOIN variants v ON v.id = i.variant_id GROUP BY v.sku")).all())
        possible = 0
        for index, sku in enumerate(codes):
            wanting = users[index::len(codes)]
            datagen.fill_carts(conn, wanting, sku, 1)
            possible += min(len(wanting), available[sku])
    engine.dispose()
    return users, possible


def reservation_race(users: list[int], clients: int, tally: Tally) -> float:
    """Phase 2; its wall seconds."""
    pending = list(users)
    lock = threading.Lock()

    def racer() -> None:
        client = harness.JsonClient(APP_PORT)
        try:
            while True:
                with lock:
                    if not pending:
                        return
                    user_id = pending.pop()
                client.token = harness.mint_token(user_id)
                status, answer, ms = client.request("POST", "/api/v1/checkout/payment-intent",
                                                    checkout_body())
                tally.record("race_payment_intent", status, ms)
                if status == 201:
                    with tally.lock:
                        tally.reservations += 1
        finally:
            client.close()

    started = time.monotonic()
    threads = [threading.Thread(target=racer, daemon=True) for _ in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=RACE_SECONDS_LIMIT)
    return time.monotonic() - started


def verify(url: str, stock: int) -> dict:
    """Oversold units and stock bookkeeping, from SQL."""
    engine = harness.engine_for(url)
    with engine.connect() as conn:
        rows = conn.execute(text("""
            SELECT v.sku, i.quantity, i.reserved, i.each_within,
                   coalesce(sum(r.quantity) FILTER (WHERE r.status = 'committed'), 0) AS committed,
                   coalesce(sum(r.quantity) FILTER (WHERE r.status = 'active'), 0) AS active,
                   (SELECT coalesce(sum(oi.quantity), 0)
                    FROM order_items oi JOIN orders o ON o.id = oi.order_id
                    WHERE oi.variant_id = v.id AND o.status IN ('paid', 'packed', 'partially_shipped',
                                                                'shipped', 'ready_for_pickup', 'delivered'))
                     AS sold
            FROM variants v
            JOIN (SELECT variant_id, sum(quantity) AS quantity, sum(reserved) AS reserved,
                         bool_and(reserved <= quantity) AS each_within
                  FROM inventory GROUP BY variant_id) i ON i.variant_id = v.id
            LEFT JOIN stock_reservations r ON r.variant_id = v.id
            GROUP BY v.id, v.sku, i.quantity, i.reserved, i.each_within""")).all()
        orders = dict(conn.execute(text("SELECT status, count(*) FROM orders GROUP BY status")).all())
        without_voucher = conn.execute(text(
            "SELECT count(*) FROM orders WHERE voucher_code IS DISTINCT FROM :code OR discount_total <= 0"),
            {"code": VOUCHER}).scalar_one()
        paid_without_commit = conn.execute(text("""
            SELECT count(*) FROM orders o WHERE o.status = 'paid' AND NOT EXISTS (
                SELECT 1 FROM stock_reservations r WHERE r.order_id = o.id AND r.status = 'committed')
        """)).scalar_one()
    engine.dispose()
    oversold = sum(max(0, row.sold - stock) + max(0, row.committed + row.active - stock) for row in rows)
    books_wrong = [row.sku for row in rows
                   if row.quantity != stock - row.committed or row.reserved != row.active
                   or row.sold != row.committed or not row.each_within]
    return {"oversold_units": oversold, "units_sold": sum(r.sold for r in rows),
            "units_still_reserved": sum(r.active for r in rows), "stock_units": stock * len(rows),
            "orders_by_status": orders, "orders_without_the_voucher": without_voucher,
            "inventory_mismatches": books_wrong,
            "paid_without_committed_reservation": paid_without_commit}


def run(shoppers: int, skus: int, stock: int, *, database: str = DATABASE, port: int = APP_PORT) -> int:
    global DATABASE, APP_PORT
    DATABASE, APP_PORT = database, port  # the helpers below read them
    concurrency = shoppers  # every shopper races at once
    url = prepare(skus, stock)
    harness.flush_redis()
    codes = sku_list(skus)
    limits = {"SIGNUP_RATE_LIMIT": "100000 per hour", "LOGIN_RATE_LIMIT": "100000 per hour"}
    with harness.app_server(url, APP_PORT, name="checkout-app", **limits) as app:
        run_id = uuid.uuid4().hex[:8]
        # Untimed setup, a few at a time: 32 bcrypt hashes at once on a busy machine outlast
        # the client's timeout.
        with ThreadPoolExecutor(max_workers=SIGN_UP_AT_ONCE) as pool:
            clients = list(pool.map(lambda i: sign_up(i, run_id), range(shoppers)))
        deadlocks_before = harness.deadlocks(url, DATABASE)
        tally = Tally()
        started = time.monotonic()
        deadline = started + RACE_SECONDS_LIMIT
        with ThreadPoolExecutor(max_workers=concurrency) as pool:
            futures = [pool.submit(shop, client, codes, tally, deadline, seed)
                       for seed, client in enumerate(clients)]
            for future in futures:
                future.result()
        elapsed = time.monotonic() - started
        for client in clients:
            client.close()
        race = Tally()
        racers, race_possible = prepare_race(url, codes)
        server_before, pg_before = app.cpu_seconds(), harness.backend_cpu_seconds(url, DATABASE)
        race_seconds = reservation_race(racers, concurrency, race)
        server_cpu = app.cpu_seconds() - server_before
        pg_after = harness.backend_cpu_seconds(url, DATABASE)
        pg_cpu = sum(after - pg_before.get(pid, 0.0) for pid, after in pg_after.items())
        deadlocks_after = harness.deadlocks(url, DATABASE)
        settings = app.settings
    found = verify(url, stock + RACE_UNITS)
    flow_rate = tally.paid / elapsed if elapsed else 0.0
    rate = race.reservations / race_seconds if race_seconds else 0.0
    race_requests = max(sum(race.statuses.get("race_payment_intent", Counter()).values()), 1)
    cpu_ms = {"app": round(server_cpu * 1000 / race_requests, 2),
              "postgres": round(pg_cpu * 1000 / race_requests, 2)}
    for step, latencies in race.latencies.items():
        tally.latencies[step] = latencies
        tally.statuses[step] = race.statuses[step]
    deadlocks = deadlocks_after - deadlocks_before
    correct = (found["oversold_units"] == 0 and deadlocks == 0
               and tally.server_errors + race.server_errors == 0
               and race.reservations == race_possible
               and not found["inventory_mismatches"] and found["paid_without_committed_reservation"] == 0
               and found["orders_without_the_voucher"] == 0)
    steps = {}
    rows = []
    for step, latencies in sorted(tally.latencies.items()):
        latencies.sort()
        steps[step] = {"count": len(latencies), "p50_ms": round(percentile(latencies, 50), 1),
                       "p99_ms": round(percentile(latencies, 99), 1),
                       "statuses": {str(k): v for k, v in sorted(tally.statuses[step].items())}}
        rows.append([step, len(latencies), steps[step]["p50_ms"], steps[step]["p99_ms"],
                     " ".join(f"{k}:{v}" for k, v in steps[step]["statuses"].items())])
    harness.print_table(f"checkout bench ({settings}; {shoppers} concurrent shoppers; "
                        f"{len(codes)} SKUs x {stock} units)",
                        ["step", "requests", "p50 ms", "p99 ms", "statuses"], rows)
    harness.print_table("outcome", ["figure", "value"], [
        ["phase 1 (whole flow) seconds", f"{elapsed:.2f}"],
        ["phase 1 checkouts paid", tally.paid],
        ["phase 1 checkouts paid/s", f"{flow_rate:.1f}"],
        ["phase 2 (reservation race) seconds", f"{race_seconds:.2f}"],
        ["phase 2 reservations / stock allowed / attempts",
         f"{race.reservations} / {race_possible} / {RACE_SHOPPERS}"],
        ["phase 2 reservations/s", f"{rate:.1f} (target >= {RESERVATIONS_TARGET:.0f})"],
        ["phase 2 CPU ms per request: app / postgres", f"{cpu_ms['app']} / {cpu_ms['postgres']}"],
        ["units sold / stock", f"{found['units_sold']} / {found['stock_units']}"],
        ["units oversold", found["oversold_units"]],
        ["deadlocks", deadlocks],
        ["5xx or transport errors", tally.server_errors + race.server_errors],
        ["inventory rows not adding up", len(found["inventory_mismatches"])],
        ["orders without the voucher's discount", found["orders_without_the_voucher"]],
    ])
    harness.emit_json("checkout", {
        "server": settings, "shoppers": shoppers, "concurrency": concurrency, "skus": len(codes),
        "stock_per_sku": stock, "flow_seconds": round(elapsed, 2), "flow_reservations": tally.reservations,
        "paid": tally.paid, "paid_per_s": round(flow_rate, 1), "race_shoppers": RACE_SHOPPERS,
        "race_units_per_sku": RACE_UNITS, "race_seconds": round(race_seconds, 2),
        "reservations": race.reservations, "reservations_per_s": round(rate, 1),
        "race_cpu_ms_per_request": cpu_ms, "deadlocks": deadlocks,
        "server_errors": tally.server_errors + race.server_errors, "steps": steps, **found,
        "target_met": correct and rate >= RESERVATIONS_TARGET, "correct": correct,
    })
    return 0 if correct else 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--shoppers", type=int, default=32, help="all race at once")
    parser.add_argument("--skus", type=int, default=30)
    parser.add_argument("--stock", type=int, default=20, help="units per SKU")
    parser.add_argument("--database", default=DATABASE,
                        help=f"the bench's own database (default {DATABASE}; dropped and refilled)")
    parser.add_argument("--port", type=int, default=APP_PORT, help="the app server's port")
    args = parser.parse_args(argv)
    return run(args.shoppers, args.skus, args.stock, database=args.database, port=args.port)


if __name__ == "__main__":
    sys.exit(main())
