from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import Boolean, CheckConstraint, ColumnElement, ForeignKey, Index, Integer, String, Text, text
from sqlalchemy.ext.hybrid import hybrid_property
from sqlalchemy.orm import Mapped, mapped_column, relationship

from ecom.db import Timestamp, TimestampMixin, one_of, utcnow
from ecom.extensions import db


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


class Inventory(db.Model):
    __tablename__ = "inventory"
    __table_args__ = (
        CheckConstraint("quantity >= 0", name="quantity_not_negative"),
        CheckConstraint("reserved >= 0", name="reserved_not_negative"),
        CheckConstraint("reserved <= quantity", name="reserved_within_quantity"),
        CheckConstraint("low_stock_threshold >= 0", name="threshold_not_negative"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    variant_id: Mapped[int] = mapped_column(
        ForeignKey("variants.id", ondelete="CASCADE"), unique=True
    )
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

    variant = relationship("Variant", back_populates="inventory")

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
    def is_low(self) -> bool:
        """At or below the low-stock threshold (the LOW_STOCK alert and the back office's lists)."""
        return self.available <= self.low_stock_threshold

    @is_low.inplace.expression
    @classmethod
    def _is_low_sql(cls) -> ColumnElement[bool]:
        return cls.available <= cls.low_stock_threshold


def available_units(variant) -> int:
    """Units of ``variant`` that can be sold now; 0 when it has no inventory row."""
    inventory = variant.inventory
    return inventory.available if inventory is not None else 0


class StockReservation(TimestampMixin, db.Model):
    __tablename__ = "stock_reservations"
    __table_args__ = (
        one_of("status", ReservationStatus),
        CheckConstraint("quantity > 0", name="quantity_positive"),
        Index("ix_stock_reservations_status_expires", "status", "expires_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    order_id: Mapped[int] = mapped_column(ForeignKey("orders.id", ondelete="CASCADE"), index=True)
    variant_id: Mapped[int] = mapped_column(ForeignKey("variants.id"), index=True)
    quantity: Mapped[int] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(20), default=ReservationStatus.ACTIVE)
    expires_at: Mapped[datetime] = Timestamp()

    order = relationship("Order", back_populates="reservations")
    variant = relationship("Variant")


class StockMovement(db.Model):
    __tablename__ = "stock_movements"
    __table_args__ = (
        one_of("reason", MovementReason),
        CheckConstraint("delta <> 0", name="delta_not_zero"),
        Index("ix_stock_movements_variant_created", "variant_id", "created_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    variant_id: Mapped[int] = mapped_column(ForeignKey("variants.id", ondelete="CASCADE"))
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
    user = relationship("User")
