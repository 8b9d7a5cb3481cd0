from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import Boolean, CheckConstraint, ForeignKey, Index, Integer, String, Text, text
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

    @property
    def available(self) -> int:
        return max(self.quantity - self.reserved, 0)

    @property
    def is_low(self) -> bool:
        return self.available <= self.low_stock_threshold


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
