"""Issue 18, point 16: an order response is rendered from state loaded inside the request's
transaction; rendering itself never sends SQL (a lazy load on a dead connection during
rendering once turned a 503 into a 500)."""

from __future__ import annotations

import pytest

from storefront_api import checkout as checkout_api
from storefront_api import orders as orders_api
from tests.commerce_support import ADDRESS, auth, fill_cart, statements_during

INTENT = "/api/v1/checkout/payment-intent"
CONFIRM = "/api/v1/checkout/confirm"


@pytest.fixture
def render_statements(monkeypatch):
    """The SQL statements each ``render_order`` call sent, one list per call."""
    calls: list[list[str]] = []
    real = orders_api.render_order

    def counting(order):
        rendered, statements = statements_during(lambda: real(order))
        calls.append(statements)
        return rendered

    monkeypatch.setattr(orders_api, "render_order", counting)
    monkeypatch.setattr(checkout_api, "render_order", counting)
    return calls


def _place(client, shopper, variant):
    fill_cart(shopper, [(variant, 2)])
    response = client.post(INTENT, json={"shipping_address": ADDRESS}, headers=auth(shopper))
    assert response.status_code == 201, response.json
    return response.json


def test_checkout_and_confirm_render_without_sql(client, shopper, variant, render_statements):
    # given a placed order
    placed = _place(client, shopper, variant)
    # when the payment is confirmed
    confirmed = client.post(CONFIRM, json={"payment_intent_id": placed["payment_intent_id"]},
                            headers=auth(shopper))
    # then both answers were rendered without a single statement
    assert confirmed.status_code == 200, confirmed.json
    assert confirmed.json["order"]["payment"]["status"] == "completed"
    assert confirmed.json["order"]["fulfillment"] is not None
    assert render_statements == [[], []]


def test_order_detail_list_and_cancel_render_without_sql(client, shopper, variant, render_statements):
    # given a placed order
    number = _place(client, shopper, variant)["order"]["order_number"]
    render_statements.clear()
    headers = auth(shopper)
    # when the shopper reads it, lists their orders and cancels it
    detail = client.get(f"/api/v1/orders/{number}", headers=headers)
    listing = client.get("/api/v1/orders", headers=headers)
    cancelled = client.post(f"/api/v1/orders/{number}/cancel", headers=headers)
    # then every rendering ran no SQL
    assert detail.status_code == listing.status_code == cancelled.status_code == 200
    assert cancelled.json["status"] == "cancelled"
    assert cancelled.json["payment"]["status"] == "cancelled"
    assert len(render_statements) == 3
    assert all(statements == [] for statements in render_statements), render_statements
