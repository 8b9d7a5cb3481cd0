"""Orders API, cancelling, refunds, and the expiry of unpaid orders (late payments too)."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
from sqlalchemy import select

from ecom.actor import SYSTEM
from ecom.commerce.cancellation import cancel_order
from ecom.commerce.checkout import finalize_payment
from ecom.commerce.gateways.base import SUCCEEDED, Intent
from ecom.commerce.models import Order, Payment
from ecom.commerce.order_actions import refund_payment
from ecom.commerce.status import OrderStatus, PaymentStatus
from ecom.db import utcnow
from ecom.errors import Conflict, InvalidTransition, ValidationFailed
from ecom.extensions import db
from ecom.fulfillment.services import mark_packed, mark_processing
from ecom.inventory.models import ReservationStatus, StockReservation
from ecom.inventory.services import ledger_total
from ecom.unit_of_work import commit
from tests.commerce_support import ADDRESS, auth, fill_cart, inventory_of, outbox_types, statements_during
from tests.factories import UserFactory, stocked_variant
from workers.periodic import expire_reservations

INTENT = "/api/v1/checkout/payment-intent"
CONFIRM = "/api/v1/checkout/confirm"


def place(client, user, lines) -> dict:
    fill_cart(user, lines)
    response = client.post(INTENT, json={"shipping_address": ADDRESS}, headers=auth(user))
    assert response.status_code == 201, response.get_json()
    return response.get_json()


def pay(client, user, placed: dict) -> dict:
    response = client.post(CONFIRM, json={"payment_intent_id": placed["payment_intent_id"]},
                           headers=auth(user))
    assert response.status_code == 200, response.get_json()
    return response.get_json()["order"]


def order_of(placed: dict) -> Order:
    return db.session.scalar(select(Order).where(Order.order_number == placed["order"]["order_number"])
                             .execution_options(populate_existing=True))


# --- reading ---------------------------------------------------------------------------------


def test_orders_list_is_the_shoppers_own_newest_first_and_paginated(client, shopper, variant):
    first, second = place(client, shopper, [(variant, 1)]), place(client, shopper, [(variant, 1)])
    place(client, UserFactory(), [(variant, 1)])
    response = client.get("/api/v1/orders?per_page=1", headers=auth(shopper))
    body = response.get_json()
    assert response.status_code == 200
    assert (body["total"], body["pages"], body["page"], body["per_page"]) == (2, 2, 1, 1)
    assert body["items"][0]["order_number"] == second["order"]["order_number"]
    page2 = client.get("/api/v1/orders?per_page=1&page=2", headers=auth(shopper)).get_json()
    assert page2["items"][0]["order_number"] == first["order"]["order_number"]


def test_order_detail_and_another_shoppers_order_is_404(client, shopper, variant):
    placed = place(client, shopper, [(variant, 1)])
    number = placed["order"]["order_number"]
    mine = client.get(f"/api/v1/orders/{number}", headers=auth(shopper))
    assert mine.status_code == 200 and mine.get_json() == placed["order"]
    assert mine.get_json()["created_at"].endswith(("Z", "+00:00"))
    theirs = client.get(f"/api/v1/orders/{number}", headers=auth(UserFactory()))
    assert theirs.status_code == 404
    assert client.get("/api/v1/orders/ORD-00000000-NOPE00", headers=auth(shopper)).status_code == 404
    assert client.get(f"/api/v1/orders/{number}").status_code == 401


def test_bad_pagination_is_400(client, shopper):
    assert client.get("/api/v1/orders?per_page=101", headers=auth(shopper)).status_code == 400
    assert client.get("/api/v1/orders?page=x", headers=auth(shopper)).status_code == 400


# --- cancelling ------------------------------------------------------------------------------


def test_cancel_a_created_order_releases_its_reservation(client, shopper, variant):
    placed = place(client, shopper, [(variant, 3)])
    number = placed["order"]["order_number"]
    response = client.post(f"/api/v1/orders/{number}/cancel", headers=auth(shopper))
    assert response.status_code == 200
    body = response.get_json()
    assert body["status"] == "cancelled" and body["cancelled_at"]
    assert inventory_of(variant).reserved == 0 and inventory_of(variant).quantity == 10
    assert outbox_types() == ["ORDER_PLACED", "ORDER_CANCELLED"]
    # the simulated intent is now cancelled: a late confirm cannot pay it
    late = client.post(CONFIRM, json={"payment_intent_id": placed["payment_intent_id"]},
                       headers=auth(shopper))
    assert late.status_code == 409 and "cancelled" in late.get_json()["detail"]
    assert order_of(placed).status == OrderStatus.CANCELLED
    assert "PAYMENT_FAILED" not in outbox_types()


def test_cancel_a_paid_order_returns_stock_and_refunds(client, shopper, variant):
    placed = place(client, shopper, [(variant, 2)])
    pay(client, shopper, placed)
    number = placed["order"]["order_number"]
    response = client.post(f"/api/v1/orders/{number}/cancel", json={"reason": "changed my mind"},
                           headers=auth(shopper))
    assert response.status_code == 200
    body = response.get_json()
    assert body["status"] == "cancelled"
    assert body["payment"]["status"] == "refunded" and body["payment"]["refunded_amount"] == "49.19"
    assert body["fulfillment"]["status"] == "cancelled"
    inventory = inventory_of(variant)
    assert (inventory.quantity, inventory.reserved) == (10, 0)
    assert ledger_total(variant.id) == 0  # -2 sale, +2 return (factory stock has no ledger row)
    assert outbox_types() == ["ORDER_PLACED", "ORDER_PAID", "ORDER_CANCELLED", "PAYMENT_REFUNDED"]
    assert order_of(placed).cancel_reason == "changed my mind"


def test_cancel_twice_or_after_packing_is_409(client, shopper, variant):
    created = place(client, shopper, [(variant, 1)])
    number = created["order"]["order_number"]
    client.post(f"/api/v1/orders/{number}/cancel", headers=auth(shopper))
    again = client.post(f"/api/v1/orders/{number}/cancel", headers=auth(shopper))
    assert again.status_code == 409

    packed = place(client, shopper, [(variant, 1)])
    pay(client, shopper, packed)
    fulfillment = order_of(packed).fulfillment
    mark_processing(fulfillment, actor=SYSTEM)
    mark_packed(fulfillment, actor=SYSTEM)
    db.session.commit()
    response = client.post(f"/api/v1/orders/{packed['order']['order_number']}/cancel", headers=auth(shopper))
    assert response.status_code == 409
    assert order_of(packed).status == OrderStatus.PACKED


def test_cancel_another_shoppers_order_is_404(client, shopper, variant):
    placed = place(client, shopper, [(variant, 1)])
    response = client.post(f"/api/v1/orders/{placed['order']['order_number']}/cancel",
                           headers=auth(UserFactory()))
    assert response.status_code == 404
    assert order_of(placed).status == OrderStatus.CREATED


def test_cancel_order_service_refuses_later_statuses(client, shopper, variant):
    placed = place(client, shopper, [(variant, 1)])
    order = order_of(placed)
    order.status = OrderStatus.SHIPPED
    db.session.flush()
    with pytest.raises(InvalidTransition):
        cancel_order(order, actor=SYSTEM, reason="too late")


# --- refunds (the back office calls these) ----------------------------------------------------


def test_partial_then_full_refund(client, shopper, variant):
    placed = place(client, shopper, [(variant, 2)])
    pay(client, shopper, placed)
    order = order_of(placed)
    refund_payment(order, Decimal("10.00"), actor=SYSTEM)
    commit()  # the refund is made by the gateway after the commit
    payment = order.payment
    assert payment.refunded_amount == Decimal("10.00") and payment.status == PaymentStatus.PARTIALLY_REFUNDED
    with pytest.raises(ValidationFailed):
        refund_payment(order, Decimal("39.20"), actor=SYSTEM)  # only 39.19 left
    with pytest.raises(ValidationFailed):
        refund_payment(order, Decimal("0"), actor=SYSTEM)
    refund_payment(order, actor=SYSTEM)
    commit()
    payment = order.payment
    assert payment.refunded_amount == Decimal("49.19") and payment.status == PaymentStatus.REFUNDED
    assert order.status == OrderStatus.PAID  # refunding is not cancelling
    assert outbox_types().count("PAYMENT_REFUNDED") == 2
    with pytest.raises(Conflict):
        refund_payment(order, actor=SYSTEM)


def test_refund_of_an_unpaid_order_is_refused(client, shopper, variant):
    order = order_of(place(client, shopper, [(variant, 1)]))
    with pytest.raises(Conflict):
        refund_payment(order, actor=SYSTEM)


# --- expiry ----------------------------------------------------------------------------------


def later(seconds: int = 901):
    return utcnow() + timedelta(seconds=seconds)


def test_expiry_cancels_overdue_unpaid_orders_and_releases_their_stock(client, shopper, variant):
    placed = place(client, shopper, [(variant, 4)])
    assert expire_reservations(now=utcnow()) == []  # not yet due
    cancelled = expire_reservations(now=later())
    assert cancelled == [placed["order"]["order_number"]]
    order = order_of(placed)
    assert order.status == OrderStatus.CANCELLED and order.events[-1].actor == "system:expiry"
    assert inventory_of(variant).reserved == 0
    assert db.session.scalar(select(StockReservation.status)) == ReservationStatus.EXPIRED
    assert outbox_types() == ["ORDER_PLACED", "ORDER_CANCELLED"]
    assert expire_reservations(now=later()) == []  # idempotent


def test_expiry_leaves_paid_orders_alone(client, shopper, variant):
    placed = place(client, shopper, [(variant, 1)])
    pay(client, shopper, placed)
    assert expire_reservations(now=later()) == []
    assert order_of(placed).status == OrderStatus.PAID


def succeeded(placed: dict, amount_minor: int) -> Intent:
    return Intent(id=placed["payment_intent_id"], client_secret=None, status=SUCCEEDED,
                  amount_minor=amount_minor)


def test_late_success_with_stock_left_takes_the_stock_again_and_pays(client, shopper):
    # given an order whose reservation expired and was cancelled by the job
    variant = stocked_variant(quantity=5, price="20.00")
    placed = place(client, shopper, [(variant, 2)])
    expire_reservations(now=later())
    # when the payment succeeds after all (a late webhook)
    result = finalize_payment(placed["payment_intent_id"], actor=SYSTEM, intent=succeeded(placed, 4919))
    # then the order is paid with fresh stock, never oversold
    assert result.outcome == "paid"
    order = order_of(placed)
    assert order.status == OrderStatus.PAID and order.cancelled_at is None
    assert [e.to_status for e in order.events] == ["created", "cancelled", "paid"]
    inventory = inventory_of(variant)
    assert (inventory.quantity, inventory.reserved) == (3, 0)
    assert order.payment.status == PaymentStatus.COMPLETED
    assert order.fulfillment is not None
    assert outbox_types() == ["ORDER_PLACED", "ORDER_CANCELLED", "ORDER_PAID"]


def test_late_success_without_stock_keeps_the_order_cancelled_and_refunds(client, shopper):
    # given an expired order and the last units bought by someone else meanwhile
    variant = stocked_variant(quantity=2, price="20.00")
    placed = place(client, shopper, [(variant, 2)])
    expire_reservations(now=later())
    rival = UserFactory()
    pay(client, rival, place(client, rival, [(variant, 2)]))
    # when the first payment succeeds late
    result = finalize_payment(placed["payment_intent_id"], actor=SYSTEM, intent=succeeded(placed, 4919))
    commit()  # the refund is made after the commit
    # then nothing is oversold: the order stays cancelled and the money goes back
    assert result.outcome == "refunded"
    order = order_of(placed)
    assert order.status == OrderStatus.CANCELLED
    assert order.payment.status == PaymentStatus.REFUNDED
    assert order.payment.refunded_amount == Decimal("49.19")
    inventory = inventory_of(variant)
    assert (inventory.quantity, inventory.reserved) == (0, 0)
    assert outbox_types()[-1] == "PAYMENT_REFUNDED"
    # and a replay of the same success changes nothing more
    again = finalize_payment(placed["payment_intent_id"], actor=SYSTEM, intent=succeeded(placed, 4919))
    assert again.outcome == "already_paid"
    assert outbox_types().count("PAYMENT_REFUNDED") == 1


def test_success_after_expiry_but_before_the_job_ran_still_commits(client, shopper):
    variant = stocked_variant(quantity=5, price="20.00")
    placed = place(client, shopper, [(variant, 1)])
    # the reservation is past due but the expiry job has not run yet
    db.session.execute(StockReservation.__table__.update().values(expires_at=utcnow() - timedelta(seconds=1)))
    result = finalize_payment(placed["payment_intent_id"], actor=SYSTEM, intent=succeeded(placed, 2759))
    assert result.outcome == "paid"
    assert inventory_of(variant).quantity == 4
    assert expire_reservations(now=later()) == []


def test_success_after_the_shopper_cancelled_is_refunded(client, shopper, variant):
    placed = place(client, shopper, [(variant, 1)])
    client.post(f"/api/v1/orders/{placed['order']['order_number']}/cancel", headers=auth(shopper))
    result = finalize_payment(placed["payment_intent_id"], actor=SYSTEM, intent=succeeded(placed, 2759))
    commit()  # the refund is made after the commit
    assert result.outcome == "refunded"
    assert order_of(placed).status == OrderStatus.CANCELLED
    assert inventory_of(variant).quantity == 10 and inventory_of(variant).reserved == 0
    assert db.session.scalar(select(Payment)).status == PaymentStatus.REFUNDED


def test_order_list_query_count_does_not_grow_with_the_page(client, shopper, variant):
    def statements_for(per_page: int) -> int:
        headers = auth(shopper)
        response, seen = statements_during(lambda: client.get(f"/api/v1/orders?per_page={per_page}",
                                                              headers=headers))
        assert response.status_code == 200 and len(response.get_json()["items"]) == per_page
        return len(seen)

    for _ in range(6):
        place(client, shopper, [(variant, 1)])
    assert statements_for(6) == statements_for(1)
