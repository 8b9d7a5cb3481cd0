from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum

from sqlalchemy import JSON, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from ecom.db import Timestamp, one_of, utcnow
from ecom.extensions import db


class EventType(StrEnum):
    ORDER_PLACED = "ORDER_PLACED"
    ORDER_PAID = "ORDER_PAID"
    ORDER_SHIPPED = "ORDER_SHIPPED"  # one shipment of the order: its lines and tracking
    ORDER_READY_FOR_PICKUP = "ORDER_READY_FOR_PICKUP"  # click & collect: the store's address and hours
    ORDER_DELIVERED = "ORDER_DELIVERED"
    ORDER_CANCELLED = "ORDER_CANCELLED"
    PAYMENT_FAILED = "PAYMENT_FAILED"
    PAYMENT_REFUNDED = "PAYMENT_REFUNDED"
    LOW_STOCK = "LOW_STOCK"
    # Staff accounts: the one-time link to set a first password, and a forgotten-password link.
    STAFF_INVITED = "STAFF_INVITED"
    PASSWORD_RESET = "PASSWORD_RESET"
    # Returns (ecom.commerce.returns): the customer hears of each step.
    RETURN_REQUESTED = "RETURN_REQUESTED"
    RETURN_APPROVED = "RETURN_APPROVED"
    RETURN_REJECTED = "RETURN_REJECTED"
    RETURN_REFUNDED = "RETURN_REFUNDED"


class Channel(StrEnum):
    EMAIL = "email"
    SMS = "sms"


class DeliveryStatus(StrEnum):
    SENT = "sent"
    FAILED = "failed"


def new_event_id() -> str:
    return str(uuid.uuid4())


class OutboxEvent(db.Model):
    """An event written in the same transaction as the change that caused it."""

    __tablename__ = "outbox_events"
    __table_args__ = (
        one_of("type", EventType),
        Index("ix_outbox_events_pending", "dispatched_at", "created_at"),
    )

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_event_id)
    type: Mapped[str] = mapped_column(String(40))
    payload: Mapped[dict] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(db.DateTime(timezone=True), default=utcnow)
    dispatched_at: Mapped[datetime | None] = Timestamp(nullable=True)
    attempts: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    last_error: Mapped[str | None] = mapped_column(Text)


class Notification(db.Model):
    __tablename__ = "notifications"
    __table_args__ = (
        one_of("channel", Channel),
        one_of("status", DeliveryStatus),
        # A replayed event never notifies the same recipient twice.
        UniqueConstraint("event_id", "channel", "recipient"),
        # Failures first, newest first, paged one status at a time (migration 0013).
        Index("ix_notifications_status_created_id", "status", "created_at", "id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    event_id: Mapped[str] = mapped_column(String(36))
    event_type: Mapped[str] = mapped_column(String(40))
    channel: Mapped[str] = mapped_column(String(10))
    recipient: Mapped[str] = mapped_column(String(255))
    subject: Mapped[str] = mapped_column(String(300), default="")
    body: Mapped[str] = mapped_column(Text, default="")
    status: Mapped[str] = mapped_column(String(10))
    error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(db.DateTime(timezone=True), default=utcnow)
    sent_at: Mapped[datetime | None] = Timestamp(nullable=True)
