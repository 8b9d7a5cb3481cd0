from __future__ import annotations

from datetime import datetime

from sqlalchemy import Boolean, CheckConstraint, ForeignKey, Index, Integer, String, UniqueConstraint, text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from ecom.db import Timestamp, TimestampMixin, one_of
from ecom.extensions import db
from ecom.fulfillment.status import FulfillmentStatus


class Fulfillment(TimestampMixin, db.Model):
    """One shipment (or pickup) of an order from one stock location: an order whose units
    come from two warehouses has two (a split shipment)."""

    __tablename__ = "fulfillments"
    __table_args__ = (
        one_of("status", FulfillmentStatus),
        CheckConstraint(
            "status NOT IN ('shipped', 'delivered') "
            "OR (carrier IS NOT NULL AND tracking_number IS NOT NULL)",
            name="shipped_has_tracking",
        ),
        # A pickup never ships; a shipment is never ready for pickup.
        CheckConstraint(
            "(is_pickup AND status NOT IN ('packed', 'shipped', 'delivered')) "
            "OR (NOT is_pickup AND status NOT IN ('ready_for_pickup', 'picked_up'))",
            name="pickup_steps_match_kind",
        ),
        UniqueConstraint("order_id", "location_id"),
        # The queue is paged one status at a time, oldest first (admin.base.ranked_page), also
        # within one location; each ends in the id (migration 0013).
        Index("ix_fulfillments_status_created_id", "status", "created_at", "id"),
        Index("ix_fulfillments_location_status_created_id", "location_id", "status", "created_at", "id"),
        Index("ix_fulfillments_created_id", "created_at", "id"),
        # The queue's search finds a tracking number typed whole here first (migration 0014).
        Index("ix_fulfillments_tracking_number", "tracking_number"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    order_id: Mapped[int] = mapped_column(ForeignKey("orders.id", ondelete="CASCADE"), index=True)
    location_id: Mapped[int] = mapped_column(ForeignKey("stock_locations.id"))
    is_pickup: Mapped[bool] = mapped_column(Boolean, default=False, server_default=text("false"))
    order_number: Mapped[str] = mapped_column(String(32), index=True)
    status: Mapped[str] = mapped_column(String(20), default=FulfillmentStatus.PENDING)
    carrier: Mapped[str | None] = mapped_column(String(100))
    tracking_number: Mapped[str | None] = mapped_column(String(100))
    processing_at: Mapped[datetime | None] = Timestamp(nullable=True)
    packed_at: Mapped[datetime | None] = Timestamp(nullable=True)
    shipped_at: Mapped[datetime | None] = Timestamp(nullable=True)
    delivered_at: Mapped[datetime | None] = Timestamp(nullable=True)
    ready_for_pickup_at: Mapped[datetime | None] = Timestamp(nullable=True)
    picked_up_at: Mapped[datetime | None] = Timestamp(nullable=True)

    order = relationship("Order", back_populates="fulfillments")
    location = relationship("StockLocation")
    lines: Mapped[list[FulfillmentLine]] = relationship(
        back_populates="fulfillment", cascade="all, delete-orphan", order_by="FulfillmentLine.id"
    )


class FulfillmentLine(db.Model):
    """Units of one order line that one fulfillment sends (or hands over)."""

    __tablename__ = "fulfillment_lines"
    __table_args__ = (
        CheckConstraint("quantity > 0", name="quantity_positive"),
        UniqueConstraint("fulfillment_id", "order_item_id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    fulfillment_id: Mapped[int] = mapped_column(ForeignKey("fulfillments.id", ondelete="CASCADE"))
    order_item_id: Mapped[int] = mapped_column(ForeignKey("order_items.id", ondelete="CASCADE"), index=True)
    quantity: Mapped[int] = mapped_column(Integer)

    fulfillment: Mapped[Fulfillment] = relationship(back_populates="lines")
    order_item = relationship("OrderItem")
