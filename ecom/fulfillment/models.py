from __future__ import annotations

from datetime import datetime

from sqlalchemy import CheckConstraint, ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column, relationship

from ecom.db import Timestamp, TimestampMixin, one_of
from ecom.extensions import db
from ecom.fulfillment.status import FulfillmentStatus


class Fulfillment(TimestampMixin, db.Model):
    __tablename__ = "fulfillments"
    __table_args__ = (
        one_of("status", FulfillmentStatus),
        CheckConstraint(
            "status NOT IN ('shipped', 'delivered') "
            "OR (carrier IS NOT NULL AND tracking_number IS NOT NULL)",
            name="shipped_has_tracking",
        ),
        Index("ix_fulfillments_status_created", "status", "created_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    order_id: Mapped[int] = mapped_column(ForeignKey("orders.id", ondelete="CASCADE"), unique=True)
    order_number: Mapped[str] = mapped_column(String(32), index=True)
    status: Mapped[str] = mapped_column(String(20), default=FulfillmentStatus.PENDING)
    carrier: Mapped[str | None] = mapped_column(String(100))
    tracking_number: Mapped[str | None] = mapped_column(String(100))
    processing_at: Mapped[datetime | None] = Timestamp(nullable=True)
    packed_at: Mapped[datetime | None] = Timestamp(nullable=True)
    shipped_at: Mapped[datetime | None] = Timestamp(nullable=True)
    delivered_at: Mapped[datetime | None] = Timestamp(nullable=True)

    order = relationship("Order", back_populates="fulfillment")
