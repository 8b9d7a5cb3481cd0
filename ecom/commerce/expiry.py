"""Expiry of unpaid orders whose stock reservation ran out."""

from __future__ import annotations

import logging
from datetime import datetime

from sqlalchemy import select

from ecom.actor import EXPIRY
from ecom.commerce.checkout import EXPIRED_REASON
from ecom.commerce.orders import lock_order, order_event_data, transition
from ecom.commerce.status import OrderStatus, PaymentStatus
from ecom.extensions import db
from ecom.inventory.models import ReservationStatus, StockReservation
from ecom.inventory.services import release_stock
from ecom.notifications.models import EventType
from ecom.notifications.services import emit

log = logging.getLogger(__name__)


def expire_order(order_id: int, now: datetime) -> tuple[str, str | None] | None:
    """Cancel one unpaid order whose reservation is overdue, releasing its stock; flushes only.

    Returns its order number and the payment intent the caller must cancel
    after the commit (None when there is none), or None when there was nothing
    to expire (a payment won the race for the lock). Raises NotFound.
    """
    order = lock_order(order_id)
    still_overdue = db.session.scalar(
        select(StockReservation.id).where(
            StockReservation.order_id == order.id,
            StockReservation.status == ReservationStatus.ACTIVE,
            StockReservation.expires_at <= now,
        ).limit(1)
    )
    # A payment may have won the race for the lock; then there is nothing to expire.
    if order.status != OrderStatus.CREATED or not still_overdue:
        return None
    release_stock(order, expired=True)
    transition(order, OrderStatus.CANCELLED, actor=EXPIRY, note=EXPIRED_REASON)
    order.cancel_reason = EXPIRED_REASON
    emit(EventType.ORDER_CANCELLED, {**order_event_data(order), "reason": EXPIRED_REASON})
    payment = order.payment
    unpaid = payment is not None and payment.status != PaymentStatus.COMPLETED
    return order.order_number, payment.stripe_payment_intent_id if unpaid else None
