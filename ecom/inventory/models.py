from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import (
    Boolean,
    CheckConstraint,
    ColumnElement,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    and_,
    func,
    select,
    text,
)
from sqlalchemy.ext.hybrid import hybrid_property
from sqlalchemy.orm import Mapped, mapped_column, relationship

from ecom.db import Timestamp, TimestampMixin, one_of, utcnow
from ecom.extensions import db


class LocationKind(StrEnum):
    WAREHOUSE = "warehouse"  # a stock room that ships orders
    STORE = "store"  # a shop's own stock: click & collect, and shipping when it says so


class StockLocation(TimestampMixin, db.Model):
    """A place that holds stock. Shipping orders are allocated over the active locations
    that ship, in ascending ``priority`` (then id); a pickup order only at its store's."""

    __tablename__ = "stock_locations"
    __table_args__ = (
        one_of("kind", LocationKind),
        CheckConstraint("kind = 'store' OR store_id IS NULL", name="store_only_for_stores"),
        CheckConstraint("NOT accepts_pickup OR store_id IS NOT NULL", name="pickup_needs_store"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(32), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    kind: Mapped[str] = mapped_column(String(20), default=LocationKind.WAREHOUSE)
    store_id: Mapped[int | None] = mapped_column(ForeignKey("stores.id"), unique=True)
    address: Mapped[str] = mapped_column(Text, default="")
    ships_orders: Mapped[bool] = mapped_column(Boolean, default=True, server_default=text("true"))
    accepts_pickup: Mapped[bool] = mapped_column(Boolean, default=False, server_default=text("false"))
    priority: Mapped[int] = mapped_column(Integer, default=100, server_default="100")
    is_active: Mapped[bool] = mapped_column(Boolean, default=True, server_default=text("true"))

    store = relationship("Store")

    # The one definition of where shipping stock is: active locations that ship orders.
    @hybrid_property
    def ships(self) -> bool:
        """Its stock counts as available for shipping orders."""
        return bool(self.is_active and self.ships_orders)

    @ships.inplace.expression
    @classmethod
    def _ships_sql(cls) -> ColumnElement[bool]:
        return and_(cls.is_active.is_(True), cls.ships_orders.is_(True))

    @hybrid_property
    def serves_pickup(self) -> bool:
        """Its stock can be collected at its store."""
        return bool(self.is_active and self.accepts_pickup and self.store_id is not None)

    @serves_pickup.inplace.expression
    @classmethod
    def _serves_pickup_sql(cls) -> ColumnElement[bool]:
        return and_(cls.is_active.is_(True), cls.accepts_pickup.is_(True), cls.store_id.isnot(None))

    def __str__(self) -> str:
        return f"{self.code} — {self.name}"


class ReservationStatus(StrEnum):
    ACTIVE = "active"  # holding units in inventory.reserved
    COMMITTED = "committed"  # payment succeeded; units left quantity and reserved
    RELEASED = "released"  # cancelled; units back to available
    EXPIRED = "expired"  # TTL passed unpaid; units back to available


class MovementReason(StrEnum):
    RECEIVED = "received"
    ADJUSTMENT = "adjustment"
    SALE = "sale"
    RETURN = "return"
    DAMAGE = "damage"
    CORRECTION = "correction"
    TRANSFER_OUT = "transfer_out"  # sent to another location (a transfer left the source)
    TRANSFER_IN = "transfer_in"  # arrived from another location


class Inventory(db.Model):
    __tablename__ = "inventory"
    __table_args__ = (
        CheckConstraint("quantity >= 0", name="quantity_not_negative"),
        CheckConstraint("reserved >= 0", name="reserved_not_negative"),
        CheckConstraint("reserved <= quantity", name="reserved_within_quantity"),
        CheckConstraint("low_stock_threshold >= 0", name="threshold_not_negative"),
        # One row per variant and location; also the index of every per-variant lookup.
        UniqueConstraint("variant_id", "location_id"),
        # Back-office lists (migration 0013): a location's rows newest first, or by quantity.
        Index("ix_inventory_location_id_id", "location_id", "id"),
        Index("ix_inventory_quantity_id", "quantity", "id"),
        # The rows with a unit available (has_available), for the storefront's in_stock filter
        # and stock flag: read index-only (migration 0015).
        Index("ix_inventory_variant_available", "variant_id", "location_id",
              postgresql_where=text("quantity > reserved"), sqlite_where=text("quantity > reserved")),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    variant_id: Mapped[int] = mapped_column(ForeignKey("variants.id", ondelete="CASCADE"))
    location_id: Mapped[int] = mapped_column(ForeignKey("stock_locations.id"))
    quantity: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    reserved: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    low_stock_threshold: Mapped[int] = mapped_column(Integer, default=5, server_default="5")
    # True while available is at or below the threshold and LOW_STOCK was emitted,
    # so the event fires once per crossing rather than on every later sale.
    low_stock_alerted: Mapped[bool] = mapped_column(
        Boolean, default=False, server_default=text("false")
    )
    updated_at: Mapped[datetime] = mapped_column(
        db.DateTime(timezone=True), default=utcnow, onupdate=utcnow
    )

    variant = relationship("Variant", back_populates="inventories")
    # Lazy (a many-to-one found in the identity map after its first load): a joined load
    # would put stock_locations into every FOR UPDATE of inventory rows.
    location: Mapped[StockLocation] = relationship()

    # The one definition of "available" and "low": Python code reads the attributes,
    # queries use the same names as SQL expressions (Inventory.available > 0, ...).
    # Nowhere else writes quantity - reserved (tests/ecom/inventory/test_stock_rules.py checks).
    @hybrid_property
    def available(self) -> int:
        """Units that can be sold now: on hand minus those held for unpaid orders."""
        # Never negative: the check constraints keep reserved <= quantity in the database,
        # and max() covers an object changed in Python but not yet flushed.
        return max(self.quantity - self.reserved, 0)

    @available.inplace.expression
    @classmethod
    def _available_sql(cls) -> ColumnElement[int]:
        # Plain subtraction, so catalog filters keep the plan they were measured with
        # (reserved_within_quantity makes a clamp unnecessary).
        return cls.quantity - cls.reserved

    @hybrid_property
    def has_available(self) -> bool:
        """Some unit can be sold now (available > 0)."""
        return self.available > 0

    @has_available.inplace.expression
    @classmethod
    def _has_available_sql(cls) -> ColumnElement[bool]:
        # available > 0 spelled as the predicate of ix_inventory_variant_available, which the
        # planner matches only as written: quantity - reserved > 0 is the same rows but would
        # not use the index.
        return cls.quantity > cls.reserved

    @hybrid_property
    def is_low(self) -> bool:
        """At or below the low-stock threshold (the LOW_STOCK alert and the back office's lists)."""
        return self.low_at(self.available, self.low_stock_threshold)

    @staticmethod
    def low_at(available: int, threshold: int) -> bool:
        """``is_low`` for a row read as values (``available`` units, its threshold)."""
        return available <= threshold

    @is_low.inplace.expression
    @classmethod
    def _is_low_sql(cls) -> ColumnElement[bool]:
        return cls.available <= cls.low_stock_threshold


def available_units(variant, *, location_id: int | None = None) -> int:
    """Units of ``variant`` that can be sold now: for shipping, the sum over the active
    locations that ship orders; with ``location_id`` (a pickup), that location's only.
    0 when it has no inventory row there."""
    if location_id is not None:
        return sum(row.available for row in variant.inventories if row.location_id == location_id)
    return sum(row.available for row in variant.inventories if row.location.ships)


def shipping_available_sql(variant_id) -> ColumnElement[int]:
    """``available_units`` as a scalar subquery for ``variant_id`` (a column or a value)."""
    return (
        select(func.coalesce(func.sum(Inventory.available), 0))
        .join(StockLocation, StockLocation.id == Inventory.location_id)
        .where(Inventory.variant_id == variant_id, StockLocation.ships)
        .scalar_subquery()
    )


def shipping_stock_clause(variant_id) -> ColumnElement[bool]:
    """Some unit of ``variant_id`` is available for shipping (any shipping location has one)."""
    return (
        select(Inventory.id)
        .join(StockLocation, StockLocation.id == Inventory.location_id)
        .where(Inventory.variant_id == variant_id, Inventory.has_available, StockLocation.ships)
        .exists()
    )


class StockReservation(TimestampMixin, db.Model):
    __tablename__ = "stock_reservations"
    __table_args__ = (
        one_of("status", ReservationStatus),
        CheckConstraint("quantity > 0", name="quantity_positive"),
        Index("ix_stock_reservations_status_expires", "status", "expires_at"),
        # Back-office lists (migration 0013): each ends in the id, so a page is read off it.
        Index("ix_stock_reservations_expires_id", "expires_at", "id"),
        Index("ix_stock_reservations_location_expires_id", "location_id", "expires_at", "id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    order_id: Mapped[int] = mapped_column(ForeignKey("orders.id", ondelete="CASCADE"), index=True)
    variant_id: Mapped[int] = mapped_column(ForeignKey("variants.id"), index=True)
    # Where the units are held: a line may be split over several locations, a row each.
    location_id: Mapped[int] = mapped_column(ForeignKey("stock_locations.id"), index=True)
    quantity: Mapped[int] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(20), default=ReservationStatus.ACTIVE)
    expires_at: Mapped[datetime] = Timestamp()

    order = relationship("Order", back_populates="reservations")
    variant = relationship("Variant")
    location = relationship("StockLocation")


class StockMovement(db.Model):
    __tablename__ = "stock_movements"
    __table_args__ = (
        one_of("reason", MovementReason),
        CheckConstraint("delta <> 0", name="delta_not_zero"),
        Index("ix_stock_movements_variant_created", "variant_id", "created_at"),
        # Back-office lists (migration 0013): each ends in the id, so a page is read off it.
        Index("ix_stock_movements_reason_created_id", "reason", "created_at", "id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    variant_id: Mapped[int] = mapped_column(ForeignKey("variants.id", ondelete="CASCADE"))
    location_id: Mapped[int] = mapped_column(ForeignKey("stock_locations.id"), index=True)
    delta: Mapped[int] = mapped_column(Integer)
    reason: Mapped[str] = mapped_column(String(20))
    note: Mapped[str] = mapped_column(Text, default="")
    user_id: Mapped[int | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL"), index=True
    )
    order_id: Mapped[int | None] = mapped_column(
        ForeignKey("orders.id", ondelete="SET NULL"), index=True
    )
    created_at: Mapped[datetime] = mapped_column(
        db.DateTime(timezone=True), default=utcnow, index=True
    )

    variant = relationship("Variant")
    location = relationship("StockLocation")
    user = relationship("User")
    order = relationship("Order")
