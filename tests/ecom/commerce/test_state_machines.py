"""Every allowed and every refused transition of the order and fulfillment state machines."""

from __future__ import annotations

from functools import partial
from itertools import product

import pytest
from sqlalchemy import select

from ecom.actor import Actor
from ecom.commerce.models import Order, OrderEvent, Payment, PaymentRefund
from ecom.commerce.orders import change_status, transition
from ecom.commerce.status import ALLOWED as ORDER_ALLOWED
from ecom.commerce.status import REFUND_ALLOWED, EventKind, OrderStatus, RefundStatus
from ecom.errors import InvalidTransition, ValidationFailed
from ecom.extensions import db
from ecom.fulfillment.models import Fulfillment
from ecom.fulfillment.services import (
    apply_to_many,
    cancel_fulfillment,
    create_fulfillment,
    mark_delivered,
    mark_packed,
    mark_picked_up,
    mark_processing,
    mark_ready_for_pickup,
    ship_fulfillment,
)
from ecom.fulfillment.status import ALLOWED as FULFILLMENT_ALLOWED
from ecom.fulfillment.status import PICKUP_ONLY, SHIPPING_ONLY, FulfillmentStatus
from tests.commerce_support import outbox_types
from tests.factories import UserFactory

CLERK = Actor("warehouse@shop.test", None)


def make_order(status: OrderStatus = OrderStatus.PAID) -> Order:
    user = UserFactory()
    order = Order(user_id=user.id, order_number=f"ORD-TEST-{user.id:06d}", status=status,
                  subtotal=10, tax=0, shipping_cost=0, total=10, shipping_address={}, billing_address={},
                  email=user.email)
    db.session.add(order)
    db.session.flush()
    return order


ORDER_PAIRS = list(product(OrderStatus, OrderStatus))


@pytest.mark.parametrize(("current", "target"), ORDER_PAIRS, ids=[f"{a}->{b}" for a, b in ORDER_PAIRS])
def test_order_transition_table(db, current, target):
    order = make_order(current)
    if target in ORDER_ALLOWED[current]:
        event = transition(order, target, actor=CLERK, note="test")
        assert order.status == target
        assert (event.from_status, event.to_status, event.actor) == (current, target, CLERK.label)
    else:
        with pytest.raises(InvalidTransition):
            transition(order, target, actor=CLERK)
        assert order.status == current
        assert db.session.scalar(select(OrderEvent).where(OrderEvent.order_id == order.id)) is None


# The order status that goes with each fulfillment status, as the happy path leaves them.
ORDER_FOR_FULFILLMENT = {
    FulfillmentStatus.PENDING: OrderStatus.PAID,
    FulfillmentStatus.PROCESSING: OrderStatus.PAID,
    FulfillmentStatus.PACKED: OrderStatus.PACKED,
    FulfillmentStatus.SHIPPED: OrderStatus.SHIPPED,
    FulfillmentStatus.DELIVERED: OrderStatus.DELIVERED,
    FulfillmentStatus.READY_FOR_PICKUP: OrderStatus.READY_FOR_PICKUP,
    FulfillmentStatus.PICKED_UP: OrderStatus.DELIVERED,
    FulfillmentStatus.CANCELLED: OrderStatus.CANCELLED,
}
# Where a one-fulfillment order goes with each step (a split order: tests/ecom/fulfillment).
ORDER_STATUS_FOR = {
    FulfillmentStatus.PACKED: OrderStatus.PACKED,
    FulfillmentStatus.SHIPPED: OrderStatus.SHIPPED,
    FulfillmentStatus.DELIVERED: OrderStatus.DELIVERED,
    FulfillmentStatus.READY_FOR_PICKUP: OrderStatus.READY_FOR_PICKUP,
    FulfillmentStatus.PICKED_UP: OrderStatus.DELIVERED,
}

STEPS = {
    FulfillmentStatus.PROCESSING: lambda f: mark_processing(f, actor=CLERK),
    FulfillmentStatus.PACKED: lambda f: mark_packed(f, actor=CLERK),
    FulfillmentStatus.SHIPPED: lambda f: ship_fulfillment(f, carrier="UPS", tracking_number="1Z999",
                                                          actor=CLERK),
    FulfillmentStatus.DELIVERED: lambda f: mark_delivered(f, actor=CLERK),
    FulfillmentStatus.READY_FOR_PICKUP: lambda f: mark_ready_for_pickup(f, actor=CLERK),
    FulfillmentStatus.PICKED_UP: lambda f: mark_picked_up(f, actor=CLERK),
    FulfillmentStatus.CANCELLED: lambda f: cancel_fulfillment(f, actor=CLERK),
}

# No service moves a fulfillment back to pending, so every "-> pending" pair is refused by construction.
# A shipment never is in a pickup step and a pickup never in a shipping step (a check constraint).
FULFILLMENT_PAIRS = [(a, b, pickup) for pickup in (False, True)
                     for a, b in product(FulfillmentStatus, FulfillmentStatus)
                     if b in STEPS and a not in (SHIPPING_ONLY if pickup else PICKUP_ONLY)]


def make_fulfillment(status: FulfillmentStatus, pickup: bool = False) -> Fulfillment:
    order = make_order(ORDER_FOR_FULFILLMENT[status])
    fulfillment = create_fulfillment(order)
    fulfillment.status = status
    fulfillment.is_pickup = pickup
    if status in (FulfillmentStatus.SHIPPED, FulfillmentStatus.DELIVERED):
        fulfillment.carrier, fulfillment.tracking_number = "DHL", "JD0001"
    db.session.flush()
    return fulfillment


@pytest.mark.parametrize(("current", "target", "pickup"), FULFILLMENT_PAIRS,
                         ids=[f"{'pickup' if p else 'shipment'}:{a}->{b}" for a, b, p in FULFILLMENT_PAIRS])
def test_fulfillment_transition_table(db, current, target, pickup):
    fulfillment = make_fulfillment(current, pickup)
    order = fulfillment.order
    order_before = order.status
    # Cancelling goes through the same table as every other step (cancelled -> cancelled is refused too);
    # a step of the other kind (a shipment made ready for pickup) is refused.
    allowed = (target in FULFILLMENT_ALLOWED[current]
               and target not in (SHIPPING_ONLY if pickup else PICKUP_ONLY))
    if allowed:
        STEPS[target](fulfillment)
        assert fulfillment.status == target
        assert order.status == ORDER_STATUS_FOR.get(target, order_before)
    else:
        with pytest.raises(InvalidTransition):
            STEPS[target](fulfillment)
        db.session.refresh(fulfillment)
        db.session.refresh(order)
        assert (fulfillment.status, order.status) == (current, order_before)


def test_the_happy_path_moves_the_order_and_emits_shipped_and_delivered(db):
    fulfillment = create_fulfillment(make_order())
    for step in (FulfillmentStatus.PROCESSING, FulfillmentStatus.PACKED, FulfillmentStatus.SHIPPED,
                 FulfillmentStatus.DELIVERED):
        STEPS[step](fulfillment)
    order = fulfillment.order
    assert order.status == OrderStatus.DELIVERED
    assert order.packed_at and order.shipped_at and order.delivered_at
    assert [e.to_status for e in order.events] == ["packed", "shipped", "delivered"]
    assert outbox_types() == ["ORDER_SHIPPED", "ORDER_DELIVERED"]
    assert fulfillment.carrier == "UPS" and fulfillment.tracking_number == "1Z999"


@pytest.mark.parametrize(("carrier", "tracking"), [("", "1Z"), ("UPS", ""), ("  ", "1Z"), (None, None)])
def test_shipping_needs_carrier_and_tracking(db, carrier, tracking):
    fulfillment = make_fulfillment(FulfillmentStatus.PACKED)
    with pytest.raises(ValidationFailed) as caught:
        ship_fulfillment(fulfillment, carrier=carrier, tracking_number=tracking, actor=CLERK)
    assert set(caught.value.errors) <= {"carrier", "tracking_number"} and caught.value.errors
    assert fulfillment.status == FulfillmentStatus.PACKED and fulfillment.order.status == OrderStatus.PACKED


def test_packing_refused_when_the_order_was_cancelled(db):
    fulfillment = make_fulfillment(FulfillmentStatus.PROCESSING)
    fulfillment.order.status = OrderStatus.CANCELLED
    db.session.flush()
    with pytest.raises(InvalidTransition):
        mark_packed(fulfillment, actor=CLERK)
    assert fulfillment.status == FulfillmentStatus.PROCESSING


def test_create_fulfillment_is_idempotent(db):
    order = make_order()
    assert create_fulfillment(order) is create_fulfillment(order)


def test_bulk_steps_report_refusals_and_apply_the_rest(db):
    ready = [make_fulfillment(FulfillmentStatus.PROCESSING) for _ in range(3)]
    not_ready = make_fulfillment(FulfillmentStatus.PENDING)
    result = apply_to_many(mark_packed, [*ready, not_ready], actor=CLERK)
    assert sorted(f.id for f in result.done) == sorted(f.id for f in ready)
    assert list(result.failed) == [not_ready.id] and "pending" in result.failed[not_ready.id]
    assert all(f.status == FulfillmentStatus.PACKED and f.order.status == OrderStatus.PACKED for f in ready)
    assert not_ready.status == FulfillmentStatus.PENDING


REFUND_PAIRS = list(product(RefundStatus, RefundStatus))


def test_the_refund_table_is_the_documented_machine():
    allowed = {(a, b) for a in RefundStatus for b in REFUND_ALLOWED[a]}
    assert allowed == {("requested", "succeeded"), ("requested", "failed")}


@pytest.mark.parametrize(("current", "target"), REFUND_PAIRS, ids=[f"{a}->{b}" for a, b in REFUND_PAIRS])
def test_refund_statuses_go_through_the_one_change_status(db, current, target):
    # given a refund of a paid order, in ``current``
    order = make_order(OrderStatus.PAID)
    payment = Payment(order_id=order.id, stripe_payment_intent_id=f"pi_{order.id}", amount=10,
                      status="completed")
    db.session.add(payment)
    db.session.flush()
    refund = PaymentRefund(payment_id=payment.id, amount=5, status=current, actor=CLERK.label)
    db.session.add(refund)
    db.session.flush()
    # when it is moved to ``target``, then the table decides; a refused move changes nothing
    move = partial(change_status, refund, target, allowed=REFUND_ALLOWED, kind=EventKind.PAYMENT,
                   order_id=order.id, actor=CLERK, stamps={RefundStatus.FAILED: "completed_at"},
                   name="refund")
    if target in REFUND_ALLOWED[current]:
        event = move()
        assert refund.status == target and (event.from_status, event.to_status) == (current, target)
        assert (refund.completed_at is not None) == (target == RefundStatus.FAILED)
    else:
        with pytest.raises(InvalidTransition, match="Cannot move refund"):
            move()
        assert refund.status == current and refund.completed_at is None
        assert db.session.scalar(select(OrderEvent).where(OrderEvent.order_id == order.id)) is None
