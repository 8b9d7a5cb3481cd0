"""Expiry of unpaid orders whose stock reservation ran out."""

from __future__ import annotations

import logging
from datetime import datetime

from sqlalchemy import select

from ecom.actor import EXPIRY
from ecom.commerce.cancellation import EXPIRED_REASON, cancel_order
from ecom.commerce.orders import lock_order
from ecom.commerce.status import OrderStatus
from ecom.extensions import db
from ecom.inventory.models import ReservationStatus, StockReservation

log = logging.getLogger(__name__)


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
