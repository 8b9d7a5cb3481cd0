"""Fulfillment: picking, packing, shipping and delivering paid orders.

Every step, cancelling included, goes through one helper (``_move``): it moves
the fulfillment along ``ALLOWED`` and, where ``ORDER_STATUS_FOR`` says so, its
order too, in one go (both through ``ecom.commerce.orders.change_status``, the
one status change of every machine); both transitions are checked before either is written,
so a refused step changes nothing. Each move writes the order's history (kind
``fulfillment``) and an audit row with its actor, whoever called it. The
functions take one fulfillment; ``apply_to_many`` runs a step over a
selection (the back office's bulk actions) and reports per item.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from sqlalchemy import select

from ecom.actor import Actor
from ecom.audit.services import record_change
from ecom.commerce.models import Order
from ecom.commerce.orders import change_status, check_transition, lock_order, order_event_data, transition
from ecom.commerce.status import ALLOWED as ORDER_ALLOWED
from ecom.commerce.status import EventKind, OrderStatus
from ecom.errors import EcomError, ValidationFailed
from ecom.extensions import db
from ecom.fulfillment.models import Fulfillment
from ecom.fulfillment.status import ALLOWED, ORDER_STATUS_FOR, FulfillmentStatus
from ecom.notifications.models import EventType
from ecom.notifications.services import emit

STAMPS = {
    FulfillmentStatus.PROCESSING: "processing_at",
    FulfillmentStatus.PACKED: "packed_at",
    FulfillmentStatus.SHIPPED: "shipped_at",
    FulfillmentStatus.DELIVERED: "delivered_at",
}


def create_fulfillment(order: Order) -> Fulfillment:
    """The order's pending fulfillment, created once (a repeat returns the existing one)."""
    existing = db.session.scalar(select(Fulfillment).where(Fulfillment.order_id == order.id))
    if existing is not None:
        return existing
    fulfillment = Fulfillment(order_id=order.id, order_number=order.order_number,
                              status=FulfillmentStatus.PENDING)
    db.session.add(fulfillment)
    db.session.flush()
    return fulfillment


def _move(fulfillment: Fulfillment, target: FulfillmentStatus, *, actor: Actor, note: str = "",
          changes: dict | None = None) -> Order:
    """The one fulfillment transition: checked against ``ALLOWED`` (and the order's machine,
    when the step moves the order), then written, with its history row and audit entry.
    Raises InvalidTransition, having changed nothing."""
    order = lock_order(fulfillment.order_id)
    db.session.refresh(fulfillment)
    check_transition(ALLOWED, EventKind.FULFILLMENT, FulfillmentStatus(fulfillment.status), target)
    order_target = ORDER_STATUS_FOR.get(target)
    if order_target is not None:
        check_transition(ORDER_ALLOWED, EventKind.ORDER, OrderStatus(order.status), order_target)
    before = _state(fulfillment)
    for name, value in (changes or {}).items():
        setattr(fulfillment, name, value)
    if order_target is not None:
        transition(order, order_target, actor=actor, note=note or f"fulfillment {target}")
    change_status(fulfillment, target, allowed=ALLOWED, kind=EventKind.FULFILLMENT, order_id=order.id,
                  actor=actor, note=note, stamps=STAMPS)
    record_change(actor, "update", "fulfillments", fulfillment.id, before, _state(fulfillment))
    db.session.flush()
    return order


def _state(fulfillment: Fulfillment) -> dict:
    return {"status": fulfillment.status, "carrier": fulfillment.carrier,
            "tracking_number": fulfillment.tracking_number}


def mark_processing(fulfillment: Fulfillment, *, actor: Actor) -> Fulfillment:
    """pending → processing. Raises InvalidTransition."""
    _move(fulfillment, FulfillmentStatus.PROCESSING, actor=actor)
    return fulfillment


def mark_packed(fulfillment: Fulfillment, *, actor: Actor) -> Fulfillment:
    """processing → packed; the order becomes packed. Raises InvalidTransition."""
    _move(fulfillment, FulfillmentStatus.PACKED, actor=actor)
    return fulfillment


def ship_fulfillment(fulfillment: Fulfillment, *, carrier: str, tracking_number: str,
                     actor: Actor) -> Fulfillment:
    """packed → shipped with carrier and tracking; the order becomes shipped, ORDER_SHIPPED.

    Raises ValidationFailed (carrier or tracking number missing), InvalidTransition.
    """
    carrier, tracking_number = (carrier or "").strip(), (tracking_number or "").strip()
    errors = {name: ["Required to ship."] for name, value in
              (("carrier", carrier), ("tracking_number", tracking_number)) if not value}
    if errors:
        raise ValidationFailed("Carrier and tracking number are required to ship.", errors)
    order = _move(fulfillment, FulfillmentStatus.SHIPPED, actor=actor, note=f"{carrier} {tracking_number}",
                  changes={"carrier": carrier, "tracking_number": tracking_number})
    emit(EventType.ORDER_SHIPPED, order_event_data(order))
    return fulfillment


def mark_delivered(fulfillment: Fulfillment, *, actor: Actor) -> Fulfillment:
    """shipped → delivered; the order becomes delivered, ORDER_DELIVERED. Raises InvalidTransition."""
    order = _move(fulfillment, FulfillmentStatus.DELIVERED, actor=actor)
    emit(EventType.ORDER_DELIVERED, order_event_data(order))
    return fulfillment


def cancel_fulfillment(fulfillment: Fulfillment, *, actor: Actor, note: str = "") -> Fulfillment:
    """pending/processing → cancelled, as its order is cancelled (``ecom.commerce.cancellation``).
    Raises InvalidTransition once it was packed, or when it is cancelled already."""
    _move(fulfillment, FulfillmentStatus.CANCELLED, actor=actor, note=note)
    return fulfillment


@dataclass
class BulkResult:
    done: list[Fulfillment] = field(default_factory=list)
    failed: dict[int, str] = field(default_factory=dict)  # fulfillment id -> reason


def apply_to_many(step: Callable[..., Fulfillment], fulfillments: Iterable[Fulfillment],
                  **kwargs) -> BulkResult:
    """Run ``step`` (e.g. ``mark_packed``) on each fulfillment, in the caller's one unit of
    work; a refused one is reported and skipped without touching the others (every step
    checks before it writes)."""
    result = BulkResult()
    for fulfillment in sorted(fulfillments, key=lambda f: f.order_id):
        try:
            result.done.append(step(fulfillment, **kwargs))
        except EcomError as exc:
            result.failed[fulfillment.id] = str(exc)
    return result
