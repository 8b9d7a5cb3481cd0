"""Stock: two-phase reservation, the movement ledger, low-stock alerts.

Concurrency: every function that changes ``inventory`` locks the rows it
touches, always in ascending variant id order, so two orders sharing variants
can never deadlock: with SELECT ... FOR UPDATE, or (``reserve_stock``) with
the conditional UPDATE that takes the units. Callers that also lock the
order lock it first (see ``ecom.commerce.orders.lock_order``). The check
constraints on ``inventory`` are the last line of defence against oversell.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime, timedelta

from sqlalchemy import select, update

from ecom.actor import SYSTEM, Actor
from ecom.audit.services import record_change
from ecom.db import as_utc, utcnow
from ecom.errors import Conflict, OutOfStock, ValidationFailed
from ecom.extensions import db
from ecom.inventory.models import (
    Inventory,
    MovementReason,
    ReservationStatus,
    StockMovement,
    StockReservation,
)
from ecom.notifications.models import EventType
from ecom.notifications.services import emit


def ensure_inventory(variant) -> Inventory:
    """The variant's inventory row, created empty if it has none."""
    inventory = db.session.scalar(select(Inventory).where(Inventory.variant_id == variant.id))
    if inventory is None:
        inventory = Inventory(variant_id=variant.id, quantity=0, reserved=0)
        db.session.add(inventory)
        db.session.flush()
    return inventory


def _lock_inventories(variant_ids) -> dict[int, Inventory]:
    """Lock the inventory rows of ``variant_ids`` in ascending id order."""
    ids = sorted(set(variant_ids))
    if not ids:
        return {}
    rows = db.session.scalars(
        select(Inventory)
        .where(Inventory.variant_id.in_(ids))
        .order_by(Inventory.variant_id)
        .with_for_update()
        .execution_options(populate_existing=True)
    ).all()
    return {row.variant_id: row for row in rows}


def _lines_of(order) -> dict[int, int]:
    """Units per variant for the order's lines (a variant may appear on several lines)."""
    needed: dict[int, int] = defaultdict(int)
    for item in order.items:
        if item.variant_id is None:
            raise ValidationFailed(f"Order line {item.sku} no longer has a variant.")
        needed[item.variant_id] += item.quantity
    return dict(needed)


def _reservations(order, status: ReservationStatus | None = None) -> list[StockReservation]:
    query = select(StockReservation).where(StockReservation.order_id == order.id)
    if status is not None:
        query = query.where(StockReservation.status == status)
    return list(
        db.session.scalars(
            query.order_by(StockReservation.variant_id).execution_options(populate_existing=True)
        )
    )


def _record(variant_id: int, delta: int, reason: MovementReason, *, actor: Actor,
            note: str = "", order_id: int | None = None) -> StockMovement:
    movement = StockMovement(
        variant_id=variant_id, delta=delta, reason=reason, note=note,
        user_id=actor.user_id, order_id=order_id,
    )
    db.session.add(movement)
    return movement


def _check_low_stock(inventory: Inventory) -> None:
    """Emit LOW_STOCK once per crossing of the threshold, and re-arm when stock recovers."""
    if inventory.is_low and not inventory.low_stock_alerted:
        inventory.low_stock_alerted = True
        variant = inventory.variant
        emit(EventType.LOW_STOCK, {
            "variant_id": inventory.variant_id,
            "sku": variant.sku if variant else None,
            "product_name": variant.product.name if variant else None,
            "available": inventory.available,
            "quantity": inventory.quantity,
            "threshold": inventory.low_stock_threshold,
        })
    elif not inventory.is_low and inventory.low_stock_alerted:
        inventory.low_stock_alerted = False


def _sku_of(variant_id: int, order) -> str:
    return next((i.sku for i in order.items if i.variant_id == variant_id), str(variant_id))


def reserve_stock(order, *, ttl_seconds: int) -> list[StockReservation]:
    """Hold stock for every line of ``order``: all lines or none.

    Each variant's units are taken by one conditional UPDATE (only while enough
    are available), in ascending variant id order like every lock here, so the
    check and the change are one atomic step and no unit is held twice.
    Raises OutOfStock (naming every short SKU and its available units) and
    changes nothing when any line cannot be held.
    """
    needed = _lines_of(order)
    taken: list[tuple[Inventory, int]] = []
    for variant_id, qty in sorted(needed.items()):
        inventory = _shift_reserved(variant_id, qty)
        if inventory is None:
            for held, units in taken:
                _shift_reserved(held.variant_id, -units)
            raise OutOfStock(_shortages(order, needed))
        taken.append((inventory, qty))
    expires_at = utcnow() + timedelta(seconds=ttl_seconds)
    reservations = [
        StockReservation(order_id=order.id, variant_id=inventory.variant_id, quantity=qty,
                         status=ReservationStatus.ACTIVE, expires_at=expires_at)
        for inventory, qty in taken
    ]
    db.session.add_all(reservations)
    for inventory, _ in taken:
        _check_low_stock(inventory)
    db.session.flush()
    return reservations


def _shift_reserved(variant_id: int, units: int) -> Inventory | None:
    """Add ``units`` to the variant's reserved units while that many are available
    (a negative ``units`` gives back). The updated, locked row; None when it would not fit."""
    return db.session.scalars(
        update(Inventory)
        .where(Inventory.variant_id == variant_id, Inventory.available >= units)
        .values(reserved=Inventory.reserved + units)
        .returning(Inventory)
        # The returned row refreshes the session's copy; nothing else needs synchronising.
        .execution_options(populate_existing=True, synchronize_session=False)
    ).one_or_none()


def _shortages(order, needed: dict[int, int]) -> dict[str, int]:
    """SKU -> available units of each line that cannot be held (0 without an inventory row)."""
    available = dict(db.session.execute(
        select(Inventory.variant_id, Inventory.available).where(Inventory.variant_id.in_(needed))
    ).all())
    return {_sku_of(variant_id, order): available.get(variant_id, 0)
            for variant_id, qty in needed.items() if available.get(variant_id, 0) < qty}


def commit_stock(order) -> bool:
    """Payment succeeded: the held units leave ``quantity`` and ``reserved``.

    Idempotent: returns False when the order's stock was already committed.
    If the reservation had expired or been released (a late payment), the
    units are taken afresh when available; raises OutOfStock otherwise, and
    then changes nothing.
    """
    all_rows = _reservations(order)
    if any(r.status == ReservationStatus.COMMITTED for r in all_rows):
        return False
    active = [r for r in all_rows if r.status == ReservationStatus.ACTIVE]
    if not active:
        reserve_stock(order, ttl_seconds=0)
        active = _reservations(order, ReservationStatus.ACTIVE)
    inventories = _lock_inventories(r.variant_id for r in active)
    for reservation in active:
        inventory = inventories[reservation.variant_id]
        inventory.quantity -= reservation.quantity
        inventory.reserved -= reservation.quantity
        reservation.status = ReservationStatus.COMMITTED
        _record(reservation.variant_id, -reservation.quantity, MovementReason.SALE,
                actor=SYSTEM, order_id=order.id, note=f"order {order.order_number}")
        _check_low_stock(inventory)
    db.session.flush()
    return True


def release_stock(order, *, expired: bool = False) -> int:
    """Give back the units an unpaid order holds. Idempotent; never touches committed stock.

    Returns the number of units released.
    """
    active = _reservations(order, ReservationStatus.ACTIVE)
    inventories = _lock_inventories(r.variant_id for r in active)
    released = 0
    for reservation in active:
        inventory = inventories[reservation.variant_id]
        inventory.reserved -= reservation.quantity
        reservation.status = ReservationStatus.EXPIRED if expired else ReservationStatus.RELEASED
        released += reservation.quantity
        _check_low_stock(inventory)
    db.session.flush()
    return released


def return_stock(order, *, actor: Actor) -> int:
    """Put a paid, unshipped order's committed units back on hand (cancellation).

    Each committed reservation is returned once: it moves to ``released``.
    Returns the number of units returned.
    """
    committed = _reservations(order, ReservationStatus.COMMITTED)
    inventories = _lock_inventories(r.variant_id for r in committed)
    returned = 0
    for reservation in committed:
        inventory = inventories[reservation.variant_id]
        inventory.quantity += reservation.quantity
        reservation.status = ReservationStatus.RELEASED
        _record(reservation.variant_id, reservation.quantity, MovementReason.RETURN,
                actor=actor, order_id=order.id, note=f"order {order.order_number} cancelled")
        returned += reservation.quantity
        _check_low_stock(inventory)
    db.session.flush()
    return returned


# Reasons a person (or an import) may give; `sale` and `return` movements are written by
# the order flow only. In the order the back office offers them.
MANUAL_REASONS = (MovementReason.RECEIVED, MovementReason.ADJUSTMENT, MovementReason.DAMAGE,
                  MovementReason.CORRECTION)


def adjust_stock(variant, delta: int, reason: MovementReason | str, *, actor: Actor,
                 note: str = "") -> StockMovement:
    """Change the on-hand quantity by ``delta``, write the ledger row and audit it for ``actor``.

    Raises ValidationFailed for a zero delta, a reason reserved for the system
    (sales, returns) or a ``received`` movement that is not positive, and
    Conflict when the result would be negative or below the units currently
    reserved for unpaid orders. Nothing changes when it raises.
    """
    try:
        reason = MovementReason(reason)
    except ValueError:
        raise ValidationFailed(f"Unknown reason '{reason}'.", {"reason": ["Unknown reason."]}) from None
    if reason not in MANUAL_REASONS:
        raise ValidationFailed(f"'{reason}' movements are recorded by the system only.",
                               {"reason": ["Not allowed for manual changes."]})
    if not isinstance(delta, int) or isinstance(delta, bool) or delta == 0:
        raise ValidationFailed("The change must be a non-zero whole number.",
                               {"delta": ["Must be a non-zero whole number."]})
    if reason == MovementReason.RECEIVED and delta < 0:
        raise ValidationFailed("Received stock must be a positive number of units.",
                               {"delta": ["Must be positive for received stock."]})
    ensure_inventory(variant)
    inventory = _lock_inventories([variant.id])[variant.id]
    before = inventory.quantity
    if before + delta < 0:
        raise Conflict(f"Cannot remove {-delta} units of {variant.sku}: only {before} on hand.")
    if -delta > inventory.available:
        raise Conflict(f"Cannot bring {variant.sku} to {before + delta} units: {inventory.reserved} "
                       f"are reserved for unpaid orders.")
    inventory.quantity = before + delta
    movement = _record(variant.id, delta, reason, actor=actor, note=note)
    _check_low_stock(inventory)
    db.session.flush()
    record_change(actor, "adjust_stock", "inventory", inventory.id,
                  {"quantity": before},
                  {"quantity": inventory.quantity, "sku": variant.sku, "delta": delta,
                   "reason": str(reason), "note": note or None})
    return movement


def receive_stock(variant, quantity: int, *, actor: Actor, note: str = "") -> StockMovement:
    """Book a delivery of ``quantity`` units (a ``received`` adjustment, audited).

    Raises ValidationFailed unless quantity is a positive whole number.
    """
    return adjust_stock(variant, quantity, MovementReason.RECEIVED, actor=actor, note=note)


def overdue_order_ids(now: datetime | None = None, limit: int = 500) -> list[int]:
    """Ids of orders holding an active reservation past its expiry, oldest first."""
    now = as_utc(now) or utcnow()
    rows = db.session.execute(
        select(StockReservation.order_id)
        .where(StockReservation.status == ReservationStatus.ACTIVE,
               StockReservation.expires_at <= now)
        .group_by(StockReservation.order_id)
        .order_by(StockReservation.order_id)
        .limit(limit)
    )
    return [row[0] for row in rows]


def ledger_total(variant_id: int) -> int:
    """The sum of every stock movement of a variant: equals its on-hand quantity."""
    return int(db.session.scalar(
        select(db.func.coalesce(db.func.sum(StockMovement.delta), 0))
        .where(StockMovement.variant_id == variant_id)
    ))
