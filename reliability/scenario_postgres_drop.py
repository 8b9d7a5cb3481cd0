"""PostgreSQL connections dropped under load: clean 503s, recovery, no half-written order.

The app's connections carry application_name ``ecom-reliability-app``; while
concurrent shoppers check out and browse the catalog, every backend of that
application in this scenario's own database is terminated
(pg_terminate_backend), KILLS times. Requests may fail, but only with a 503
and a JSON ``detail``; afterwards every request succeeds again; and every order
in the database is whole (items, payment, reservations, totals that add up).
"""

from __future__ import annotations

import threading
import time
from collections import Counter

from sqlalchemy import text

from bench import harness
from reliability import common

PORT = 8834
THREADS = 12
SHOPPERS = 400
KILLS = 4
KILL_EVERY = 1.5  # seconds
LOAD_SECONDS = 12.0


def _terminate_app_backends(engine) -> int:
    with engine.connect() as conn:
        killed = conn.execute(text("""
            SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity
            WHERE datname = :db AND application_name = :app AND pid <> pg_backend_pid()"""),
            {"db": common.DATABASE, "app": common.APP_NAME}).scalar_one()
        conn.commit()
    return killed


def run(report: common.Report) -> None:
    common.require_routes("/api/v1/checkout/payment-intent", "/api/v1/checkout/confirm", "/api/v1/products")
    common.fresh_database()
    engine = common.engine()
    with engine.begin() as conn:
        sku = common.seed_stock(conn, 100_000, products=20)[0]
        users = common.seed_shoppers(conn, SHOPPERS)
        common.fill_carts(conn, users, sku, 1)
    statuses: Counter = Counter()
    bad_bodies: list[str] = []
    lock = threading.Lock()
    pending = list(users)
    stop_at = time.monotonic() + LOAD_SECONDS

    def record(step: str, status: int, body) -> None:
        with lock:
            statuses[(step, status)] += 1
            if status == 503 and not (isinstance(body, dict) and body.get("detail")):
                bad_bodies.append(f"{step}: {body}")

    def shopper() -> None:
        browser = harness.JsonClient(PORT)
        while time.monotonic() < stop_at:
            with lock:
                user_id = pending.pop() if pending else None
            status, body, _ = browser.request("GET", "/api/v1/products?per_page=24")
            record("catalog", status, body)
            if user_id is None:
                continue
            client = common.client_for(PORT, user_id)
            status, body, _ = client.request("POST", "/api/v1/checkout/payment-intent",
                                             {"shipping_address": harness.SHIPPING_ADDRESS})
            record("payment_intent", status, body)
            if status == 201:
                status, body, _ = client.request("POST", "/api/v1/checkout/confirm",
                                                 {"payment_intent_id": body["payment_intent_id"]})
                record("confirm", status, body)
            client.close()
        browser.close()

    with common.app_server(PORT, name="reliability-postgres-drop"):
        threads = [threading.Thread(target=shopper, daemon=True) for _ in range(THREADS)]
        for thread in threads:
            thread.start()
        killed = []
        for _ in range(KILLS):
            time.sleep(KILL_EVERY)
            killed.append(_terminate_app_backends(engine))
        report.did(f"terminated the app's backends {KILLS} times under load: {killed} connections")
        for thread in threads:
            thread.join(timeout=LOAD_SECONDS + 60)
        under_load = dict(statuses)
        statuses.clear()
        time.sleep(1.0)
        probe = harness.JsonClient(PORT)
        for _ in range(3):  # the first use of each pooled connection after a kill may still fail
            probe.request("GET", "/health")
        after = [probe.request("GET", "/health")[0] for _ in range(10)]
        after += [probe.request("GET", "/api/v1/products?per_page=24")[0] for _ in range(10)]
        probe.close()
        with lock:
            last_users = pending[:5]
        for user_id in last_users:
            client = common.client_for(PORT, user_id)
            status, body, _ = client.request("POST", "/api/v1/checkout/payment-intent",
                                             {"shipping_address": harness.SHIPPING_ADDRESS})
            after.append(status)
            if status == 201:
                after.append(client.request("POST", "/api/v1/checkout/confirm",
                                            {"payment_intent_id": body["payment_intent_id"]})[0])
            client.close()

    report.found("under load: " + ", ".join(f"{k} {s}: {n}" for (k, s), n in sorted(under_load.items())))
    report.found(f"after the kills: statuses {dict(Counter(after))}")
    with engine.connect() as conn:
        broken = conn.execute(text("""
            SELECT o.order_number FROM orders o
            WHERE NOT EXISTS (SELECT 1 FROM order_items i WHERE i.order_id = o.id)
               OR NOT EXISTS (SELECT 1 FROM payments p WHERE p.order_id = o.id)
               OR NOT EXISTS (SELECT 1 FROM stock_reservations r WHERE r.order_id = o.id)
               OR abs(o.subtotal - (SELECT sum(line_total) FROM order_items i
                                    WHERE i.order_id = o.id)) >= 0.005
               OR (o.status = 'paid' AND (
                    NOT EXISTS (SELECT 1 FROM payments p WHERE p.order_id = o.id AND p.status = 'completed')
                    OR EXISTS (SELECT 1 FROM stock_reservations r
                               WHERE r.order_id = o.id AND r.status <> 'committed')))""")).scalars().all()
        orders = conn.execute(text("SELECT status, count(*) FROM orders GROUP BY status")).all()
        quantity, reserved = conn.execute(text(
            "SELECT quantity, reserved FROM inventory i JOIN variants v ON v.id = i.variant_id "
            "WHERE v.sku = :sku"), {"sku": sku}).one()
        committed, active = conn.execute(text("""
            SELECT coalesce(sum(quantity) FILTER (WHERE status = 'committed'), 0),
                   coalesce(sum(quantity) FILTER (WHERE status = 'active'), 0)
            FROM stock_reservations""")).one()
    engine.dispose()
    report.found(f"orders by status {dict(orders)}; inventory quantity={quantity} reserved={reserved}; "
                 f"reservations committed={committed} active={active}")
    unclean = {f"{k} {s}": n for (k, s), n in under_load.items() if s >= 500 and s != 503 or s <= 0}
    failed_cleanly = sum(n for (_, s), n in under_load.items() if s == 503)
    report.check(sum(killed) > 0, "the app's connections were really terminated")
    report.check(not unclean, f"no failure other than 503 under load ({unclean or 'none'}; "
                              f"{failed_cleanly} clean 503s)")
    report.check(not bad_bodies, f"every 503 had a JSON detail ({bad_bodies[:3]})")
    report.check(all(200 <= s < 300 for s in after), "every request after the kills succeeded")
    report.check(not broken, f"no half-written order ({broken[:5]})")
    report.check(quantity == 100_000 - committed and reserved == active,
                 "inventory agrees with the reservations")
