"""What shoppers, staff and Stripe do to an order after it was placed."""

from __future__ import annotations

import logging
from collections.abc import Callable
from decimal import Decimal

from flask import current_app
from sqlalchemy import select

from ecom.actor import WEBHOOK, Actor
from ecom.commerce.checkout import _cancel_intent_quietly, finalize_payment, payment_for_intent
from ecom.commerce.gateway import (
    RefundedCharge,
    from_minor,
    gateway_for_intent,
    intent_from_event_object,
    refunded_charge_from_event_object,
    to_minor,
)
from ecom.commerce.models import Order, Payment, StripeEvent
from ecom.commerce.orders import lock_order, order_event_data, transition
from ecom.commerce.sql import insert_unless_exists
from ecom.commerce.status import OrderStatus, PaymentStatus
from ecom.db import money, utcnow
from ecom.errors import Conflict, InvalidTransition, NotFound, ValidationFailed
from ecom.extensions import db
from ecom.inventory.services import release_stock, return_stock
from ecom.notifications.models import EventType
from ecom.notifications.services import emit

log = logging.getLogger(__name__)


def cancel_order(order: Order, *, actor: Actor, reason: str = "") -> Order:
    """Cancel an order that has not been packed.

    ``created``: its reservation is released and its payment intent cancelled.
    ``paid``: its stock goes back on hand and the payment is refunded in full.
    Raises InvalidTransition for any later status, GatewayUnavailable when the
    refund cannot be made (the caller rolls back; the order stays paid).
    """
    order = lock_order(order.id)
    was = OrderStatus(order.status)
    transition(order, OrderStatus.CANCELLED, actor=actor, note=reason)
    order.cancel_reason = reason or None
    if order.fulfillment is not None:
        from ecom.fulfillment.services import cancel_fulfillment

        cancel_fulfillment(order.fulfillment)
    payment = order.payment
    if was == OrderStatus.PAID:
        return_stock(order, actor=actor)
        emit(EventType.ORDER_CANCELLED, {**order_event_data(order), "reason": reason})
        if payment is not None and payment.status == PaymentStatus.COMPLETED:
            _refund(order, payment, None, actor=actor)
    else:
        release_stock(order)
        emit(EventType.ORDER_CANCELLED, {**order_event_data(order), "reason": reason})
        if payment is not None and payment.status in (PaymentStatus.PENDING, PaymentStatus.FAILED):
            _cancel_intent_quietly(gateway_for_intent(current_app.config, payment.stripe_payment_intent_id),
                                   payment.stripe_payment_intent_id)
    db.session.flush()
    return order


def refund_payment(order: Order, amount: Decimal | str | None = None, *, actor: Actor) -> Payment:
    """Refund ``amount`` (default: everything not yet refunded) of the order's payment.

    The order's status is left alone; cancelling is ``cancel_order``'s job.
    Raises Conflict (nothing paid to refund), ValidationFailed (amount not
    positive or above what is left), GatewayUnavailable.
    """
    order = lock_order(order.id)
    payment = order.payment
    if payment is None or payment.status != PaymentStatus.COMPLETED:
        raise Conflict(f"Order {order.order_number} has no completed payment to refund.")
    db.session.refresh(payment)
    remaining = money(payment.amount - payment.refunded_amount)
    value = remaining if amount is None else money(amount)
    if value <= 0 or value > remaining:
        raise ValidationFailed(f"The refund must be between 0.01 and {remaining}.",
                               {"amount": [f"Must be between 0.01 and {remaining}."]})
    _refund(order, payment, None if value == remaining and amount is None else value, actor=actor)
    return payment


def _refund(order: Order, payment: Payment, amount: Decimal | None, *, actor: Actor) -> None:
    """Ask the gateway first: if it fails, nothing here has changed."""
    intent_id = payment.stripe_payment_intent_id
    refund = gateway_for_intent(current_app.config, intent_id).refund(
        intent_id, None if amount is None else to_minor(amount)
    )
    refunded = money(payment.amount - payment.refunded_amount) if amount is None else amount
    _book_refund(order, payment, refunded, refund_id=refund.id, actor=actor)


def _book_refund(order: Order, payment: Payment, amount: Decimal, *, refund_id: str | None,
                 actor: Actor) -> None:
    payment.refunded_amount = money(payment.refunded_amount + amount)
    if payment.refunded_amount >= payment.amount:
        payment.status = PaymentStatus.REFUNDED
    emit(EventType.PAYMENT_REFUNDED, {
        **order_event_data(order),
        "amount": str(amount),
        "refunded_total": str(payment.refunded_amount),
        "refund_id": refund_id,
        "actor": actor.label,
    })
    db.session.flush()


# --- Stripe webhooks -------------------------------------------------------------------------

INTENT_EVENTS = ("payment_intent.succeeded", "payment_intent.payment_failed")
CHARGE_REFUNDED = "charge.refunded"
HANDLED_EVENTS = frozenset({*INTENT_EVENTS, CHARGE_REFUNDED})


def handle_stripe_event(event: dict) -> bool:
    """Process a verified webhook event at most once per event id.

    ``event`` is as ``verify_stripe_signature`` returns it. Returns False for a
    replay or an event type we do not handle (both are fine to answer 200).
    Events about payment intents we never created are recorded and ignored.
    Raises InvalidWebhook, before anything changes, when an event of a handled
    type does not carry the object its type promises; GatewayUnavailable (the
    caller rolls back, so Stripe's retry is processed afresh).
    """
    apply = _event_action(event)
    if not _claim_event(event["id"], event["type"]):
        return False
    if apply is None:
        return False
    try:
        apply()
    except NotFound:
        log.info("stripe event %s names an unknown payment intent; ignored", event["id"])
    except InvalidTransition as exc:
        log.warning("stripe event %s not applicable: %s", event["id"], exc)
    db.session.execute(
        StripeEvent.__table__.update().where(StripeEvent.id == event["id"]).values(processed_at=utcnow())
    )
    return True


def _event_action(event: dict) -> Callable[[], object] | None:
    """What a handled event does, its object checked first (InvalidWebhook); None for other types."""
    obj = event["data"]["object"]
    if event["type"] in INTENT_EVENTS:
        intent = intent_from_event_object(obj)
        return lambda: finalize_payment(intent.id, actor=WEBHOOK, intent=intent)
    if event["type"] == CHARGE_REFUNDED:
        charge = refunded_charge_from_event_object(obj)
        return lambda: _apply_charge_refunded(charge)
    return None


def _claim_event(event_id: str, event_type: str) -> bool:
    return insert_unless_exists(StripeEvent, id=event_id, type=event_type[:100], received_at=utcnow())


def _apply_charge_refunded(charge: RefundedCharge) -> None:
    """A refund made anywhere (here, or in Stripe's dashboard) brings our books up to date."""
    if charge.payment_intent_id is None:
        return
    payment = payment_for_intent(charge.payment_intent_id)
    order = lock_order(payment.order_id)
    db.session.refresh(payment)
    if payment.status not in (PaymentStatus.COMPLETED, PaymentStatus.REFUNDED):
        return
    total_refunded = min(from_minor(charge.amount_refunded_minor), payment.amount)
    new = money(total_refunded - payment.refunded_amount)
    if new > 0:
        _book_refund(order, payment, new, refund_id=None, actor=WEBHOOK)


def find_user_order(user, order_number: str) -> Order:
    """The user's order by number. Raises NotFound, also for another user's order."""
    order = db.session.scalar(select(Order).where(Order.order_number == order_number))
    if order is None or order.user_id != user.id:
        raise NotFound("Order not found.")
    return order
