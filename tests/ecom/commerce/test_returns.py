"""Returns and refunds by line (commerce-v2 §5): the window, the units a line has left, the
receiving into stock, the refunds' shares and bound, and the order's ``returned``."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select

from ecom.actor import Actor
from ecom.commerce.models import PaymentRefund, RefundLine, Return, ReturnLine
from ecom.commerce.order_actions import refund_payment
from ecom.commerce.returns import (
    LineRequest,
    Receipt,
    approve_return,
    goodwill_refund,
    line_refundables,
    receive_return,
    refund_return,
    reject_return,
    request_return,
    shipping_refundable,
)
from ecom.commerce.status import OrderStatus, RefundStatus, ReturnStatus
from ecom.errors import Conflict, InvalidTransition, ValidationFailed
from ecom.extensions import db
from ecom.inventory.models import Inventory, MovementReason, StockMovement
from ecom.inventory.services import ledger_total
from ecom.notifications.models import OutboxEvent
from tests.factories import stocked_variant
from tests.locations_support import warehouse
from tests.returns_support import delivered_order

SHOPPER = Actor("shopper@example.com")
STAFF = Actor("admin@example.com")
# price, quantity, discount, tax: odd amounts so the shares need rounding.
LINES = [("19.99", 3, "2.00", "1.44"), ("7.33", 7, "5.13", "0.37"), ("100.00", 1, "0.00", "8.25")]


def order_with(lines=LINES, **kwargs):
    return delivered_order([(None, *line) for line in lines], **kwargs)


def ask(order, *pairs, actor=SHOPPER):
    return request_return(order, [LineRequest(sku, quantity, "too small") for sku, quantity in pairs],
                          actor=actor)


def requested_refunds(order) -> Decimal:
    return db.session.scalar(select(func.coalesce(func.sum(PaymentRefund.amount), 0))
                             .where(PaymentRefund.payment_id == order.payment.id,
                                    PaymentRefund.status != RefundStatus.FAILED))


def rows(model) -> int:
    return db.session.scalar(select(func.count()).select_from(model))


# --- money -------------------------------------------------------------------------------------


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(steps=st.lists(st.tuples(st.integers(0, 2), st.integers(1, 7)), min_size=1, max_size=12),
       shipping_first=st.booleans())
def test_line_refunds_never_exceed_what_was_paid_and_add_up_to_it(db, steps, shipping_first):
    # given a paid order with discounts, tax and taxed shipping
    order = order_with()
    items = order.items
    if shipping_first:
        goodwill_refund(order, {}, shipping=True, actor=STAFF)
    # when any sequence of line refunds is made (units beyond what is left are refused)
    for index, quantity in steps:
        item = items[index]
        left = next(r["left_units"] for r in line_refundables(order) if r["item"].id == item.id)
        if left == 0:
            with pytest.raises(ValidationFailed):
                goodwill_refund(order, {item.id: quantity}, actor=STAFF)
            continue
        goodwill_refund(order, {item.id: min(quantity, left)}, actor=STAFF)
        # then the refunds never exceed what was paid
        assert requested_refunds(order) <= order.payment.amount
    # and refunding everything left adds up to what was paid, to the cent
    rest = {r["item"].id: r["left_units"] for r in line_refundables(order) if r["left_units"]}
    if rest or shipping_refundable(order):
        goodwill_refund(order, rest, shipping=bool(shipping_refundable(order)), actor=STAFF)
    assert requested_refunds(order) == order.payment.amount == order.total
    assert all(r["left_amount"] == 0 for r in line_refundables(order))


def test_a_line_refund_is_capped_at_what_the_payment_has_left(db):
    # given an order nearly all refunded by amount
    order = order_with()
    refund_payment(order, order.total - Decimal("1.00"), actor=STAFF)
    # when a whole line is refunded
    goodwill_refund(order, {order.items[2].id: 1}, actor=STAFF)
    # then only the 1.00 left goes back
    assert requested_refunds(order) == order.total
    with pytest.raises(Conflict):
        goodwill_refund(order, {order.items[0].id: 1}, actor=STAFF)


# --- asking ------------------------------------------------------------------------------------


@pytest.mark.parametrize("case", ["outside the window", "more than bought", "another order's line",
                                  "not delivered", "no lines", "zero units"])
def test_a_refused_request_says_why_and_writes_nothing(db, case):
    order = order_with(delivered_days_ago=31 if case == "outside the window" else 2)
    other = order_with()
    if case == "not delivered":
        order.status = OrderStatus.SHIPPED
        db.session.flush()
    sku = order.items[0].sku
    requests = {
        "outside the window": [(sku, 1)], "more than bought": [(sku, 4)], "not delivered": [(sku, 1)],
        "another order's line": [(other.items[0].sku, 1)], "no lines": [], "zero units": [(sku, 0)],
    }[case]
    before = rows(OutboxEvent)
    error = Conflict if case in ("outside the window", "not delivered") else ValidationFailed
    with pytest.raises(error) as raised:
        ask(order, *requests)
    assert raised.value.message
    assert rows(Return) == rows(ReturnLine) == 0
    assert rows(OutboxEvent) == before


def test_a_unit_cannot_be_asked_back_twice_until_its_return_is_rejected(db):
    order = order_with()
    sku = order.items[0].sku
    first = ask(order, (sku, 2))
    ask(order, (sku, 1))
    with pytest.raises(ValidationFailed, match="0 of 3 left"):
        ask(order, (sku, 1))
    reject_return(first, actor=STAFF, note="worn")
    again = ask(order, (sku, 2))
    assert again.rma_number != first.rma_number
    assert [(line.order_item.sku, line.quantity) for line in again.lines] == [(sku, 2)]


def test_the_window_follows_the_setting(db, app, monkeypatch):
    monkeypatch.setitem(app.config, "RETURN_WINDOW_DAYS", 5)
    late, in_time = order_with(delivered_days_ago=6), order_with(delivered_days_ago=4.9)
    with pytest.raises(Conflict, match="5 days"):
        ask(late, (late.items[0].sku, 1))
    assert ask(in_time, (in_time.items[0].sku, 1)).status == ReturnStatus.REQUESTED


# --- the journey -------------------------------------------------------------------------------


def test_restocked_units_are_available_there_written_off_never_and_the_ledger_agrees(db):
    # given an order for 3 units of one SKU and 2 of another, delivered
    shelf, back_room = warehouse(10), warehouse(20)
    kept, broken = stocked_variant(quantity=0), stocked_variant(quantity=0)
    order = delivered_order([(kept, "10.00", 3, "0.00", "0.80"), (broken, "4.00", 2, "0.00", "0.32")])
    ret = ask(order, (kept.sku, 2), (broken.sku, 2))
    approve_return(ret, actor=STAFF)
    lines = {line.order_item.sku: line for line in ret.lines}
    # when the warehouse restocks one line into the back room and writes the other off
    receive_return(ret, {lines[kept.sku].id: Receipt("restock", back_room.id),
                         lines[broken.sku].id: Receipt("damaged", back_room.id)}, actor=STAFF)
    db.session.expire_all()
    # then the restocked units are available at the back room, the written-off ones nowhere
    at = {(row.variant_id, row.location_id): row for row in db.session.scalars(select(Inventory))}
    assert at[(kept.id, back_room.id)].available == 2
    assert (broken.id, back_room.id) not in at or at[(broken.id, back_room.id)].available == 0
    assert (kept.id, shelf.id) not in at or at[(kept.id, shelf.id)].available == 0
    # and the ledger agrees with the stock, with a return and a damage movement for the write-off
    for variant in (kept, broken):
        on_hand = at.get((variant.id, back_room.id))
        assert ledger_total(variant.id, back_room.id) == (on_hand.quantity if on_hand else 0)
    reasons = sorted((m.reason, m.delta) for m in db.session.scalars(
        select(StockMovement).where(StockMovement.variant_id == broken.id)))
    assert reasons == [(MovementReason.DAMAGE, -2), (MovementReason.RETURN, 2)]
    assert ret.status == ReturnStatus.RECEIVED
    assert {line.condition for line in ret.lines} == {"restock", "damaged"}


def test_receiving_refuses_a_restock_without_a_location_and_writes_nothing(db):
    order = order_with()
    ret = ask(order, (order.items[0].sku, 1))
    approve_return(ret, actor=STAFF)
    with pytest.raises(ValidationFailed):
        receive_return(ret, {ret.lines[0].id: Receipt("restock", None)}, actor=STAFF)
    with pytest.raises(ValidationFailed):
        receive_return(ret, {}, actor=STAFF)
    assert ret.status == ReturnStatus.APPROVED
    assert rows(StockMovement) == 0


def test_every_unit_returned_and_refunded_makes_the_order_returned(db):
    # given an order whose units come back in two returns
    order = order_with()
    first = ask(order, (order.items[0].sku, 3), (order.items[1].sku, 2))
    second = ask(order, (order.items[1].sku, 5), (order.items[2].sku, 1))
    for ret in (first, second):
        approve_return(ret, actor=STAFF)
        receive_return(ret, {line.id: Receipt("damaged") for line in ret.lines}, actor=STAFF)
    # when the first is refunded the order is still delivered
    refund_return(first, actor=STAFF)
    assert order.status == OrderStatus.DELIVERED
    assert first.refund_amount == sum((line.refund_amount for line in first.lines), Decimal("0"))
    assert first.refund.amount == first.refund_amount
    # and when the second is refunded, with the shipping, the order is returned and all was paid back
    refund_return(second, actor=STAFF, shipping=True)
    assert order.status == OrderStatus.RETURNED
    assert requested_refunds(order) == order.total
    assert first.refund.idempotency_key != second.refund.idempotency_key
    types = [e.type for e in db.session.scalars(select(OutboxEvent).order_by(OutboxEvent.id))]
    for event in ("RETURN_REQUESTED", "RETURN_APPROVED", "RETURN_REFUNDED"):
        assert types.count(event) == 2
    with pytest.raises(InvalidTransition):
        refund_return(first, actor=STAFF)
    assert rows(RefundLine) == 5  # two lines each, and the shipping


def test_the_emails_go_to_the_orders_address(db, app):
    from ecom.notifications.rendering import render_email
    order = order_with(email="ann@example.com")
    ret = ask(order, (order.items[0].sku, 1))
    reject_return(ret, actor=STAFF, note="after 30 days of wear")
    events = list(db.session.scalars(select(OutboxEvent).order_by(OutboxEvent.id)))
    assert sorted(e.type for e in events) == ["RETURN_REJECTED", "RETURN_REQUESTED"]
    for event in events:
        data = event.payload["data"]
        assert data["user_email"] == "ann@example.com"
        email = render_email(event.type, data, shop_name="Shop")
        assert ret.rma_number in email.subject
        assert order.order_number in email.text and order.items[0].sku in email.html
