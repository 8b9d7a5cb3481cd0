from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import CheckConstraint, Date, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from ecom.db import Timestamp, TimestampMixin, one_of
from ecom.extensions import db
from ecom.stockroom.status import PurchaseOrderStatus, TransferStatus


class StockTransfer(TimestampMixin, db.Model):
    __tablename__ = "stock_transfers"
    __table_args__ = (
        one_of("status", TransferStatus),
        CheckConstraint("source_location_id <> destination_location_id", name="different_locations"),
        Index("ix_stock_transfers_status_created", "status", "created_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    source_location_id: Mapped[int] = mapped_column(ForeignKey("stock_locations.id"), index=True)
    destination_location_id: Mapped[int] = mapped_column(ForeignKey("stock_locations.id"), index=True)
    status: Mapped[str] = mapped_column(String(20), default=TransferStatus.DRAFT)
    note: Mapped[str] = mapped_column(Text, default="")
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    sent_at: Mapped[datetime | None] = Timestamp(nullable=True)
    received_at: Mapped[datetime | None] = Timestamp(nullable=True)
    cancelled_at: Mapped[datetime | None] = Timestamp(nullable=True)

    source = relationship("StockLocation", foreign_keys=[source_location_id])
    destination = relationship("StockLocation", foreign_keys=[destination_location_id])
    lines: Mapped[list[StockTransferLine]] = relationship(
        back_populates="transfer", cascade="all, delete-orphan", order_by="StockTransferLine.id"
    )

    @property
    def number(self) -> str:
        return f"TR-{self.id:06d}"

    def __str__(self) -> str:
        return self.number


class StockTransferLine(db.Model):
    __tablename__ = "stock_transfer_lines"
    __table_args__ = (
        CheckConstraint("quantity > 0", name="quantity_positive"),
        UniqueConstraint("transfer_id", "variant_id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    transfer_id: Mapped[int] = mapped_column(ForeignKey("stock_transfers.id", ondelete="CASCADE"))
    variant_id: Mapped[int] = mapped_column(ForeignKey("variants.id"), index=True)
    quantity: Mapped[int] = mapped_column(Integer)

    transfer: Mapped[StockTransfer] = relationship(back_populates="lines")
    variant = relationship("Variant")


class PurchaseOrder(TimestampMixin, db.Model):
    __tablename__ = "purchase_orders"
    __table_args__ = (
        one_of("status", PurchaseOrderStatus),
        Index("ix_purchase_orders_status_created", "status", "created_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    supplier: Mapped[str] = mapped_column(String(200))
    destination_location_id: Mapped[int] = mapped_column(ForeignKey("stock_locations.id"), index=True)
    expected_on: Mapped[date | None] = mapped_column(Date)
    status: Mapped[str] = mapped_column(String(20), default=PurchaseOrderStatus.DRAFT)
    note: Mapped[str] = mapped_column(Text, default="")
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    ordered_at: Mapped[datetime | None] = Timestamp(nullable=True)
    received_at: Mapped[datetime | None] = Timestamp(nullable=True)
    cancelled_at: Mapped[datetime | None] = Timestamp(nullable=True)

    destination = relationship("StockLocation")
    lines: Mapped[list[PurchaseOrderLine]] = relationship(
        back_populates="purchase_order", cascade="all, delete-orphan", order_by="PurchaseOrderLine.id"
    )

    @property
    def number(self) -> str:
        return f"PO-{self.id:06d}"

    def __str__(self) -> str:
        return self.number


class PurchaseOrderLine(db.Model):
    __tablename__ = "purchase_order_lines"
    __table_args__ = (
        CheckConstraint("quantity_ordered > 0", name="ordered_positive"),
        CheckConstraint("quantity_received >= 0", name="received_not_negative"),
        UniqueConstraint("purchase_order_id", "variant_id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    purchase_order_id: Mapped[int] = mapped_column(ForeignKey("purchase_orders.id", ondelete="CASCADE"))
    variant_id: Mapped[int] = mapped_column(ForeignKey("variants.id"), index=True)
    quantity_ordered: Mapped[int] = mapped_column(Integer)
    quantity_received: Mapped[int] = mapped_column(Integer, default=0, server_default="0")

    purchase_order: Mapped[PurchaseOrder] = relationship(back_populates="lines")
    variant = relationship("Variant")
