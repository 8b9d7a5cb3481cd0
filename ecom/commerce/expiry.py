"""Expiry of unpaid orders whose stock reservation ran out."""

from __future__ import annotations

import logging
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.exc import SQLAlchemyError

from ecom.actor import EXPIRY
from ecom.commerce.cancellation import EXPIRED_REASON, cancel_order
from ecom.commerce.orders import lock_order
from ecom.commerce.status import OrderStatus
from ecom.db import as_utc, utcnow
from ecom.errors import EcomError
from ecom.extensions import db
from ecom.inventory.models import ReservationStatus, StockReservation
from ecom.inventory.services import overdue_order_ids
from ecom.unit_of_work import unit_of_work

log = logging.getLogger(__name__)


def expire_reservations(now: datetime | None = None) -> list[str]:
    """Cancel every unpaid order whose reservation is overdue, releasing its stock.

    Each order is handled in its own unit of work (committed here: this is a job
    entry point, and one stuck order must not hold back the rest); its payment
    intent is cancelled after that commit, so no gateway call happens while
    rows are locked. Returns the order numbers cancelled.
    """
    now = as_utc(now) or utcnow()
    cancelled: list[str] = []
    for order_id in overdue_order_ids(now):
        try:
            with unit_of_work():
                order_number = expire_order(order_id, now)
        except (EcomError, SQLAlchemyError):
            log.exception("could not expire order %s", order_id)
            continue
        if order_number is not None:
            cancelled.append(order_number)
    return cancelled


def expire_order(order_id: int, now: datetime) -> str | None:
    """Cancel one unpaid order whose reservation is overdue at ``now`` (the one cancel path,
    actor ``system:expiry``); its order number, or None when there was nothing to expire
    (a payment won the race for the lock). Flushes only; the intent is cancelled after
    the caller's commit. Raises NotFound.
    """
    order = lock_order(order_id)
    still_overdue = db.session.scalar(
        select(StockReservation.id).where(
            StockReservation.order_id == order.id,
            StockReservation.status == ReservationStatus.ACTIVE,
            StockReservation.expires_at <= now,
        ).limit(1)
    )
    if order.status != OrderStatus.CREATED or not still_overdue:
        return None
    cancel_order(order, actor=EXPIRY, reason=EXPIRED_REASON, expired=True)
    return order.order_number
