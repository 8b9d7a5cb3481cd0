"""Fulfillment: picking, packing, shipping and delivering paid orders, one
fulfillment per stock location the order's units come from (a split shipment),
and click & collect (``ready_for_pickup`` → ``picked_up``) for pickup orders.

Every step, cancelling included, goes through one helper (``_move``): it moves
the fulfillment along ``ALLOWED`` and, where the order's status follows
(``_order_status_after``), its order too, in one go (both through
``ecom.commerce.orders.change_status``, the one status change of every
machine); both transitions are checked before either is written, so a refused
step changes nothing. Each move writes the order's history (kind
``fulfillment``) and an audit row with its actor, whoever called it. The
functions take one fulfillment; ``apply_to_many`` runs a step over a
selection (the back office's bulk actions) and reports per item.

The order follows its fulfillments: the first packed shipment makes it
``packed``; a shipment sent while another is still open makes it
``partially_shipped``, the last one ``shipped``; ``delivered`` once every
shipment is. A pickup ready at the store makes it ``ready_for_pickup``, and
picked up, ``delivered``.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from sqlalchemy import select

from ecom.actor import Actor
from ecom.audit.services import record_change
from ecom.commerce.models import Order
from ecom.commerce.orders import change_status, check_transition, lock_order, order_event_data, transition
from ecom.commerce.status import ALLOWED as ORDER_ALLOWED
from ecom.commerce.status import EventKind, OrderStatus
from ecom.errors import EcomError, InvalidTransition, ValidationFailed
from ecom.extensions import db
from ecom.fulfillment.models import Fulfillment, FulfillmentLine
from ecom.fulfillment.status import ALLOWED, PICKUP_ONLY, SHIPPING_ONLY, FulfillmentStatus
from ecom.inventory.models import StockLocation
from ecom.inventory.services import committed_units, default_location
from ecom.notifications.models import EventType
from ecom.notifications.services import emit

# An order in these statuses has nothing to pick, pack or send.
NOT_UNDER_WAY = frozenset({OrderStatus.CREATED, OrderStatus.CANCELLED})

STAMPS = {
    FulfillmentStatus.PROCESSING: "processing_at",
    FulfillmentStatus.PACKED: "packed_at",
    FulfillmentStatus.SHIPPED: "shipped_at",
    FulfillmentStatus.DELIVERED: "delivered_at",
    FulfillmentStatus.READY_FOR_PICKUP: "ready_for_pickup_at",
    FulfillmentStatus.PICKED_UP: "picked_up_at",
}


def create_fulfillments(order: Order, *, pickup_store_id: int | None = None) -> list[Fulfillment]:
    """The paid order's pending fulfillments, one per location its units were committed at,
    each with the order lines (and units) it sends; created once (a repeat returns the
    existing ones). A pickup order's (``pickup_store_id``, else the order's own
    ``pickup_store_id`` when it has one) one fulfillment is a pickup."""
    existing = list(db.session.scalars(
        select(Fulfillment).where(Fulfillment.order_id == order.id).order_by(Fulfillment.id)))
    if existing:
        return existing
    by_location: dict[int, dict[int, int]] = defaultdict(dict)
    for (variant_id, location_id), units in sorted(committed_units(order).items()):
        by_location[location_id][variant_id] = units
    if not by_location:
        # No committed reservation to follow (an order paid before stock had locations, or
        # made by hand): everything ships from the default location.
        home = by_location[default_location().id]
        for item in order.items:
            home[item.variant_id] = home.get(item.variant_id, 0) + item.quantity
    if pickup_store_id is None:
        pickup_store_id = getattr(order, "pickup_store_id", None)
    is_pickup = pickup_store_id is not None
    created = []
    for location_id, units in sorted(by_location.items()):
        fulfillment = Fulfillment(order_id=order.id, order_number=order.order_number, location_id=location_id,
                                  is_pickup=is_pickup, status=FulfillmentStatus.PENDING)
        # Units of a variant go to its lines in order (a variant may sit on two lines).
        for item in order.items:
            take = min(units.get(item.variant_id, 0), item.quantity - _assigned(created, item.id))
            if take > 0:
                fulfillment.lines.append(FulfillmentLine(order_item_id=item.id, quantity=take))
                units[item.variant_id] -= take
        db.session.add(fulfillment)
        created.append(fulfillment)
    db.session.flush()
    return created


def _assigned(fulfillments: list[Fulfillment], order_item_id: int) -> int:
    return sum(line.quantity for f in fulfillments for line in f.lines if line.order_item_id == order_item_id)


def create_fulfillment(order: Order) -> Fulfillment:
    """The order's first fulfillment (``create_fulfillments`` for all of them)."""
    return create_fulfillments(order)[0]


def _order_status_after(order: Order, fulfillment: Fulfillment,
                        target: FulfillmentStatus) -> OrderStatus | None:
    """Where the order goes when ``fulfillment`` reaches ``target``, if anywhere."""
    others = [FulfillmentStatus(f.status) for f in order.fulfillments
              if f.id != fulfillment.id and f.status != FulfillmentStatus.CANCELLED]
    current = OrderStatus(order.status)
    if target == FulfillmentStatus.PACKED:
        return OrderStatus.PACKED if current == OrderStatus.PAID else None
    if target == FulfillmentStatus.SHIPPED:
        if all(s in (FulfillmentStatus.SHIPPED, FulfillmentStatus.DELIVERED) for s in others):
            return OrderStatus.SHIPPED
        return OrderStatus.PARTIALLY_SHIPPED if current != OrderStatus.PARTIALLY_SHIPPED else None
    if target == FulfillmentStatus.DELIVERED:
        return OrderStatus.DELIVERED if all(s == FulfillmentStatus.DELIVERED for s in others) else None
    if target == FulfillmentStatus.READY_FOR_PICKUP:
        return OrderStatus.READY_FOR_PICKUP if current == OrderStatus.PAID else None
    if target == FulfillmentStatus.PICKED_UP:
        return OrderStatus.DELIVERED if all(s == FulfillmentStatus.PICKED_UP for s in others) else None
    return None


def _move(fulfillment: Fulfillment, target: FulfillmentStatus, *, actor: Actor, note: str = "",
          changes: dict | None = None) -> Order:
    """The one fulfillment transition: checked against ``ALLOWED``, the fulfillment's kind
    (shipment or pickup) and the order's machine when the step moves the order, then
    written, with its history row and audit entry. Raises InvalidTransition, having
    changed nothing."""
    order = lock_order(fulfillment.order_id)
    db.session.refresh(fulfillment)
    current = FulfillmentStatus(fulfillment.status)
    check_transition(ALLOWED, EventKind.FULFILLMENT, current, target)
    if target in (PICKUP_ONLY if not fulfillment.is_pickup else SHIPPING_ONLY):
        kind = "pickup fulfillment" if fulfillment.is_pickup else "shipment fulfillment"
        raise InvalidTransition(kind, current, target)
    order_target = _order_status_after(order, fulfillment, target)
    if order_target is not None:
        check_transition(ORDER_ALLOWED, EventKind.ORDER, OrderStatus(order.status), order_target)
    elif target != FulfillmentStatus.CANCELLED and order.status in NOT_UNDER_WAY:
        raise InvalidTransition(EventKind.FULFILLMENT, current, target)
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
            "tracking_number": fulfillment.tracking_number, "location_id": fulfillment.location_id}


def shipment_data(fulfillment: Fulfillment) -> dict:
    """What an event says about one fulfillment: its location, lines and tracking."""
    location = fulfillment.location
    return {
        "fulfillment_id": fulfillment.id,
        "location": location.name if location else None,
        "carrier": fulfillment.carrier,
        "tracking_number": fulfillment.tracking_number,
        "lines": [{"sku": line.order_item.sku, "product_name": line.order_item.product_name,
                   "variant_name": line.order_item.variant_name, "quantity": line.quantity}
                  for line in fulfillment.lines],
    }


def mark_processing(fulfillment: Fulfillment, *, actor: Actor) -> Fulfillment:
    """pending → processing. Raises InvalidTransition."""
    _move(fulfillment, FulfillmentStatus.PROCESSING, actor=actor)
    return fulfillment


def mark_packed(fulfillment: Fulfillment, *, actor: Actor) -> Fulfillment:
    """processing → packed (a shipment); the order becomes packed with its first packed
    shipment. Raises InvalidTransition."""
    _move(fulfillment, FulfillmentStatus.PACKED, actor=actor)
    return fulfillment


def ship_fulfillment(fulfillment: Fulfillment, *, carrier: str, tracking_number: str,
                     actor: Actor) -> Fulfillment:
    """packed → shipped with carrier and tracking; the order becomes partially_shipped or,
    with its last shipment, shipped; ORDER_SHIPPED names this shipment's lines and tracking.

    Raises ValidationFailed (carrier or tracking number missing), InvalidTransition.
    """
    carrier, tracking_number = (carrier or "").strip(), (tracking_number or "").strip()
    errors = {name: ["Required to ship."] for name, value in
              (("carrier", carrier), ("tracking_number", tracking_number)) if not value}
    if errors:
        raise ValidationFailed("Carrier and tracking number are required to ship.", errors)
    order = _move(fulfillment, FulfillmentStatus.SHIPPED, actor=actor, note=f"{carrier} {tracking_number}",
                  changes={"carrier": carrier, "tracking_number": tracking_number})
    emit(EventType.ORDER_SHIPPED, {**order_event_data(order, fulfillment),
                                   "shipment": shipment_data(fulfillment),
                                   "partial": order.status == OrderStatus.PARTIALLY_SHIPPED})
    return fulfillment


def mark_delivered(fulfillment: Fulfillment, *, actor: Actor) -> Fulfillment:
    """shipped → delivered; the order becomes delivered (ORDER_DELIVERED) once every
    shipment is. Raises InvalidTransition."""
    order = _move(fulfillment, FulfillmentStatus.DELIVERED, actor=actor)
    if order.status == OrderStatus.DELIVERED:
        emit(EventType.ORDER_DELIVERED, order_event_data(order, fulfillment))
    return fulfillment


def mark_ready_for_pickup(fulfillment: Fulfillment, *, actor: Actor) -> Fulfillment:
    """processing → ready_for_pickup (a pickup); the order becomes ready_for_pickup and
    ORDER_READY_FOR_PICKUP tells the customer where and when (the store's address and
    hours). Raises InvalidTransition."""
    order = _move(fulfillment, FulfillmentStatus.READY_FOR_PICKUP, actor=actor)
    emit(EventType.ORDER_READY_FOR_PICKUP, {**order_event_data(order), "shipment": shipment_data(fulfillment),
                                            "store": _store_data(fulfillment.location)})
    return fulfillment


def mark_picked_up(fulfillment: Fulfillment, *, actor: Actor) -> Fulfillment:
    """ready_for_pickup → picked_up; the order becomes delivered (ORDER_DELIVERED).
    Raises InvalidTransition."""
    order = _move(fulfillment, FulfillmentStatus.PICKED_UP, actor=actor)
    if order.status == OrderStatus.DELIVERED:
        emit(EventType.ORDER_DELIVERED, order_event_data(order))
    return fulfillment


def _store_data(location: StockLocation) -> dict:
    store = location.store
    if store is None:
        return {"name": location.name, "address": location.address, "opening_hours": None}
    address = ", ".join(part for part in (store.address, store.city, store.state, store.postal_code,
                                          store.country) if part)
    return {"id": store.id, "name": store.name, "address": address, "phone": store.phone,
            "opening_hours": store.opening_hours}


def cancel_fulfillment(fulfillment: Fulfillment, *, actor: Actor, note: str = "") -> Fulfillment:
    """pending/processing/ready_for_pickup → cancelled, as its order is cancelled
    (``ecom.commerce.cancellation``). Raises InvalidTransition once it was packed, or when
    it is cancelled already."""
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
    for fulfillment in sorted(fulfillments, key=lambda f: (f.order_id, f.id)):
        try:
            result.done.append(step(fulfillment, **kwargs))
        except EcomError as exc:
            result.failed[fulfillment.id] = str(exc)
    return result
