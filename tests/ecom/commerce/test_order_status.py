"""The order state machine, every allowed and every refused pair."""

import pytest

from ecom.actor import Actor
from ecom.commerce.models import OrderEvent
from ecom.commerce.orders import lock_order, order_event_data, transition
from ecom.commerce.status import ALLOWED, OrderStatus
from ecom.errors import InvalidTransition, NotFound
from tests.factories import make_order

ACTOR = Actor("tester@example.com", None)
ALL_PAIRS = [(a, b) for a in OrderStatus for b in OrderStatus]
ALLOWED_PAIRS = [(a, b) for a, b in ALL_PAIRS if b in ALLOWED[a]]
REFUSED_PAIRS = [(a, b) for a, b in ALL_PAIRS if b not in ALLOWED[a]]


def test_the_table_is_the_documented_machine():
    assert set(ALLOWED_PAIRS) == {
        ("created", "paid"), ("created", "cancelled"), ("paid", "packed"),
        ("paid", "cancelled"), ("packed", "shipped"), ("shipped", "delivered"),
        # split shipments (stock locations)
        ("packed", "partially_shipped"), ("partially_shipped", "shipped"),
        # click & collect
        ("paid", "ready_for_pickup"), ("ready_for_pickup", "delivered"), ("ready_for_pickup", "cancelled"),
    }


@pytest.mark.parametrize(("current", "target"), ALLOWED_PAIRS)
def test_allowed_transition_moves_and_writes_history(db, current, target):
    order = make_order(status=current)

    event = transition(order, target, actor=ACTOR, note="why")

    assert order.status == target
    assert (event.from_status, event.to_status, event.actor, event.note) == (
        current, target, ACTOR.label, "why")
    assert db.session.query(OrderEvent).filter_by(order_id=order.id).count() == 1
    stamp = {"paid": "paid_at", "packed": "packed_at", "shipped": "shipped_at",
             "delivered": "delivered_at", "cancelled": "cancelled_at"}.get(target)
    # partially_shipped and ready_for_pickup are stamped on their fulfillments
    assert stamp is None or getattr(order, stamp) is not None


@pytest.mark.parametrize(("current", "target"), REFUSED_PAIRS)
def test_refused_transition_changes_nothing(db, current, target):
    order = make_order(status=current)

    with pytest.raises(InvalidTransition) as raised:
        transition(order, target, actor=ACTOR)

    assert order.status == current
    assert f"'{current}'" in str(raised.value) and f"'{target}'" in str(raised.value)
    assert db.session.query(OrderEvent).filter_by(order_id=order.id).count() == 0


def test_lock_order_reloads_and_raises_for_unknown(db):
    order = make_order()
    assert lock_order(order.id) is order
    with pytest.raises(NotFound):
        lock_order(999_999)


def test_event_data_carries_what_notifications_need(db):
    order = make_order()
    data = order_event_data(order)
    assert data["order_number"] == order.order_number
    assert data["user_email"] == order.email
    assert data["total"] == str(order.total)


def test_late_payment_revives_only_a_cancelled_order_to_paid(db):
    order = make_order(status="cancelled")
    order.cancel_reason = "reservation expired"

    event = transition(order, "paid", actor=ACTOR, late_payment=True)

    assert (event.from_status, event.to_status, order.status) == ("cancelled", "paid", "paid")
    assert order.cancelled_at is None and order.cancel_reason is None
    with pytest.raises(InvalidTransition):
        transition(make_order(status="delivered"), "paid", actor=ACTOR, late_payment=True)
