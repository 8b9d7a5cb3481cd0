"""What staff and Stripe do to an order after it was placed: refunds and webhook events.

Cancelling is ``ecom.commerce.cancellation.cancel_order``; paying is the finaliser in
``ecom.commerce.checkout``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from decimal import Decimal

from sqlalchemy import select

from ecom.actor import WEBHOOK, Actor
from ecom.commerce.checkout import finalize_payment, payment_for_intent
from ecom.commerce.gateways.base import RefundedCharge, from_minor
from ecom.commerce.gateways.webhooks import intent_from_event_object, refunded_charge_from_event_object
from ecom.commerce.models import Order, PaymentRefund, StripeEvent
from ecom.commerce.orders import lock_order
from ecom.commerce.payments import (
    NOTHING_TO_REFUND,
    pending_refunds,
    record_external_refund,
    refundable_amount,
    request_refund,
)
from ecom.commerce.sql import insert_unless_exists
from ecom.commerce.status import MONEY_TAKEN
from ecom.db import money, utcnow
from ecom.errors import Conflict, InvalidTransition, NotFound
from ecom.extensions import db

log = logging.getLogger(__name__)

STAFF_REFUND_REASON = "refunded by staff"
EXTERNAL_REFUND_REASON = "refunded at the payment provider"


def refund_payment(order: Order, amount: Decimal | str | None = None, *, actor: Actor,
                   reason: str = STAFF_REFUND_REASON) -> PaymentRefund:
    """Refund ``amount`` (default: all that is still refundable) of the order's payment.

    The refund is recorded now and made by the gateway after the commit (retried
    from the record if the gateway is away); the order's status is left alone
    (cancelling is ``cancel_order``'s job). Audited with ``actor``.
    Raises Conflict (nothing paid to refund), ValidationFailed (amount not
    positive, or above what is paid minus refunded minus refunds still pending).
    """
    order = lock_order(order.id)
    payment = order.payment
    if payment is None:
        raise Conflict(NOTHING_TO_REFUND.format(order_number=order.order_number))
    db.session.refresh(payment)
    value = refundable_amount(payment) if amount is None else money(amount)
    return request_refund(payment, value, actor=actor, reason=reason)


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
    # A savepoint: an event refused halfway (InvalidTransition after something was flushed)
    # leaves nothing of itself behind; only its claim and processed_at are committed.
    try:
        with db.session.begin_nested():
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
    """A refund made anywhere (here, or in Stripe's dashboard) brings our books up to date.

    ``amount_refunded`` is the charge's running total. What it holds beyond our
    books and beyond the refunds we requested and have not booked yet was made
    at the gateway without us: recorded and booked as such. Our own refunds are
    booked when their call returns, so they are never counted twice.
    """
    if charge.payment_intent_id is None:
        return
    payment = payment_for_intent(charge.payment_intent_id)
    order = lock_order(payment.order_id)
    db.session.refresh(payment)
    if payment.status not in MONEY_TAKEN:
        return
    total_refunded = min(from_minor(charge.amount_refunded_minor), payment.amount)
    new = money(total_refunded - payment.refunded_amount - pending_refunds(payment))
    if new > 0:
        record_external_refund(order, payment, new, actor=WEBHOOK, reason=EXTERNAL_REFUND_REASON)


def find_user_order(user, order_number: str) -> Order:
    """The user's order by number. Raises NotFound, also for another user's order."""
    order = db.session.scalar(select(Order).where(Order.order_number == order_number))
    if order is None or order.user_id != user.id:
        raise NotFound("Order not found.")
    return order
