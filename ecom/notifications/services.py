"""Emitting domain events into the transactional outbox."""

from __future__ import annotations

from sqlalchemy.orm import make_transient_to_detached

from ecom.db import utcnow
from ecom.extensions import db
from ecom.notifications.models import EventType, OutboxEvent, new_event_id
from ecom.notifications.outbox import note_pending
from ecom.row_writes import RowWrite


def event_row(event_type: EventType | str, data: dict) -> RowWrite:
    """An outbox row as ``emit`` writes it, for a caller that sends it along another INSERT
    (``RowWrite``); once written, it is dispatched after the commit like any other.
    Raises ValueError for an unknown event type."""
    event_type = EventType(event_type)
    values = {"id": new_event_id(), "type": str(event_type),
              "payload": {"type": str(event_type), "data": data}, "created_at": utcnow(), "attempts": 0}
    return RowWrite(OutboxEvent.__table__, values, written=lambda: note_pending(db.session, values["id"]))


def emit(event_type: EventType | str, data: dict) -> OutboxEvent:
    """Write an outbox row in the caller's transaction; nothing is sent from here.

    The payload is ``{"type": ..., "data": {...}}``. One INSERT, not the unit of work
    (every checkout and payment emits); what is returned is the row as written, detached.
    Raises ValueError for an unknown event type.
    """
    row = event_row(event_type, data)
    row.insert()
    event = OutboxEvent(**row.values)
    make_transient_to_detached(event)
    return event
