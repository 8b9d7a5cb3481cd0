"""Each webhook event delivered 3 times, shuffled, racing the confirms: one transition, one email.

ORDERS orders are placed over HTTP. For each, a signed
``payment_intent.succeeded`` event is built; every event is POSTed three
times and every order is also confirmed by its shopper, all of it shuffled and
sent from concurrent threads. The app runs in its production shape (events
to RQ through the outbox); afterwards the outbox is relayed and one burst
worker delivers (console email backend). Then, per order: one transition to
paid, one completed payment, one ORDER_PAID outbox event, one order-paid email
row and one email logged; the stock was committed once.
"""

from __future__ import annotations

import random
import threading
from collections import Counter

from bench import harness
from ecom.notifications.models import EventType
from reliability import common

ORDERS = 30
UNITS = 1000
THREADS = 16
PORT = 8832


def _event_object(intent_id: str, amount_minor: int) -> dict:
    return {"id": intent_id, "object": "payment_intent", "status": "succeeded", "amount": amount_minor,
            "currency": "usd", "metadata": {}}


def run(report: common.Report) -> None:
    common.require_routes("/api/v1/checkout/payment-intent", "/api/v1/checkout/confirm", "/webhooks/stripe")
    common.fresh_database()
    engine = common.engine()
    with engine.begin() as conn:
        sku = common.seed_stock(conn, UNITS)[0]
        users = common.seed_shoppers(conn, ORDERS)
        common.fill_carts(conn, users, sku, 1)
    harness.flush_redis(common.QUEUE_REDIS_URL)
    server = common.app_server(PORT, redis_url=common.QUEUE_REDIS_URL, name="reliability-webhooks")
    with server:
        placed = []
        for user_id in users:
            client = common.client_for(PORT, user_id)
            status, body, _ = client.request("POST", "/api/v1/checkout/payment-intent",
                                             {"shipping_address": harness.SHIPPING_ADDRESS})
            client.close()
            if status != 201:
                raise common.ScenarioFailed(f"placing an order answered {status}: {body}")
            amount_minor = int((body["order"]["total"]).replace(".", ""))
            placed.append((user_id, body["order"]["order_number"], body["payment_intent_id"], amount_minor))
        report.did(f"placed {len(placed)} orders over HTTP")

        deliveries = []
        for index, (user_id, _number, intent_id, amount_minor) in enumerate(placed):
            body, signature = common.signed_webhook("payment_intent.succeeded",
                                                    _event_object(intent_id, amount_minor),
                                                    f"evt_reliability_{index}")
            deliveries += [("webhook", body, signature)] * 3
            deliveries.append(("confirm", user_id, intent_id))
        random.Random(11).shuffle(deliveries)
        statuses: Counter = Counter()
        lock = threading.Lock()
        pending = list(deliveries)

        def sender() -> None:
            while True:
                with lock:
                    if not pending:
                        return
                    kind, first, second = pending.pop()
                if kind == "webhook":
                    status = common.post_raw(PORT, "/webhooks/stripe", first, {"Stripe-Signature": second})
                else:
                    client = common.client_for(PORT, first)
                    status, _, _ = client.request("POST", "/api/v1/checkout/confirm",
                                                  {"payment_intent_id": second})
                    client.close()
                with lock:
                    statuses[(kind, status)] += 1

        threads = [threading.Thread(target=sender, daemon=True) for _ in range(THREADS)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=120)
    report.did(f"sent {len(deliveries)} requests shuffled from {THREADS} threads: each of {ORDERS} events "
               f"3 times and {ORDERS} confirms")
    report.found(f"statuses {dict(sorted((f'{k} {s}', n) for (k, s), n in statuses.items()))}")
    report.check(statuses[("webhook", 200)] == 3 * ORDERS, "every webhook delivery answered 200")
    report.check(statuses[("confirm", 200)] == ORDERS, "every confirm answered 200")

    worker_log = common.drain_outbox(common.QUEUE_REDIS_URL, log_name="reliability-webhooks")
    report.did("relayed the outbox and ran one burst worker")
    numbers = [number for _, number, _, _ in placed]
    with engine.connect() as conn:
        rows = conn.execute(common.text("""
            SELECT o.order_number, o.status,
                   (SELECT count(*) FROM order_events e WHERE e.order_id = o.id AND e.to_status = 'paid')
                     AS to_paid,
                   (SELECT count(*) FROM payments p WHERE p.order_id = o.id AND p.status = 'completed')
                     AS completed,
                   (SELECT count(*) FROM outbox_events x WHERE x.type = :paid
                     AND x.payload::jsonb -> 'data' ->> 'order_number' = o.order_number) AS paid_events,
                   (SELECT count(*) FROM notifications n JOIN outbox_events x ON x.id = n.event_id
                     WHERE x.type = :paid AND n.channel = 'email' AND n.status = 'sent'
                     AND x.payload::jsonb -> 'data' ->> 'order_number' = o.order_number) AS paid_emails
            FROM orders o WHERE o.order_number = ANY(:numbers)"""),
            {"numbers": numbers, "paid": EventType.ORDER_PAID.value}).all()
        quantity, reserved = conn.execute(common.text(
            "SELECT quantity, reserved FROM inventory i JOIN variants v ON v.id = i.variant_id "
            "WHERE v.sku = :sku"), {"sku": sku}).one()
        stripe_events = common.scalar(conn, "SELECT count(*) FROM stripe_events")
    engine.dispose()
    logged = common.emails_logged(worker_log, "Payment confirmed")
    report.found(f"{len(rows)} orders; statuses {dict(Counter(r.status for r in rows))}; "
                 f"inventory quantity={quantity} reserved={reserved}; {stripe_events} stripe events recorded")
    bad = [r.order_number for r in rows if (r.status, r.to_paid, r.completed, r.paid_events, r.paid_emails)
           != ("paid", 1, 1, 1, 1)]
    report.check(len(rows) == ORDERS and not bad,
                 f"every order: paid, one transition, one completed payment, one ORDER_PAID event, "
                 f"one email row (wrong: {bad[:5]})")
    report.check(quantity == UNITS - ORDERS and reserved == 0, "stock committed exactly once per order")
    report.check(stripe_events == ORDERS, "each event id recorded once")
    twice = {k: n for k, n in logged.items() if n != 1}
    report.check(len(logged) == ORDERS and not twice,
                 f"one order-paid email logged per order ({len(logged)} logged, repeated: {twice})")

