"""The payment state machine, refunds and intent cancellations.

Every payment status change goes through ``set_payment_status`` (checked against
``PAYMENT_ALLOWED``, written to the order's history), every refund status change through
``_set_refund_status`` (``REFUND_ALLOWED``); both are ``orders.change_status``. Gateway calls are never
made while order or inventory rows are locked: a service decides and records
under its locks (a ``refunds`` row ``requested``; a payment ``cancelled`` whose
intent is not cancelled yet), registers the call with ``after_commit``, and the
call runs once the decision is durable. What was recorded drives the retries
(``gateway_calls_due``, made by the retry job), so a crash between the commit and the call
loses nothing, and a refund's idempotency key means a retry never refunds twice. A call
given up after MAX_GATEWAY_ATTEMPTS leaves a history row (kind ``payment``) and an audit
row, for a person to look at.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from functools import partial

from sqlalchemy import func, select, update

from ecom.actor import SYSTEM, Actor
from ecom.audit.services import record_change
from ecom.commerce.gateways.base import to_minor
from ecom.commerce.models import Order, Payment, PaymentRefund
from ecom.commerce.orders import change_status, lock_order, order_event_data, record_history
from ecom.commerce.status import (
    PAYMENT_ALLOWED,
    REFUND_ALLOWED,
    REFUNDABLE,
    EventKind,
    PaymentStatus,
    RefundStatus,
)
from ecom.db import as_utc, locked_row, money, utcnow
from ecom.errors import Conflict, EcomError, NotFound, ValidationFailed
from ecom.extensions import db
from ecom.notifications.models import EventType
from ecom.notifications.services import emit
from ecom.runtime import payment_gateway
from ecom.unit_of_work import after_commit

log = logging.getLogger(__name__)

# A gateway call that failed this many times is given up and left for a person to look at.
MAX_GATEWAY_ATTEMPTS = 10
RETRY_BATCH = 100
NOTHING_TO_REFUND = "Order {order_number} has no completed payment to refund."
# The retry job leaves a call alone this long after it was recorded: the request that recorded
# it makes the call right after its commit, and a second call racing it (same idempotency key)
# would be refused by Stripe and counted as a failed attempt.
RETRY_GRACE = timedelta(seconds=30)


def set_payment_status(payment: Payment, target: PaymentStatus | str, *, actor: Actor,
                       note: str = "") -> None:
    """Move ``payment`` to ``target`` and write the order's history row (kind ``payment``).

    The caller holds the order's lock. Raises InvalidTransition when
    ``PAYMENT_ALLOWED`` does not allow the move.
    """
    change_status(payment, PaymentStatus(target), allowed=PAYMENT_ALLOWED, kind=EventKind.PAYMENT,
                  order_id=payment.order_id, actor=actor, note=note)


# A refund's end, either way, is its completed_at.
REFUND_STAMPS = {RefundStatus.SUCCEEDED: "completed_at", RefundStatus.FAILED: "completed_at"}


def _set_refund_status(refund: PaymentRefund, target: RefundStatus, *, actor: Actor = SYSTEM,
                       note: str = "", history: bool = False) -> None:
    """Move ``refund`` along ``REFUND_ALLOWED`` and stamp ``completed_at``; a history row only when
    asked (a refund made is in the history as the payment's own change, by ``book_refund``).
    Raises InvalidTransition."""
    change_status(refund, target, allowed=REFUND_ALLOWED, kind=EventKind.PAYMENT,
                  order_id=refund.payment.order_id, actor=actor, note=note,
                  stamps=REFUND_STAMPS, history=history, name="refund")


# --- refunds ---------------------------------------------------------------------------------


def pending_refunds(payment: Payment) -> Decimal:
    """The sum of the payment's refunds recorded but not yet made."""
    total = db.session.scalar(
        select(func.coalesce(func.sum(PaymentRefund.amount), 0))
        .where(PaymentRefund.payment_id == payment.id, PaymentRefund.status == RefundStatus.REQUESTED)
    )
    return money(total)


def refundable_amount(payment: Payment) -> Decimal:
    """What may still be refunded: paid, minus refunded, minus refunds still pending."""
    if payment.status not in REFUNDABLE:
        return money(0)
    return money(payment.amount - payment.refunded_amount - pending_refunds(payment))


def request_refund(payment: Payment, amount: Decimal, *, actor: Actor, reason: str = "") -> PaymentRefund:
    """Record a refund of ``amount`` and have the gateway make it after the commit.

    The caller holds the order's lock. The payment's books change only when the
    gateway said yes (``perform_refund``). Audited with ``actor``.
    Raises Conflict (nothing paid to refund), ValidationFailed (amount not
    positive, or more than paid minus refunded minus refunds still pending).
    """
    if payment.status not in REFUNDABLE:
        raise Conflict(NOTHING_TO_REFUND.format(order_number=payment.order.order_number))
    left = refundable_amount(payment)
    amount = money(amount)
    if amount <= 0 or amount > left:
        raise ValidationFailed(f"The refund must be between 0.01 and {left}.",
                               {"amount": [f"Must be between 0.01 and {left}."]})
    refund = PaymentRefund(payment_id=payment.id, amount=amount, status=RefundStatus.REQUESTED,
                           reason=reason, actor=actor.label, attempts=0, created_at=utcnow())
    db.session.add(refund)
    db.session.flush()
    _audit_refund(refund, actor)
    after_commit(partial(perform_refund, refund.id))
    return refund


def _audit_refund(refund: PaymentRefund, actor: Actor) -> None:
    record_change(actor, "refund", "orders", refund.payment.order_id, None,
                  {"refund_id": refund.id, "amount": refund.amount, "status": refund.status,
                   "reason": refund.reason})


def perform_refund(refund_id: int) -> PaymentRefund | None:
    """Make a recorded refund at the gateway and book it; a refund already made is left alone.

    Runs after the commit that recorded it (no order or inventory row is locked
    during the call) and again from the retry job until it
    succeeds. The refund's idempotency key makes a repeated call return the
    gateway's first refund. Never raises for a gateway failure: the row keeps
    ``attempts`` and ``last_error``, and fails for good after MAX_GATEWAY_ATTEMPTS.
    """
    refund = db.session.get(PaymentRefund, refund_id, populate_existing=True)
    if refund is None or refund.status != RefundStatus.REQUESTED:
        return refund
    intent_id = refund.payment.stripe_payment_intent_id
    try:
        answer = payment_gateway(intent_id).refund(intent_id, to_minor(refund.amount),
                                                   idempotency_key=refund.idempotency_key)
    except EcomError as exc:
        _note_refund_failure(refund_id, exc)
        return refund
    return _book_requested_refund(refund_id, answer.id)


def _note_refund_failure(refund_id: int, exc: EcomError) -> None:
    refund = locked_row(PaymentRefund, refund_id)
    if refund is None or refund.status != RefundStatus.REQUESTED:
        return
    refund.attempts += 1
    refund.last_error = _describe(exc)
    if refund.attempts >= MAX_GATEWAY_ATTEMPTS:
        _give_up_refund(refund, f"given up after {refund.attempts} attempts: {refund.last_error}")
    else:
        log.warning("refund %s not made yet (attempt %d): %s", refund_id, refund.attempts, refund.last_error)
    db.session.flush()


def _book_requested_refund(refund_id: int, gateway_refund_id: str) -> PaymentRefund | None:
    """The gateway refunded it: book it once, under the order's lock (a concurrent retry or
    webhook sees the booked row and adds nothing)."""
    payment_id, order_id = db.session.execute(
        select(PaymentRefund.payment_id, Payment.order_id)
        .join(Payment, Payment.id == PaymentRefund.payment_id).where(PaymentRefund.id == refund_id)
    ).one()
    order = lock_order(order_id)
    refund = locked_row(PaymentRefund, refund_id)
    if refund.status != RefundStatus.REQUESTED:
        return refund
    payment = db.session.get(Payment, payment_id, populate_existing=True)
    if payment.status not in REFUNDABLE or payment.refunded_amount + refund.amount > payment.amount:
        # Our books already count this money as refunded (it cannot be refunded twice).
        refund.gateway_refund_id = gateway_refund_id
        refund.last_error = "made at the gateway, but the payment's books were already settled"
        _give_up_refund(refund, f"{refund.last_error} (gateway refund {gateway_refund_id}, payment "
                                f"{payment.status} with {payment.refunded_amount} refunded)")
        return refund
    _set_refund_status(refund, RefundStatus.SUCCEEDED)
    refund.gateway_refund_id = gateway_refund_id
    refund.attempts += 1
    refund.last_error = None
    book_refund(order, payment, refund.amount, actor=Actor(refund.actor), refund_id=gateway_refund_id,
                reason=refund.reason)
    return refund


def _give_up_refund(refund: PaymentRefund, why: str) -> None:
    """The refund fails for good: its history row (kind ``payment``) and an audit row say so."""
    _set_refund_status(refund, RefundStatus.FAILED, note=f"refund {refund.amount} {why}"[:2000], history=True)
    record_change(SYSTEM, "refund.given_up", "orders", refund.payment.order_id,
                  {"refund_status": RefundStatus.REQUESTED},
                  {"refund_id": refund.id, "refund_status": refund.status, "last_error": refund.last_error})
    log.error("refund %s given up: %s", refund.id, why)


def book_refund(order: Order, payment: Payment, amount: Decimal, *, actor: Actor,
                refund_id: str | None, reason: str = "") -> None:
    """Money went back: raise ``refunded_amount``, move the payment to partially_refunded or
    refunded (history row), emit PAYMENT_REFUNDED. The caller holds the order's lock.
    Raises InvalidTransition (nothing left to refund)."""
    payment.refunded_amount = money(payment.refunded_amount + amount)
    fully = payment.refunded_amount >= payment.amount
    set_payment_status(payment, PaymentStatus.REFUNDED if fully else PaymentStatus.PARTIALLY_REFUNDED,
                       actor=actor, note=f"refund {amount}" + (f": {reason}" if reason else ""))
    emit(EventType.PAYMENT_REFUNDED, {
        **order_event_data(order),
        "amount": str(amount),
        "refunded_total": str(payment.refunded_amount),
        "refund_id": refund_id,
        "reason": reason,
        "actor": actor.label,
    })
    db.session.flush()


def record_external_refund(order: Order, payment: Payment, amount: Decimal, *, actor: Actor,
                           reason: str) -> None:
    """A refund made at the gateway without us (Stripe's dashboard): recorded as made (and
    audited), then booked. The caller holds the order's lock."""
    refund = PaymentRefund(payment_id=payment.id, amount=money(amount), status=RefundStatus.SUCCEEDED,
                           reason=reason, actor=actor.label, attempts=0, created_at=utcnow(),
                           completed_at=utcnow())
    db.session.add(refund)
    db.session.flush()
    _audit_refund(refund, actor)
    book_refund(order, payment, amount, actor=actor, refund_id=None, reason=reason)


# --- intent cancellations --------------------------------------------------------------------


def cancel_payment(payment: Payment, *, actor: Actor, note: str = "") -> None:
    """An unpaid payment whose order was cancelled: ``cancelled`` now, its intent cancelled at
    the gateway after the commit (retried until done). The caller holds the order's lock.
    Raises InvalidTransition."""
    set_payment_status(payment, PaymentStatus.CANCELLED, actor=actor, note=note)
    after_commit(partial(perform_intent_cancellation, payment.id))


def perform_intent_cancellation(payment_id: int) -> bool:
    """Cancel a cancelled payment's intent at the gateway, once; True when it is (now) done.

    A failure is counted and noted on the payment for the retry job; after
    MAX_GATEWAY_ATTEMPTS it is given up (a history row and an audit row). An
    intent the gateway does not know needs no cancelling, and one it cancelled
    already is done (``cancel_intent`` answers it as cancelled). Never raises for
    a gateway failure.
    """
    payment = db.session.get(Payment, payment_id, populate_existing=True)
    if payment is None or payment.status != PaymentStatus.CANCELLED:
        return False
    if payment.intent_cancelled_at is not None:
        return True
    intent_id = payment.stripe_payment_intent_id
    try:
        payment_gateway(intent_id).cancel_intent(intent_id)
    except NotFound:
        pass  # unknown at the gateway: nothing there to cancel
    except EcomError as exc:
        _note_cancellation_failure(payment, exc)
        return False
    mark_intent_cancelled(payment_id)
    return True


def mark_intent_cancelled(payment_id: int) -> None:
    """Note that the payment's intent is cancelled at the gateway (the retry job stops there)."""
    db.session.execute(update(Payment).where(Payment.id == payment_id, Payment.intent_cancelled_at.is_(None))
                       .values(intent_cancelled_at=utcnow(), intent_cancel_error=None))


def _note_cancellation_failure(payment: Payment, exc: EcomError) -> None:
    error = _describe(exc)
    attempts = db.session.scalar(
        update(Payment).where(Payment.id == payment.id)
        .values(intent_cancel_attempts=Payment.intent_cancel_attempts + 1, intent_cancel_error=error)
        .returning(Payment.intent_cancel_attempts))
    if attempts < MAX_GATEWAY_ATTEMPTS:
        log.warning("could not cancel payment intent %s (attempt %d): %s",
                    payment.stripe_payment_intent_id, attempts, error)
        return
    note = f"intent cancellation given up after {attempts} attempts: {error}"[:2000]
    record_history(payment.order_id, EventKind.PAYMENT, payment.status, payment.status, actor=SYSTEM,
                   note=note)
    record_change(SYSTEM, "payment.intent_cancel_given_up", "orders", payment.order_id,
                  {"intent_cancel_attempts": attempts - 1},
                  {"intent_cancel_attempts": attempts, "intent_cancel_error": error})
    log.error("payment %s: %s", payment.id, note)


# --- what the retry job picks up ------------------------------------------------------------


@dataclass(frozen=True)
class GatewayCallsDue:
    refund_ids: list[int]
    payment_ids: list[int]  # cancelled payments whose intent is not cancelled yet


def gateway_calls_due(now: datetime | None = None, batch: int = RETRY_BATCH) -> GatewayCallsDue:
    """The gateway calls recorded before ``now`` minus RETRY_GRACE but not done: requested
    refunds, and cancelled payments whose intent is not cancelled yet (fewer than
    MAX_GATEWAY_ATTEMPTS tries so far), oldest first. ``workers.periodic.retry_gateway_calls``
    makes them with ``perform_refund`` and ``perform_intent_cancellation``."""
    before = (as_utc(now) or utcnow()) - RETRY_GRACE
    refund_ids = list(db.session.scalars(
        select(PaymentRefund.id).where(PaymentRefund.status == RefundStatus.REQUESTED,
                                       PaymentRefund.created_at < before)
        .order_by(PaymentRefund.id).limit(batch)))
    # A payment's last change (its cancellation, or the last failed attempt) is its updated_at.
    payment_ids = list(db.session.scalars(
        select(Payment.id).where(Payment.status == PaymentStatus.CANCELLED,
                                 Payment.intent_cancelled_at.is_(None),
                                 Payment.intent_cancel_attempts < MAX_GATEWAY_ATTEMPTS,
                                 Payment.updated_at < before)
        .order_by(Payment.id).limit(batch)))
    return GatewayCallsDue(refund_ids=refund_ids, payment_ids=payment_ids)


def _describe(exc: EcomError) -> str:
    detail = exc.extra.get("gateway_message")
    return (f"{exc.message} ({detail})" if detail else exc.message)[:2000]
