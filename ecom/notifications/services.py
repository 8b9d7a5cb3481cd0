"""Emitting domain events into the transactional outbox."""

from __future__ import annotations

from ecom.extensions import db
from ecom.notifications.models import EventType, OutboxEvent


def emit(event_type: EventType | str, data: dict) -> OutboxEvent:
    """Write an outbox row in the caller's transaction; nothing is sent from here.

    The payload is ``{"type": ..., "data": {...}}``.
    Raises ValueError for an unknown event type.
    """
    event_type = EventType(event_type)
    event = OutboxEvent(type=event_type, payload={"type": str(event_type), "data": data})
    db.session.add(event)
    db.session.flush()
    return event
