"""Stock: allocation over locations, two-phase reservation, the movement ledger,
low-stock alerts.

Stock lives in ``inventory`` rows, one per (variant, location). Concurrency:
every function that changes inventory locks the rows it touches with one
SELECT ... FOR UPDATE OF inventory, always in ascending (variant id, location
id) order, so two operations sharing rows can never deadlock. Callers that also
lock the order lock it first (see ``ecom.commerce.orders.lock_order``). The
check constraints on ``inventory`` (reserved <= quantity, both >= 0, per row)
are the last line of defence against oversell.

Allocation policy (``reserve_stock``): each variant's units are taken from the
locations that may serve the order - for shipping, every active location that
ships orders; for a pickup, only the store's own location - in ascending
``priority``, then location id, filling the first before touching the next and
splitting a line over several locations only when one cannot cover it. All
lines or none.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from datetime import datetime, timedelta
from functools import cache

from sqlalchemy import bindparam, case, func, insert, select, text, tuple_, update
from sqlalchemy.engine import Row
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm.attributes import set_committed_value
from sqlalchemy.orm.util import identity_key

from ecom.actor import SYSTEM, Actor
from ecom.audit.services import record_change
from ecom.cache_versions import WRITES
from ecom.db import as_utc, utcnow
from ecom.errors import Conflict, NotFound, OutOfStock, ValidationFailed
from ecom.extensions import db
from ecom.inventory.models import (
    Inventory,
    LocationKind,
    MovementReason,
    ReservationStatus,
    StockLocation,
    StockMovement,
    StockReservation,
)
from ecom.notifications.models import EventType
from ecom.notifications.services import emit

DEFAULT_LOCATION_CODE = "MAIN"  # the warehouse migration 0008 moved the single stock pool into


# --- locations ---------------------------------------------------------------


def default_location() -> StockLocation:
    """Where stock goes when nobody names a location (the CSV import, a bare adjustment):
    the first active shipping location by priority. A database with no location at all
    (a fresh test schema emptied) gets the ``MAIN`` warehouse migration 0008 creates."""
    location = db.session.scalar(
        select(StockLocation)
        .order_by(~StockLocation.ships, StockLocation.priority, StockLocation.id).limit(1))
    if location is None:
        location = StockLocation(code=DEFAULT_LOCATION_CODE, name="Main warehouse",
                                 kind=LocationKind.WAREHOUSE, ships_orders=True, accepts_pickup=False,
                                 priority=10, is_active=True)
        db.session.add(location)
        db.session.flush()
    return location


def get_location(location_id: int) -> StockLocation:
    """Raises NotFound."""
    location = db.session.get(StockLocation, location_id)
    if location is None:
        raise NotFound("Stock location not found.")
    return location


def pickup_location(store_id: int) -> StockLocation:
    """The store's own location, when it serves click & collect.
    Raises ValidationFailed when the store offers no pickup."""
    location = db.session.scalar(select(StockLocation).where(StockLocation.store_id == store_id))
    if location is None or not location.serves_pickup:
        raise ValidationFailed(f"Store {store_id} offers no click & collect.",
                               {"pickup_store_id": ["This store offers no click & collect."]})
    return location


def ensure_inventory(variant, location: StockLocation | None = None) -> Inventory:
    """The variant's inventory row at ``location`` (default: ``default_location()``), created
    empty if it has none."""
    location = location or default_location()
    inventory = db.session.scalar(select(Inventory).where(
        Inventory.variant_id == variant.id, Inventory.location_id == location.id))
    if inventory is None:
        inventory = Inventory(variant_id=variant.id, location_id=location.id, quantity=0, reserved=0)
        db.session.add(inventory)
        db.session.flush()
    return inventory


def units_at(location_id: int, variant_ids: Iterable[int]) -> dict[int, int]:
    """Units available now at one location, per variant (absent: none)."""
    rows = db.session.execute(
        select(Inventory.variant_id, func.sum(Inventory.available))
        .where(Inventory.location_id == location_id, Inventory.variant_id.in_(set(variant_ids)))
        .group_by(Inventory.variant_id))
    return {variant_id: int(units) for variant_id, units in rows}


# --- locking -----------------------------------------------------------------


def _locked(statement) -> list[Inventory]:
    """Run ``statement`` (a select of Inventory) locking its rows in the one fixed order."""
    return list(db.session.scalars(
        statement
        .order_by(Inventory.variant_id, Inventory.location_id)
        .with_for_update(of=Inventory)
        .execution_options(populate_existing=True)
    ))


def _lock_pairs(pairs: Iterable[tuple[int, int]]) -> dict[tuple[int, int], Inventory]:
    """Lock the inventory rows of these (variant id, location id) pairs."""
    pairs = sorted(set(pairs))
    if not pairs:
        return {}
    rows = _locked(select(Inventory).where(tuple_(Inventory.variant_id, Inventory.location_id).in_(pairs)))
    return {(row.variant_id, row.location_id): row for row in rows}


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
    return list(db.session.scalars(
        query.order_by(StockReservation.variant_id, StockReservation.location_id)
        .execution_options(populate_existing=True)
    ))


def _record(variant_id: int, location_id: int, delta: int, reason: MovementReason, *, actor: Actor,
            note: str = "", order_id: int | None = None) -> StockMovement:
    movement = StockMovement(
        variant_id=variant_id, location_id=location_id, delta=delta, reason=reason, note=note,
        user_id=actor.user_id, order_id=order_id,
    )
    db.session.add(movement)
    return movement


def _check_low_stock(inventory: Inventory) -> None:
    """Emit LOW_STOCK once per crossing of the threshold at a location, and re-arm when
    stock recovers."""
    if inventory.is_low and not inventory.low_stock_alerted:
        inventory.low_stock_alerted = True
        variant = inventory.variant
        location = inventory.location
        emit(EventType.LOW_STOCK, {
            "variant_id": inventory.variant_id,
            "sku": variant.sku if variant else None,
            "product_name": variant.product.name if variant else None,
            "location_id": inventory.location_id,
            "location": location.name if location else None,
            "available": inventory.available,
            "quantity": inventory.quantity,
            "threshold": inventory.low_stock_threshold,
        })
    elif not inventory.is_low and inventory.low_stock_alerted:
        inventory.low_stock_alerted = False


def _sku_of(variant_id: int, order) -> str:
    return next((i.sku for i in order.items if i.variant_id == variant_id), str(variant_id))


# --- reservation -------------------------------------------------------------


def reserve_stock(order, *, ttl_seconds: int, pickup_store_id: int | None = None) -> None:
    """Hold stock for every line of ``order``: all lines or none.

    Allocation (module docstring): for shipping over the active locations that
    ship orders, for a pickup (``pickup_store_id``, else the order's own
    ``pickup_store_id`` when it has one) only at that store's location, in
    priority order, splitting a line where one location cannot cover it. One
    statement locks every candidate row of the order's variants (those with a
    unit available) in the fixed order; the plan is made on the locked rows and
    written back in one batch, so no unit is held twice. Rows, not ORM objects:
    every checkout runs this.
    Raises OutOfStock (naming every short SKU and its available units) and
    ValidationFailed (a store without click & collect), having changed nothing
    (the rows it locked stay locked until the caller rolls back).
    """
    needed = _lines_of(order)
    store_id = pickup_store_id if pickup_store_id is not None else getattr(order, "pickup_store_id", None)
    pickup = pickup_location(store_id) if store_id is not None else None
    params = {"variant_ids": list(needed), "location_id": pickup.id if pickup is not None else None}
    rows = db.session.execute(_candidates_statement(pickup is not None), params).all()
    candidates: dict[int, list] = defaultdict(list)
    for row in rows:
        candidates[row.variant_id].append(row)
    plan: list[tuple[Row, int]] = []
    short: dict[str, int] = {}
    for variant_id, wanted in sorted(needed.items()):
        left = wanted
        for row in sorted(candidates[variant_id], key=lambda r: (r.priority, r.location_id)):
            take = min(left, row.available)
            plan.append((row, take))
            left -= take
            if left == 0:
                break
        if left:
            short[_sku_of(variant_id, order)] = wanted - left
    if short:
        raise OutOfStock(short, where=f"at {pickup.name}" if pickup is not None else "")
    _hold(order.id, plan, expires_at=utcnow() + timedelta(seconds=ttl_seconds))


@cache
def _candidates_statement(pickup: bool):
    """The inventory rows that may serve an order's variants (``:variant_ids``), with a unit
    available, locked in the fixed order: at the pickup location ``:location_id``, or at
    every location that ships."""
    served_here = (Inventory.location_id == bindparam("location_id")) if pickup else StockLocation.ships
    return (
        select(Inventory.id, Inventory.variant_id, Inventory.location_id, Inventory.quantity,
               Inventory.reserved, Inventory.available.label("available"), Inventory.low_stock_threshold,
               Inventory.low_stock_alerted, StockLocation.priority)
        .join(StockLocation, StockLocation.id == Inventory.location_id)
        .where(Inventory.variant_id.in_(bindparam("variant_ids", expanding=True)), served_here,
               Inventory.has_available)
        .order_by(Inventory.variant_id, Inventory.location_id)
        .with_for_update(of=Inventory)
    )


@cache
def _hold_statements():
    inventory, reservations = Inventory.__table__, StockReservation.__table__
    take_units = (update(inventory).where(inventory.c.id == bindparam("row_id"))
                  .values(reserved=inventory.c.reserved + bindparam("take"), updated_at=bindparam("now")))
    return take_units, insert(reservations)


# PostgreSQL: the rows' units taken and the reservations written by one statement.
_HOLD_IN_ONE_STATEMENT = text("""
    WITH taken AS (
        UPDATE inventory SET reserved = inventory.reserved + plan.take, updated_at = :now
        FROM unnest(CAST(:row_ids AS integer[]), CAST(:takes AS integer[])) AS plan (row_id, take)
        WHERE inventory.id = plan.row_id
        RETURNING inventory.variant_id, inventory.location_id, plan.take)
    INSERT INTO stock_reservations (order_id, variant_id, location_id, quantity, status, expires_at,
                                    created_at, updated_at)
    SELECT :order_id, variant_id, location_id, take, :status, :expires_at, :now, :now FROM taken
""").execution_options(**{WRITES: ("inventory", "stock_reservations")})


def _hold(order_id: int, plan: list[tuple[Row, int]], *, expires_at: datetime) -> None:
    """Write a reservation plan made on locked rows: on PostgreSQL one statement updates the
    rows and inserts the reservations, elsewhere one UPDATE of the rows (executemany) and one
    INSERT of the reservations. Inventory rows this session has loaded are told their
    new ``reserved``; a row crossing its low-stock threshold either way goes through
    ``_check_low_stock`` (rare: only then is it loaded)."""
    now = utcnow()
    if db.session.get_bind().dialect.name == "postgresql":
        db.session.execute(_HOLD_IN_ONE_STATEMENT, {
            "row_ids": [row.id for row, _ in plan], "takes": [take for _, take in plan],
            "order_id": order_id, "status": ReservationStatus.ACTIVE.value, "expires_at": expires_at,
            "now": now})
    else:
        take_units, add_reservations = _hold_statements()
        db.session.execute(take_units, [{"row_id": row.id, "take": take, "now": now} for row, take in plan])
        db.session.execute(add_reservations, [
            {"order_id": order_id, "variant_id": row.variant_id, "location_id": row.location_id,
             "quantity": take, "status": ReservationStatus.ACTIVE, "expires_at": expires_at,
             "created_at": now, "updated_at": now}
            for row, take in plan])
    for row, take in plan:
        loaded = db.session.identity_map.get(identity_key(Inventory, row.id))
        if loaded is not None:
            set_committed_value(loaded, "reserved", row.reserved + take)
            set_committed_value(loaded, "quantity", row.quantity)
        if Inventory.low_at(row.available - take, row.low_stock_threshold) != row.low_stock_alerted:
            _check_low_stock(loaded if loaded is not None else db.session.get(Inventory, row.id))
    db.session.flush()


def commit_stock(order) -> bool:
    """Payment succeeded: the held units leave ``quantity`` and ``reserved`` at their locations.

    Idempotent: returns False when the order's stock was already committed.
    If the reservation had expired or been released (a late payment), the
    units are allocated afresh when available; raises OutOfStock otherwise, and
    then changes nothing.
    """
    all_rows = _reservations(order)
    if any(r.status == ReservationStatus.COMMITTED for r in all_rows):
        return False
    active = [r for r in all_rows if r.status == ReservationStatus.ACTIVE]
    if not active:
        reserve_stock(order, ttl_seconds=0)
        active = _reservations(order, ReservationStatus.ACTIVE)
    inventories = _lock_pairs((r.variant_id, r.location_id) for r in active)
    for reservation in active:
        inventory = inventories[(reservation.variant_id, reservation.location_id)]
        inventory.quantity -= reservation.quantity
        inventory.reserved -= reservation.quantity
        reservation.status = ReservationStatus.COMMITTED
        _record(reservation.variant_id, reservation.location_id, -reservation.quantity, MovementReason.SALE,
                actor=SYSTEM, order_id=order.id, note=f"order {order.order_number}")
        _check_low_stock(inventory)
    db.session.flush()
    return True


def release_stock(order, *, expired: bool = False) -> int:
    """Give back the units an unpaid order holds. Idempotent; never touches committed stock.

    Returns the number of units released.
    """
    active = _reservations(order, ReservationStatus.ACTIVE)
    inventories = _lock_pairs((r.variant_id, r.location_id) for r in active)
    released = 0
    for reservation in active:
        inventory = inventories[(reservation.variant_id, reservation.location_id)]
        inventory.reserved -= reservation.quantity
        reservation.status = ReservationStatus.EXPIRED if expired else ReservationStatus.RELEASED
        released += reservation.quantity
        _check_low_stock(inventory)
    db.session.flush()
    return released


def return_stock(order, *, actor: Actor) -> int:
    """Put a paid, unshipped order's committed units back on hand where they were sold from
    (cancellation). Each committed reservation is returned once: it moves to ``released``.
    Returns the number of units returned.
    """
    committed = _reservations(order, ReservationStatus.COMMITTED)
    inventories = _lock_pairs((r.variant_id, r.location_id) for r in committed)
    returned = 0
    for reservation in committed:
        inventory = inventories[(reservation.variant_id, reservation.location_id)]
        inventory.quantity += reservation.quantity
        reservation.status = ReservationStatus.RELEASED
        _record(reservation.variant_id, reservation.location_id, reservation.quantity, MovementReason.RETURN,
                actor=actor, order_id=order.id, note=f"order {order.order_number} cancelled")
        returned += reservation.quantity
        _check_low_stock(inventory)
    db.session.flush()
    return returned


def committed_units(order) -> dict[tuple[int, int], int]:
    """(variant id, location id) -> units the paid order took there: what each fulfillment sends."""
    units: dict[tuple[int, int], int] = defaultdict(int)
    for reservation in _reservations(order, ReservationStatus.COMMITTED):
        units[(reservation.variant_id, reservation.location_id)] += reservation.quantity
    return dict(units)


# --- manual changes and the stockroom's moves --------------------------------

# Reasons a person (or an import) may give; `sale`, `return` and transfer movements are
# written by their flows only. In the order the back office offers them.
MANUAL_REASONS = (MovementReason.RECEIVED, MovementReason.ADJUSTMENT, MovementReason.DAMAGE,
                  MovementReason.CORRECTION)


def _whole_number(value, field: str = "quantity") -> int:
    if not isinstance(value, int) or isinstance(value, bool):
        raise ValidationFailed("Quantities are whole numbers.", {field: ["Must be a whole number."]})
    return value


def adjust_stock(variant, delta: int, reason: MovementReason | str, *, actor: Actor,
                 note: str = "", location: StockLocation | None = None) -> StockMovement:
    """Change the on-hand quantity at ``location`` (default: ``default_location()``) by
    ``delta``, write the ledger row and audit it for ``actor``.

    Raises ValidationFailed for a zero delta, a reason reserved for the system
    (sales, returns, transfers), a ``received`` movement that is not positive
    or into an inactive location, and Conflict when the result would be
    negative or below the units currently reserved there for unpaid orders.
    Nothing changes when it raises.
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
    location = location or default_location()
    if reason == MovementReason.RECEIVED and not location.is_active:
        raise ValidationFailed(f"{location.name} is inactive: nothing can be received there.",
                               {"location": ["Inactive location."]})
    ensure_inventory(variant, location)
    inventory = _lock_pairs([(variant.id, location.id)])[(variant.id, location.id)]
    before = inventory.quantity
    if before + delta < 0:
        raise Conflict(f"Cannot remove {-delta} units of {variant.sku} at {location.name}: "
                       f"only {before} on hand.")
    if -delta > inventory.available:
        raise Conflict(f"Cannot bring {variant.sku} at {location.name} to {before + delta} units: "
                       f"{inventory.reserved} are reserved for unpaid orders.")
    inventory.quantity = before + delta
    movement = _record(variant.id, location.id, delta, reason, actor=actor, note=note)
    _check_low_stock(inventory)
    db.session.flush()
    record_change(actor, "adjust_stock", "inventory", inventory.id,
                  {"quantity": before},
                  {"quantity": inventory.quantity, "sku": variant.sku, "location": location.code,
                   "delta": delta, "reason": str(reason), "note": note or None})
    return movement


def receive_stock(variant, quantity: int, *, actor: Actor, note: str = "",
                  location: StockLocation | None = None) -> StockMovement:
    """Book a delivery of ``quantity`` units (a ``received`` adjustment, audited).

    Raises ValidationFailed unless quantity is a positive whole number and the
    location is active.
    """
    return adjust_stock(variant, quantity, MovementReason.RECEIVED, actor=actor, note=note, location=location)


def take_out(location: StockLocation, units: dict[int, int], reason: MovementReason, *, actor: Actor,
             note: str, skus: dict[int, str]) -> list[StockMovement]:
    """Remove ``units`` (variant id -> units) from ``location``'s available stock, one
    negative ``reason`` movement each, all or nothing. Raises Conflict naming every SKU
    with too few available units there (reserved units stay with their orders)."""
    rows = _lock_pairs((variant_id, location.id) for variant_id in units)
    short = {skus[v]: (rows[(v, location.id)].available if (v, location.id) in rows else 0)
             for v, n in sorted(units.items())
             if (v, location.id) not in rows or rows[(v, location.id)].available < n}
    if short:
        raise OutOfStock(short, where=f"at {location.name}")
    movements = []
    for variant_id, n in sorted(units.items()):
        row = rows[(variant_id, location.id)]
        row.quantity -= n
        movements.append(_record(variant_id, location.id, -n, reason, actor=actor, note=note))
        _check_low_stock(row)
    db.session.flush()
    return movements


def put_in(location: StockLocation, units: dict[int, int], reason: MovementReason, *, actor: Actor,
           note: str) -> list[StockMovement]:
    """Add ``units`` (variant id -> units, each positive) to ``location``, one positive
    ``reason`` movement each. Raises ValidationFailed for an inactive location."""
    if not location.is_active:
        raise ValidationFailed(f"{location.name} is inactive: nothing can be received there.",
                               {"location": ["Inactive location."]})
    for variant_id in sorted(units):
        existing = db.session.scalar(select(Inventory.id).where(
            Inventory.variant_id == variant_id, Inventory.location_id == location.id))
        if existing is None:
            # Another transaction may be creating the same row: its insert wins, ours is undone
            # by the savepoint alone, and the lock below then waits for and takes that row.
            try:
                with db.session.begin_nested():
                    db.session.add(Inventory(variant_id=variant_id, location_id=location.id,
                                             quantity=0, reserved=0))
            except IntegrityError:
                pass
    db.session.flush()
    rows = _lock_pairs((variant_id, location.id) for variant_id in units)
    movements = []
    for variant_id, n in sorted(units.items()):
        row = rows[(variant_id, location.id)]
        row.quantity += n
        movements.append(_record(variant_id, location.id, n, reason, actor=actor, note=note))
        _check_low_stock(row)
    db.session.flush()
    return movements


# --- reading -----------------------------------------------------------------


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


def ledger_total(variant_id: int, location_id: int | None = None) -> int:
    """The sum of a variant's stock movements (at one location, or everywhere): equals its
    on-hand quantity there."""
    query = (select(db.func.coalesce(db.func.sum(StockMovement.delta), 0))
             .where(StockMovement.variant_id == variant_id))
    if location_id is not None:
        query = query.where(StockMovement.location_id == location_id)
    return int(db.session.scalar(query))


def pickup_stock(variant_ids: Iterable[int]) -> dict[int, list[dict]]:
    """variant id -> [{store_id, available}] at every store serving click & collect (0 where
    the store holds none), stores by id."""
    variant_ids = sorted(set(variant_ids))
    stores = db.session.execute(
        select(StockLocation.id, StockLocation.store_id).where(StockLocation.serves_pickup)
        .order_by(StockLocation.store_id)).all()
    if not variant_ids:
        return {}
    held = {(v, loc): n for v, loc, n in db.session.execute(
        select(Inventory.variant_id, Inventory.location_id, Inventory.available)
        .where(Inventory.variant_id.in_(variant_ids), Inventory.location_id.in_([loc for loc, _ in stores])))}
    return {v: [{"store_id": store_id, "available": max(int(held.get((v, loc), 0)), 0)}
                for loc, store_id in stores]
            for v in variant_ids}


def location_totals() -> list[dict]:
    """Per location: units on hand, reserved, available, and rows at or below their threshold
    (the dashboard's stock per location)."""
    rows = db.session.execute(
        select(StockLocation.id, StockLocation.code, StockLocation.name, StockLocation.kind,
               StockLocation.is_active,
               func.coalesce(func.sum(Inventory.quantity), 0), func.coalesce(func.sum(Inventory.reserved), 0),
               func.coalesce(func.sum(Inventory.available), 0),
               func.coalesce(func.sum(case((Inventory.is_low, 1), else_=0)), 0))
        .outerjoin(Inventory, Inventory.location_id == StockLocation.id)
        .group_by(StockLocation.id)
        .order_by(StockLocation.priority, StockLocation.id)
    ).all()
    return [{"id": r[0], "code": r[1], "name": r[2], "kind": r[3], "is_active": r[4], "on_hand": int(r[5]),
             "reserved": int(r[6]), "available": int(r[7]), "low": int(r[8])} for r in rows]


def active_locations() -> list[StockLocation]:
    """Every active location, in allocation order."""
    return list(db.session.scalars(select(StockLocation).where(StockLocation.is_active.is_(True))
                                   .order_by(StockLocation.priority, StockLocation.id)))
