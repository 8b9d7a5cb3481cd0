"""Emitting domain events into the transactional outbox."""

from __future__ import annotations

from functools import cache

from sqlalchemy import insert
from sqlalchemy.orm import make_transient_to_detached

from ecom.db import utcnow
from ecom.extensions import db
from ecom.notifications.models import EventType, OutboxEvent, new_event_id
from ecom.notifications.outbox import note_pending


@cache
def _insert_event():
    return insert(OutboxEvent.__table__)


def emit(event_type: EventType | str, data: dict) -> OutboxEvent:
    """Write an outbox row in the caller's transaction; nothing is sent from here.

    The payload is ``{"type": ..., "data": {...}}``. One INSERT, not the unit of work
    (every checkout and payment emits); what is returned is the row as written, detached.
    Raises ValueError for an unknown event type.
    """
    event_type = EventType(event_type)
    values = {"id": new_event_id(), "type": str(event_type),
              "payload": {"type": str(event_type), "data": data}, "created_at": utcnow(), "attempts": 0}
    db.session.execute(_insert_event(), values)
    note_pending(db.session, values["id"])
    event = OutboxEvent(**values)
    make_transient_to_detached(event)
    return event
