"""Issue 18, point 4: cart lines are charged at the variant's current price, in the cart's
totals and in the order checkout places; the cart says when a price changed since a line
was added."""

from __future__ import annotations

from decimal import Decimal

from tests.commerce_support import ADDRESS, auth, fill_cart
from tests.factories import stocked_variant

INTENT = "/api/v1/checkout/payment-intent"


def test_a_price_rise_after_adding_is_charged_in_the_cart_and_the_order(client, shopper):
    # given a line added at 1.00, then the price raised to 500.00
    variant = stocked_variant(quantity=20, price="1.00")
    fill_cart(shopper, [(variant, 1)])
    variant.price = Decimal("500.00")
    headers = auth(shopper)
    [line_id] = [line["id"] for line in client.get("/api/v1/cart", headers=headers).json["items"]]
    # when the shopper raises the quantity to 15 and checks out
    cart = client.patch(f"/api/v1/cart/items/{line_id}", headers=headers, json={"quantity": 15}).json
    placed = client.post(INTENT, json={"shipping_address": ADDRESS}, headers=headers)
    # then the cart and the order both price the line at 500.00
    [line] = cart["items"]
    assert line["unit_price"] == "500.00" and line["added_price"] == "1.00"
    assert line["price_changed"] is True
    assert line["line_total"] == "7500.00" and cart["subtotal"] == "7500.00"
    assert placed.status_code == 201, placed.json
    order = placed.json["order"]
    assert order["items"][0]["price"] == "500.00" and order["items"][0]["line_total"] == "7500.00"
    assert order["subtotal"] == "7500.00"
    assert order["payment"]["amount"] == order["total"]


def test_a_price_cut_is_passed_on(client, shopper):
    # given a line added at 20.00, then the price cut to 5.00
    variant = stocked_variant(quantity=5, price="20.00")
    fill_cart(shopper, [(variant, 2)])
    variant.price = Decimal("5.00")
    headers = auth(shopper)
    # when
    cart = client.get("/api/v1/cart", headers=headers).json
    order = client.post(INTENT, json={"shipping_address": ADDRESS}, headers=headers).json["order"]
    # then the shopper pays the lower price
    assert cart["items"][0]["unit_price"] == "5.00" and cart["subtotal"] == "10.00"
    assert order["items"][0]["price"] == "5.00" and order["subtotal"] == "10.00"


def test_an_unchanged_price_is_not_flagged(client, shopper):
    variant = stocked_variant(quantity=5, price="20.00")
    fill_cart(shopper, [(variant, 1)])

    [line] = client.get("/api/v1/cart", headers=auth(shopper)).json["items"]

    assert line["unit_price"] == line["added_price"] == "20.00"
    assert line["price_changed"] is False
