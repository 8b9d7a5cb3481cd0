"""POST/GET /api/v1/orders/<n>/returns: the owner, a guest with the order token, and the refusals."""

from __future__ import annotations

from sqlalchemy import func, select

from ecom.commerce.guest_orders import issue_order_token
from ecom.commerce.models import Return, ReturnLine
from ecom.extensions import db
from tests.commerce_support import auth
from tests.factories import UserFactory
from tests.returns_support import delivered_order

LINES = [(None, "19.99", 3, "2.00", "1.44"), (None, "7.33", 2, "0.00", "0.59")]


def url(order) -> str:
    return f"/api/v1/orders/{order.order_number}/returns"


def nothing_written() -> bool:
    return db.session.scalar(select(func.count()).select_from(Return)) == 0 == db.session.scalar(
        select(func.count()).select_from(ReturnLine))


def test_the_owner_asks_and_lists(client, db):
    shopper = UserFactory()
    order = delivered_order(LINES, user=shopper)
    sku = order.items[0].sku
    headers = auth(shopper)
    created = client.post(url(order), json={"lines": [{"sku": sku, "quantity": 2, "reason": "too small"}]},
                          headers=headers)
    assert created.status_code == 201, created.get_json()
    body = created.get_json()
    assert body["status"] == "requested" and body["rma_number"].startswith("RMA-")
    assert body["lines"] == [{"sku": sku, "product_name": order.items[0].product_name, "quantity": 2,
                              "reason": "too small", "condition": None, "refund_amount": None}]
    listed = client.get(url(order), headers=headers)
    assert listed.status_code == 200
    assert [r["rma_number"] for r in listed.get_json()["items"]] == [body["rma_number"]]
    # the same units again: 422 naming what is left
    again = client.post(url(order), json={"lines": [{"sku": sku, "quantity": 2}]}, headers=headers)
    assert again.status_code == 422 and "1 of 3 left" in again.get_json()["detail"]


def test_a_guest_asks_with_the_order_token(client, db):
    order = delivered_order(LINES, user=False, email="guest@example.com")
    token = issue_order_token(order)
    db.session.commit()
    lines = {"lines": [{"sku": order.items[1].sku, "quantity": 1}]}
    assert client.post(url(order), json=lines, headers={"X-Order-Token": "wrong"}).status_code == 404
    assert client.post(url(order), json=lines).status_code == 401
    assert client.get(url(order), headers={"X-Order-Token": "wrong"}).status_code == 404
    assert nothing_written()
    created = client.post(url(order), json=lines, headers={"X-Order-Token": token})
    assert created.status_code == 201, created.get_json()
    listed = client.get(url(order), headers={"X-Order-Token": token}).get_json()
    assert listed["items"][0]["status"] == "requested"


def test_refusals_are_clear_and_write_nothing(client, db):
    shopper, other_shopper = UserFactory(), UserFactory()
    order = delivered_order(LINES, user=shopper)
    other = delivered_order(LINES, user=other_shopper)
    late = delivered_order(LINES, user=shopper, delivered_days_ago=45)
    headers = auth(shopper)
    sku = order.items[0].sku
    cases = [
        (order, {"lines": [{"sku": sku, "quantity": 4}]}, 422),  # more than bought
        (order, {"lines": [{"sku": other.items[0].sku, "quantity": 1}]}, 422),  # another order's line
        (order, {"lines": [{"sku": sku, "quantity": 0}]}, 422),
        (order, {"lines": []}, 422),
        (late, {"lines": [{"sku": late.items[0].sku, "quantity": 1}]}, 409),  # outside the window
        (other, {"lines": [{"sku": other.items[0].sku, "quantity": 1}]}, 404),  # another shopper's order
    ]
    for target, body, status in cases:
        answer = client.post(url(target), json=body, headers=headers)
        assert answer.status_code == status, (body, answer.get_json())
        assert answer.get_json()["detail"]
    assert nothing_written()
