"""500 concurrent reservation attempts on 10 units: none oversold.

500 shoppers each hold one unit of the same SKU in their cart; they all POST
/api/v1/checkout/payment-intent at once (released together by a barrier).
Exactly 10 may succeed; the rest must be 409; nothing may answer 5xx; the
inventory row and the reservations must agree.
"""

from __future__ import annotations

import threading
from collections import Counter

from bench import harness
from reliability import common

ATTEMPTS = 500
UNITS = 10
PORT = 8831


def run(report: common.Report) -> None:
    common.require_routes("/api/v1/checkout/payment-intent")
    common.fresh_database()
    engine = common.engine()
    with engine.begin() as conn:
        sku = common.seed_stock(conn, UNITS)[0]
        users = common.seed_shoppers(conn, ATTEMPTS)
        common.fill_carts(conn, users, sku, 1)
    report.did(f"seeded {sku} with {UNITS} units and {ATTEMPTS} shoppers with 1 unit each in their cart")

    statuses: Counter = Counter()
    lock = threading.Lock()
    barrier = threading.Barrier(ATTEMPTS, timeout=60)

    def attempt(user_id: int) -> None:
        client = common.client_for(PORT, user_id)
        try:
            barrier.wait()
            status, _, _ = client.request("POST", "/api/v1/checkout/payment-intent",
                                          {"shipping_address": harness.SHIPPING_ADDRESS})
        except threading.BrokenBarrierError:
            status = -1
        finally:
            client.close()
        with lock:
            statuses[status] += 1

    with common.app_server(PORT, name="reliability-oversell"):
        threads = [threading.Thread(target=attempt, args=(u,), daemon=True) for u in users]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=120)
    report.did(f"{ATTEMPTS} concurrent POST /api/v1/checkout/payment-intent")
    report.found(f"statuses {dict(sorted(statuses.items()))}", statuses=dict(statuses))

    with engine.connect() as conn:
        quantity, reserved = conn.execute(common.text(
            "SELECT quantity, reserved FROM inventory i JOIN variants v ON v.id = i.variant_id "
            "WHERE v.sku = :sku"), {"sku": sku}).one()
        active = common.scalar(conn, "SELECT coalesce(sum(quantity), 0) FROM stock_reservations "
                                     "WHERE status = 'active'")
        orders = common.scalar(conn, "SELECT count(*) FROM orders")
    engine.dispose()
    report.found(f"inventory quantity={quantity} reserved={reserved}; active reservations hold {active}; "
                 f"{orders} orders", reserved=reserved, orders=orders)
    report.check(statuses[201] == UNITS, f"exactly {UNITS} reservations succeeded (got {statuses[201]})")
    report.check(statuses[409] == ATTEMPTS - UNITS, f"the other {ATTEMPTS - UNITS} were 409 "
                                                    f"(got {statuses[409]})")
    report.check(sum(n for s, n in statuses.items() if s >= 500 or s <= 0) == 0, "no 5xx, no dropped request")
    report.check(reserved <= quantity == UNITS, "0 units oversold (reserved <= quantity)")
    report.check(reserved == active == statuses[201], "inventory.reserved equals the active reservations")
    report.check(orders == statuses[201], "a refused attempt created no order")
