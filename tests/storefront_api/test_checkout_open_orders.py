"""Issue 18, point 5: a cart has at most one open unpaid order (a new payment intent
replaces the previous order, releasing its stock through the one cancel path), and a
shopper has at most MAX_OPEN_UNPAID_ORDERS orders waiting for payment."""

from __future__ import annotations

from sqlalchemy import select

from ecom.commerce.models import Order, Payment
from ecom.commerce.status import OrderStatus, PaymentStatus
from ecom.extensions import db
from tests.commerce_support import ADDRESS, auth, count, fill_cart, inventory_of, outbox_types
from tests.factories import make_order, stocked_variant

INTENT = "/api/v1/checkout/payment-intent"


def checkout(client, user):
    return client.post(INTENT, json={"shipping_address": ADDRESS}, headers=auth(user))


def orders_of(user) -> dict[str, str]:
    db.session.expire_all()
    orders = db.session.scalars(select(Order).where(Order.user_id == user.id))
    return {order.order_number: order.status for order in orders}


def test_a_new_payment_intent_replaces_the_previous_unpaid_order(client, shopper, variant):
    # given an order placed from the cart, holding 3 units
    fill_cart(shopper, [(variant, 3)])
    first = checkout(client, shopper).json
    # when the shopper opens a payment intent again, many times
    for _ in range(4):
        latest = checkout(client, shopper)
        assert latest.status_code == 201, latest.json
    # then only the latest order is open and only its 3 units are held
    statuses = orders_of(shopper)
    open_orders = [number for number, status in statuses.items() if status == OrderStatus.CREATED]
    assert open_orders == [latest.json["order"]["order_number"]]
    assert len(statuses) == 5
    assert inventory_of(variant).reserved == 3
    # and the first was cancelled through the one cancel path: its payment cancelled, its
    # intent cancelled at the gateway after the commit, ORDER_CANCELLED emitted
    replaced = db.session.scalar(select(Order).where(Order.order_number == first["order"]["order_number"]))
    assert replaced.cancel_reason.startswith("replaced by a new checkout")
    payment = db.session.scalar(select(Payment).where(Payment.order_id == replaced.id))
    assert payment.status == PaymentStatus.CANCELLED and payment.intent_cancelled_at is not None
    assert outbox_types().count("ORDER_CANCELLED") == 4


def test_the_replaced_orders_units_count_as_available(client, shopper):
    # given the last 2 units held by the shopper's own open order
    variant = stocked_variant(quantity=2)
    fill_cart(shopper, [(variant, 2)])
    assert checkout(client, shopper).status_code == 201
    # when the shopper checks out the same cart again
    again = checkout(client, shopper)
    # then the new order takes the units the old one gave up
    assert again.status_code == 201, again.json
    assert inventory_of(variant).reserved == 2


def test_a_failed_replacement_leaves_the_previous_order_open(client, shopper):
    # given an open order for 1 unit, then a cart wanting more than there is
    variant = stocked_variant(quantity=3)
    fill_cart(shopper, [(variant, 1)])
    number = checkout(client, shopper).json["order"]["order_number"]
    fill_cart(shopper, [(variant, 5)])
    # when
    refused = checkout(client, shopper)
    # then nothing changed: the previous order still holds its unit
    assert refused.status_code == 409
    assert orders_of(shopper) == {number: OrderStatus.CREATED}
    assert inventory_of(variant).reserved == 1


def test_too_many_open_unpaid_orders_is_409_and_creates_nothing(client, app, shopper, variant, monkeypatch):
    # given a shopper with 2 orders waiting for payment that no checkout of theirs placed
    monkeypatch.setitem(app.config, "MAX_OPEN_UNPAID_ORDERS", 2)
    make_order(shopper, [(variant, 1)])
    make_order(shopper, [(variant, 1)])
    fill_cart(shopper, [(variant, 1)])
    # when
    response = checkout(client, shopper)
    # then
    assert response.status_code == 409
    assert "waiting for payment" in response.json["detail"]
    assert count(Order) == 2 and count(Payment) == 0
    assert inventory_of(variant).reserved == 0


def test_the_cap_counts_only_what_stays_open(client, app, shopper, variant, monkeypatch):
    # given a cap of 1 and the shopper's one open order, placed by checkout
    monkeypatch.setitem(app.config, "MAX_OPEN_UNPAID_ORDERS", 1)
    fill_cart(shopper, [(variant, 1)])
    assert checkout(client, shopper).status_code == 201
    # when the shopper checks out again: the new order replaces the open one
    again = checkout(client, shopper)
    # then it is allowed
    assert again.status_code == 201, again.json
