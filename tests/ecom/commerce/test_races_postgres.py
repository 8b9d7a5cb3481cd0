"""Concurrency on PostgreSQL: real commits, one connection per thread, row locks doing the work.

Each thread sends real requests through its own test client (so its own app
context, session and pooled connection); a barrier lines them up so they hit
the database together.
"""

from __future__ import annotations

import json
import threading
from collections import Counter

import pytest
from sqlalchemy import func, select

from ecom.commerce.gateways.webhooks import sign_webhook
from ecom.commerce.models import Order, OrderEvent, StripeEvent
from ecom.commerce.status import OrderStatus
from ecom.inventory.models import Inventory, MovementReason, StockMovement
from ecom.notifications.models import OutboxEvent
from storefront_api.security import issue_access_token
from tests.commerce_support import ADDRESS, fill_cart
from tests.factories import UserFactory, stocked_variant

INTENT = "/api/v1/checkout/payment-intent"
CONFIRM = "/api/v1/checkout/confirm"
SECRET = "whsec_test_secret"


def run_together(app, calls) -> list:
    """Run each ``call(client)`` in its own thread, released at the same moment."""
    barrier = threading.Barrier(len(calls))
    results: list = [None] * len(calls)

    def worker(index, call):
        client = app.test_client()
        barrier.wait()
        try:
            results[index] = call(client)
        except Exception as exc:  # noqa: BLE001 - reported to the assertion below
            results[index] = exc

    threads = [threading.Thread(target=worker, args=(i, c)) for i, c in enumerate(calls)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    return results


def bearer(user) -> dict:
    return {"Authorization": f"Bearer {issue_access_token(user)[0]}"}


def fresh(db, statement):
    db.session.expire_all()
    return db.session.scalar(statement)


def place_order(db, client, user, variant, quantity=1) -> dict:
    fill_cart(user, [(variant, quantity)])
    db.session.commit()
    response = client.post(INTENT, json={"shipping_address": ADDRESS}, headers=bearer(user))
    assert response.status_code == 201, response.get_json()
    return response.get_json()


def succeeded_event(intent_id: str, amount_minor: int, event_id: str) -> tuple[str, str]:
    payload = json.dumps({"id": event_id, "object": "event", "type": "payment_intent.succeeded",
                          "data": {"object": {"id": intent_id, "object": "payment_intent",
                                              "amount": amount_minor, "currency": "usd",
                                              "status": "succeeded", "metadata": {}}}})
    return payload, sign_webhook(payload, SECRET)


@pytest.mark.parametrize("round_", range(5))
def test_webhook_racing_confirm_pays_exactly_once(postgres, committed_db, round_):
    # given a placed order for 2 units of 10 (total 49.19)
    db = committed_db
    app = postgres
    user = UserFactory()
    variant = stocked_variant(quantity=10, price="20.00")
    db.session.commit()
    placed = place_order(db, app.test_client(), user, variant, quantity=2)
    intent_id = placed["payment_intent_id"]
    payload, signature = succeeded_event(intent_id, 4919, f"evt_race_{round_}")
    headers = bearer(user)

    # when the confirm call and the succeeded webhook arrive at the same moment
    results = run_together(app, [
        lambda c: c.post(CONFIRM, json={"payment_intent_id": intent_id}, headers=headers),
        lambda c: c.post("/webhooks/stripe", data=payload,
                         headers={"Stripe-Signature": signature, "Content-Type": "application/json"}),
    ])

    # then both answer 200 and the order was paid once
    assert [getattr(r, "status_code", r) for r in results] == [200, 200]
    order = fresh(db, select(Order).where(Order.order_number == placed["order"]["order_number"]))
    assert order.status == OrderStatus.PAID
    paid_events = db.session.scalar(select(func.count()).select_from(OrderEvent)
                                    .where(OrderEvent.order_id == order.id, OrderEvent.to_status == "paid"))
    outbox_paid = db.session.scalar(select(func.count()).select_from(OutboxEvent)
                                    .where(OutboxEvent.type == "ORDER_PAID"))
    sales = db.session.scalar(select(func.count()).select_from(StockMovement)
                              .where(StockMovement.reason == MovementReason.SALE))
    inventory = fresh(db, select(Inventory).where(Inventory.variant_id == variant.id))
    assert (paid_events, outbox_paid, sales) == (1, 1, 1)
    assert (inventory.quantity, inventory.reserved) == (8, 0)
    winner = order.events[-1].actor
    print(f"\nrace round {round_}: paid by {winner!r}; paid transitions={paid_events}, "
          f"ORDER_PAID rows={outbox_paid}, sale movements={sales}, stock 10 -> {inventory.quantity}")


def test_the_same_webhook_delivered_five_times_at_once_is_processed_once(postgres, committed_db):
    db = committed_db
    app = postgres
    user = UserFactory()
    variant = stocked_variant(quantity=10, price="20.00")
    db.session.commit()
    placed = place_order(db, app.test_client(), user, variant)
    payload, signature = succeeded_event(placed["payment_intent_id"], 2759, "evt_dup")
    headers = {"Stripe-Signature": signature, "Content-Type": "application/json"}

    results = run_together(app, [lambda c: c.post("/webhooks/stripe", data=payload, headers=headers)] * 5)

    assert [getattr(r, "status_code", r) for r in results] == [200] * 5
    processed = Counter(r.get_json()["processed"] for r in results)
    assert processed[True] == 1 and processed[False] == 4
    assert fresh(db, select(func.count()).select_from(StripeEvent)) == 1
    paid_events = select(func.count()).select_from(OutboxEvent).where(OutboxEvent.type == "ORDER_PAID")
    assert fresh(db, paid_events) == 1
    assert fresh(db, select(Inventory.quantity).where(Inventory.variant_id == variant.id)) == 9


def test_thirty_shoppers_for_five_units_never_oversell(postgres, committed_db):
    # given 5 units and 30 shoppers, each with that 1 unit in their cart
    db = committed_db
    app = postgres
    variant = stocked_variant(quantity=5, price="20.00")
    shoppers = [UserFactory() for _ in range(30)]
    for shopper in shoppers:
        fill_cart(shopper, [(variant, 1)])
    db.session.commit()
    tokens = [bearer(s) for s in shoppers]

    # when they all check out at once
    results = run_together(app, [
        (lambda c, h=h: c.post(INTENT, json={"shipping_address": ADDRESS}, headers=h)) for h in tokens
    ])

    # then exactly 5 orders hold stock, the rest are told 409 naming the SKU, and nothing is a 500
    statuses = Counter(getattr(r, "status_code", repr(r)) for r in results)
    print(f"\noversell race: {dict(statuses)}")
    assert statuses == Counter({201: 5, 409: 25})
    assert all(variant.sku in r.get_json()["detail"] for r in results if r.status_code == 409)
    inventory = fresh(db, select(Inventory).where(Inventory.variant_id == variant.id))
    assert (inventory.quantity, inventory.reserved) == (5, 5)
    assert fresh(db, select(func.count()).select_from(Order)) == 5

    # when the 5 winners confirm, also at once
    winners = [(r.get_json()["payment_intent_id"], tokens[i]) for i, r in enumerate(results)
               if r.status_code == 201]
    confirms = run_together(app, [
        (lambda c, i=i, h=h: c.post(CONFIRM, json={"payment_intent_id": i}, headers=h)) for i, h in winners
    ])

    # then all are paid and exactly 5 units left the shelf
    assert [r.status_code for r in confirms] == [200] * 5
    inventory = fresh(db, select(Inventory).where(Inventory.variant_id == variant.id))
    assert (inventory.quantity, inventory.reserved) == (0, 0)
    paid = fresh(db, select(func.count()).select_from(Order).where(Order.status == OrderStatus.PAID))
    assert paid == 5
    sold = db.session.scalar(select(func.sum(StockMovement.delta))
                             .where(StockMovement.variant_id == variant.id))
    assert sold == -5
    print(f"after confirms: quantity {inventory.quantity}, reserved {inventory.reserved}, paid orders {paid}")


@pytest.mark.parametrize("round_", range(3))
def test_expiry_racing_a_confirm_never_oversells_or_half_cancels(postgres, committed_db, round_):
    from datetime import timedelta

    from ecom.db import utcnow
    from ecom.inventory.models import StockReservation
    from workers.periodic import expire_reservations

    # given an order whose reservation is overdue
    db = committed_db
    app = postgres
    user = UserFactory()
    variant = stocked_variant(quantity=10, price="20.00")
    db.session.commit()
    placed = place_order(db, app.test_client(), user, variant, quantity=2)
    db.session.execute(StockReservation.__table__.update().values(expires_at=utcnow() - timedelta(seconds=5)))
    db.session.commit()
    headers = bearer(user)

    def run_expiry(_client):
        with app.app_context():
            return expire_reservations()

    # when the expiry job and the shopper's confirm run at once
    expired, confirmed = run_together(app, [
        run_expiry,
        lambda c: c.post(CONFIRM, json={"payment_intent_id": placed["payment_intent_id"]}, headers=headers),
    ])

    # then exactly one of them won, and stock agrees with the order's fate
    order = fresh(db, select(Order).where(Order.order_number == placed["order"]["order_number"]))
    inventory = fresh(db, select(Inventory).where(Inventory.variant_id == variant.id))
    print(f"\nexpiry race round {round_}: order {order.status}, confirm {confirmed.status_code}, "
          f"expired {expired}, stock {inventory.quantity}/{inventory.reserved}, "
          f"history {[e.to_status for e in order.events]}")
    history = [e.to_status for e in order.events]
    if order.status == OrderStatus.PAID:
        # confirm first (expiry then finds nothing), or expiry first and the payment that still
        # succeeded took the stock again: either way sold once
        assert confirmed.status_code == 200
        assert history in (["created", "paid"], ["created", "cancelled", "paid"])
        assert expired == ([] if history == ["created", "paid"] else [order.order_number])
        assert (inventory.quantity, inventory.reserved) == (8, 0)
        sales = db.session.scalar(select(func.count()).select_from(StockMovement)
                                  .where(StockMovement.variant_id == variant.id))
        assert sales == 1
    else:
        assert order.status == OrderStatus.CANCELLED
        assert confirmed.status_code == 409 and expired == [order.order_number]
        assert (inventory.quantity, inventory.reserved) == (10, 0)
