"""Order totals: tax rounded half up, the free-shipping boundary, Decimal, Stripe minor units."""

from __future__ import annotations

import re
from decimal import Decimal

import pytest
from sqlalchemy import select

from ecom.commerce.gateways.base import from_minor, to_minor
from ecom.commerce.models import Order, Payment
from ecom.extensions import db
from ecom.pricing.quote import Destination, quote_lines
from tests.commerce_support import ADDRESS, auth, fill_cart
from tests.factories import stocked_variant

INTENT = "/api/v1/checkout/payment-intent"


def checkout_total(client, user, price: str, quantity: int = 1) -> dict:
    fill_cart(user, [(stocked_variant(quantity=50, price=price), quantity)])
    response = client.post(INTENT, json={"shipping_address": ADDRESS}, headers=auth(user))
    assert response.status_code == 201, response.get_json()
    return response.get_json()["order"]


@pytest.mark.parametrize(("price", "shipping", "total"), [
    ("49.99", "5.99", "59.98"),  # 49.99 + 4.00 tax + 5.99
    ("50.00", "0.00", "54.00"),  # at the threshold: free
    ("50.01", "0.00", "54.01"),
])
def test_free_shipping_starts_exactly_at_the_threshold(client, shopper, price, shipping, total):
    order = checkout_total(client, shopper, price)
    assert (order["shipping_cost"], order["total"]) == (shipping, total)


def test_tax_is_rounded_half_up_not_half_even(client, shopper, app, monkeypatch):
    # 0.50 * 5 % = 0.025: half-up gives 0.03 where banker's rounding would give 0.02
    monkeypatch.setitem(app.config, "TAX_RATE", Decimal("0.05"))
    order = checkout_total(client, shopper, "0.50")
    assert order["tax"] == "0.03"
    assert order["total"] == "6.52"


def test_totals_are_decimal_in_the_database_and_add_up(client, shopper):
    checkout_total(client, shopper, "19.99", quantity=3)
    order = db.session.scalar(select(Order))
    for value in (order.subtotal, order.tax, order.shipping_cost, order.total, order.items[0].line_total):
        assert isinstance(value, Decimal)
    assert order.subtotal == sum(item.line_total for item in order.items) == Decimal("59.97")
    assert order.tax == Decimal("4.80")  # 4.7976 rounds up
    assert order.total == order.subtotal + order.tax + order.shipping_cost == Decimal("64.77")
    assert db.session.scalar(select(Payment.amount)) == order.total


@pytest.mark.parametrize(("amount", "minor"), [
    ("1.13", 113),  # float(1.13) * 100 == 112.99999999999999
    ("0.29", 29),
    ("4.35", 435),
    ("64.77", 6477),
    ("0.01", 1),
    ("9999999999.99", 999999999999),
])
def test_minor_units_are_exact(amount, minor):
    assert to_minor(Decimal(amount)) == minor
    assert from_minor(minor) == Decimal(amount)


def test_to_minor_refuses_floats():
    with pytest.raises(TypeError):
        to_minor(1.13)


def test_stripe_receives_the_total_in_minor_units(client, shopper, stripe_mode, app, monkeypatch):
    monkeypatch.setitem(app.config, "TAX_RATE", Decimal("0"))
    monkeypatch.setitem(app.config, "FREE_SHIPPING_THRESHOLD", Decimal("1.00"))
    checkout_total(client, shopper, "1.13")
    (intent,) = stripe_mode.intents.values()
    assert intent["amount"] == 113 and intent["currency"] == "usd"


@pytest.mark.parametrize(("price", "quantity"), [("49.99", 1), ("0.05", 3), ("16.67", 3)])
def test_demo_orders_are_priced_and_numbered_like_checkout(db, price, quantity):
    # given a demo order (the seed's and the back office tests' orders)
    from ecom.commerce.cart import variant_line
    from ecom.commerce.demo import DEMO_ADDRESS, create_demo_order
    from ecom.commerce.status import OrderStatus
    from tests.factories import UserFactory

    variant = stocked_variant(quantity=50, price=price)
    order = create_demo_order(UserFactory(), [(variant, quantity)], status=OrderStatus.CREATED)
    # then its totals are what checkout would charge for the same lines (the one pricing
    # function), under an order number of the same shape
    quote = quote_lines([variant_line(variant, quantity)], Destination.of_address(DEMO_ADDRESS))
    assert (order.subtotal, order.tax, order.shipping_cost, order.total) == (
        quote.subtotal, quote.tax_total, quote.shipping_cost, quote.total)
    assert order.total == order.subtotal + order.tax + order.shipping_cost
    assert re.fullmatch(r"ORD-\d{8}-[2-9A-HJKMNP-Z]{6}", order.order_number)
    assert [i.line_total for i in order.items] == [Decimal(price) * quantity]
