"""POST/GET /api/v1/orders/<n>/returns: the owner, a guest with the order token, and the refusals."""

from __future__ import annotations

from sqlalchemy import func, select

from ecom.actor import Actor
from ecom.audit.models import AuditLog
from ecom.commerce.guest_orders import issue_order_token
from ecom.commerce.models import Return, ReturnLine
from ecom.commerce.returns import approve_return
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


def cancel_url(order, rma: str) -> str:
    return f"{url(order)}/{rma}/cancel"


def status_of(rma: str) -> str:
    db.session.expire_all()
    return db.session.scalar(select(Return.status).where(Return.rma_number == rma))


def test_the_owner_withdraws_a_requested_return_and_may_ask_again(client, db):
    shopper = UserFactory()
    order = delivered_order(LINES, user=shopper)
    headers = auth(shopper)
    lines = {"lines": [{"sku": order.items[0].sku, "quantity": 3}]}
    rma = client.post(url(order), json=lines, headers=headers).get_json()["rma_number"]
    # when the shopper withdraws it
    answer = client.post(cancel_url(order, rma), headers=headers)
    # then it is closed, says why, and its units may be asked for again
    assert answer.status_code == 200, answer.get_json()
    assert answer.get_json()["status"] == "closed" and answer.get_json()["rma_number"] == rma
    assert status_of(rma) == "closed"
    note = db.session.scalar(select(Return.note).where(Return.rma_number == rma))
    assert note == "withdrawn by the customer"
    assert client.post(url(order), json=lines, headers=headers).status_code == 201
    # withdrawing it again: 409, nothing changes
    again = client.post(cancel_url(order, rma), headers=headers)
    assert again.status_code == 409 and "only a requested return" in again.get_json()["detail"]
    assert status_of(rma) == "closed"
    audit = db.session.scalars(select(AuditLog.action).where(AuditLog.entity_id == str(order.id))).all()
    assert "return.closed" in audit


def test_a_guest_withdraws_with_the_order_token_and_nobody_else_can(client, db):
    order = delivered_order(LINES, user=False, email="guest@example.com")
    token = issue_order_token(order)
    db.session.commit()
    rma = client.post(url(order), json={"lines": [{"sku": order.items[1].sku, "quantity": 1}]},
                      headers={"X-Order-Token": token}).get_json()["rma_number"]
    stranger = UserFactory()
    refusals = [({"X-Order-Token": "wrong"}, 404), ({}, 401), (auth(stranger), 404)]
    for headers, status in refusals:
        answer = client.post(cancel_url(order, rma), headers=headers)
        assert answer.status_code == status and answer.get_json()["detail"], (headers, answer.get_json())
    assert status_of(rma) == "requested"
    answer = client.post(cancel_url(order, rma), headers={"X-Order-Token": token})
    assert answer.status_code == 200 and answer.get_json()["status"] == "closed"


def test_withdrawing_is_refused_once_staff_decided_or_for_another_orders_return(client, db):
    shopper = UserFactory()
    order = delivered_order(LINES, user=shopper)
    other = delivered_order(LINES, user=shopper)
    headers = auth(shopper)
    approved = client.post(url(order), json={"lines": [{"sku": order.items[0].sku, "quantity": 1}]},
                           headers=headers).get_json()["rma_number"]
    approve_return(db.session.scalar(select(Return).where(Return.rma_number == approved)),
                   actor=Actor("admin@x.test"))
    db.session.commit()
    theirs = client.post(url(other), json={"lines": [{"sku": other.items[0].sku, "quantity": 1}]},
                         headers=headers).get_json()["rma_number"]
    cases = [
        (cancel_url(order, approved), 409, "Please contact us"),  # staff approved it
        (cancel_url(order, theirs), 404, "Return not found"),  # an RMA of another order
        (cancel_url(order, "RMA-NOPE-1"), 404, "Return not found"),
        (cancel_url(order, "x" * 300), 404, "Return not found"),
        (f"/api/v1/orders/ORD-NOPE/returns/{approved}/cancel", 404, "Order not found"),
    ]
    for path, status, message in cases:
        answer = client.post(path, headers=headers)
        body = answer.get_json()
        assert answer.status_code == status and message in body["detail"], (path, body)
    assert (status_of(approved), status_of(theirs)) == ("approved", "requested")
    # a NUL byte in the path names nothing: 404, never a database error
    assert client.post(f"{url(order)}/RMA%00/cancel", headers=headers).status_code == 404
