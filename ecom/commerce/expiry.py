"""Expiry of unpaid orders whose stock reservation ran out."""

from __future__ import annotations

import logging
from datetime import datetime

from flask import current_app
from sqlalchemy import select
from sqlalchemy.exc import SQLAlchemyError

from ecom.actor import EXPIRY
from ecom.commerce.checkout import EXPIRED_REASON, _cancel_intent_quietly
from ecom.commerce.gateway import gateway_for_intent
from ecom.commerce.orders import lock_order, order_event_data, transition
from ecom.commerce.status import OrderStatus, PaymentStatus
from ecom.db import as_utc, utcnow
from ecom.errors import EcomError
from ecom.extensions import db
from ecom.inventory.models import ReservationStatus, StockReservation
from ecom.inventory.services import overdue_order_ids, release_stock
from ecom.notifications.models import EventType
from ecom.notifications.services import emit

log = logging.getLogger(__name__)


def expire_reservations(now: datetime | None = None) -> list[str]:
    """Cancel every unpaid order whose reservation is overdue, releasing its stock.

    Each order is handled in its own transaction (committed here: this is a job
    entry point, and one stuck order must not hold back the rest), and its
    payment intent is cancelled after the commit, best effort, so no gateway
    call happens while rows are locked. Returns the order numbers cancelled.
    """
    now = as_utc(now) or utcnow()
    cancelled: list[str] = []
    for order_id in overdue_order_ids(now):
        try:
            expired = _expire_one(order_id, now)
            db.session.commit()
        except (EcomError, SQLAlchemyError):
            db.session.rollback()
            log.exception("could not expire order %s", order_id)
            continue
        if expired is None:
            continue
        order_number, pending_intent = expired
        cancelled.append(order_number)
        if pending_intent:
            _cancel_intent_quietly(gateway_for_intent(current_app.config, pending_intent), pending_intent)
    return cancelled


def _expire_one(order_id: int, now: datetime) -> tuple[str, str | None] | None:
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
