"""The status machines' one way to change a status (``change_status``), the order's
``transition()`` built on it, and the history rows (``order_events``) that order,
payment and fulfillment changes write."""

from __future__ import annotations

from collections.abc import Collection, Mapping
from enum import StrEnum
from functools import cache
from typing import Any

from sqlalchemy import insert
from sqlalchemy.orm import make_transient_to_detached

from ecom.actor import Actor
from ecom.commerce.models import Order, OrderEvent
from ecom.commerce.status import ALLOWED, LATE_PAYMENT_REVIVAL, EventKind, OrderStatus
from ecom.db import locked_row, utcnow
from ecom.errors import InvalidTransition, NotFound
from ecom.extensions import db
from ecom.row_writes import RowWrite

# The timestamp column each status stamps when an order enters it.
STAMPS: dict[OrderStatus, str] = {
    OrderStatus.PAID: "paid_at",
    OrderStatus.PACKED: "packed_at",
    OrderStatus.SHIPPED: "shipped_at",  # when the last shipment left
    OrderStatus.DELIVERED: "delivered_at",
    OrderStatus.CANCELLED: "cancelled_at",
}


def lock_order(order_id: int) -> Order:
    """Load the order with a row lock (SELECT ... FOR UPDATE) and fresh column values.

    Lock the order before any inventory row; see ecom.inventory.services.
    Raises NotFound.
    """
    order = locked_row(Order, order_id)
    if order is None:
        raise NotFound("Order not found.")
    return order


def check_transition(allowed: Mapping[Any, Collection], kind: str, current: StrEnum, target: StrEnum, *,
                     also: Collection[tuple] = ()) -> None:
    """Raise InvalidTransition(kind, current, target) unless ``allowed`` (or one of the extra
    ``(current, target)`` pairs in ``also``) permits the move."""
    if target not in allowed[current] and (current, target) not in also:
        raise InvalidTransition(kind, current, target)


def change_status(obj: Any, target: StrEnum, *, allowed: Mapping[Any, Collection], kind: EventKind,
                  order_id: int, actor: Actor, note: str = "", stamps: Mapping[Any, str] | None = None,
                  also: Collection[tuple] = (), history: bool = True, name: str | None = None
                  ) -> OrderEvent | None:
    """The one status change of every state machine (order, payment, fulfillment, refund):
    check ``allowed``, set ``obj.status``, stamp the column ``stamps`` names for the target,
    and write the order's history row of ``kind`` (unless ``history`` is False), which it
    returns. Raises InvalidTransition (naming ``name``, by default ``kind``), having changed
    nothing."""
    current = type(target)(obj.status)
    check_transition(allowed, name or kind, current, target, also=also)
    obj.status = target
    stamp = (stamps or {}).get(target)
    if stamp:
        setattr(obj, stamp, utcnow())
    if not history:
        return None
    return record_history(order_id, kind, current, target, actor=actor, note=note)


def transition(order: Order, target: OrderStatus | str, *, actor: Actor, note: str = "",
               late_payment: bool = False) -> OrderEvent:
    """Move ``order`` to ``target`` and write the history row.

    ``late_payment`` also allows LATE_PAYMENT_REVIVAL (cancelled by expiry, then paid).
    Raises InvalidTransition when the state machine does not allow the move.
    """
    move = (OrderStatus(order.status), OrderStatus(target))
    event = change_status(order, move[1], allowed=ALLOWED, kind=EventKind.ORDER, order_id=order.id,
                          actor=actor, note=note, stamps=STAMPS,
                          also=(LATE_PAYMENT_REVIVAL,) if late_payment else ())
    if move == LATE_PAYMENT_REVIVAL:
        # Revived: it is no longer a cancelled order.
        order.cancelled_at = None
        order.cancel_reason = None
    return event


PLACED_NOTE = "order placed"


def record_creation(order: Order, *, actor: Actor) -> OrderEvent:
    """The first history row of a new order."""
    return record_history(order.id, EventKind.ORDER, None, order.status, actor=actor, note=PLACED_NOTE)


def creation_row(order: Order, *, actor: Actor) -> RowWrite:
    """``record_creation``'s row, for a caller that sends it along another INSERT."""
    return RowWrite(OrderEvent.__table__, _history_values(order.id, EventKind.ORDER, None, order.status,
                                                          actor=actor, note=PLACED_NOTE))


@cache
def _insert_history():
    return insert(OrderEvent.__table__).returning(OrderEvent.__table__.c.id)


def record_history(order_id: int, kind: EventKind, from_status: str | None, to_status: str, *,
                   actor: Actor, note: str = "") -> OrderEvent:
    """Write one row of an order's history: a change of the order, its payment or its
    fulfillment. One INSERT, not the unit of work (every checkout and payment writes one);
    what is returned is the row as written, detached."""
    values = _history_values(order_id, kind, from_status, to_status, actor=actor, note=note)
    event = OrderEvent(id=db.session.execute(_insert_history(), values).scalar_one(), **values)
    make_transient_to_detached(event)
    return event


def _history_values(order_id: int, kind: EventKind, from_status: str | None, to_status: str, *,
                    actor: Actor, note: str) -> dict:
    return {"order_id": order_id, "kind": str(kind), "from_status": from_status,
            "to_status": str(to_status), "actor": actor.label, "note": note, "created_at": utcnow()}


def order_event_data(order: Order, fulfillment=None) -> dict:
    """The ``data`` part of an order event's payload (the notification templates read it).
    Carrier and tracking are ``fulfillment``'s, else the latest shipment's."""
    if fulfillment is None:
        fulfillment = next((f for f in reversed(order.fulfillments) if f.tracking_number), None)
    return {
        "order_id": order.id,
        "order_number": order.order_number,
        "user_id": order.user_id,
        "user_email": order.email or (order.user.email if order.user else None),
        "customer_name": (order.shipping_address or {}).get("full_name"),
        "status": order.status,
        "total": str(order.total),
        # What was priced, for the emails (absent in events written before pricing).
        "discount_total": str(order.discount_total or "0.00"),
        "voucher_code": order.voucher_code,
        "shipping_method": order.shipping_method_name,
        "currency": order.currency,
        "items": [
            {"sku": i.sku, "product_name": i.product_name, "variant_name": i.variant_name,
             "quantity": i.quantity, "price": str(i.price)}
            for i in order.items
        ],
        "carrier": fulfillment.carrier if fulfillment else None,
        "tracking_number": fulfillment.tracking_number if fulfillment else None,
    }
