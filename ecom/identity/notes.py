"""Staff notes on a customer (shown on the customer's back-office page, never to the customer)."""

from __future__ import annotations

from sqlalchemy import select

from ecom.actor import Actor
from ecom.audit.services import record_change
from ecom.db import storable_text
from ecom.errors import ValidationFailed
from ecom.extensions import db
from ecom.identity.models import CustomerNote, User

MAX_NOTE_LENGTH = 2000


def add_customer_note(customer: User, body: str, *, actor: Actor) -> CustomerNote:
    """A note by ``actor`` on ``customer``, audited. Raises ValidationFailed (empty, too long)."""
    body = (body or "").strip()
    if not body:
        raise ValidationFailed("Write the note first.", {"body": ["Empty note."]})
    if len(body) > MAX_NOTE_LENGTH or not storable_text(body):
        raise ValidationFailed(f"A note has at most {MAX_NOTE_LENGTH} characters.", {"body": ["Too long."]})
    note = CustomerNote(user_id=customer.id, author_id=actor.user_id, author=actor.label, body=body)
    db.session.add(note)
    db.session.flush()
    record_change(actor, "note", "users", customer.id, None, {"note": body}, label=customer.email)
    return note


def customer_notes(customer: User) -> list[CustomerNote]:
    return list(db.session.scalars(select(CustomerNote).where(CustomerNote.user_id == customer.id)
                                   .order_by(CustomerNote.created_at.desc(), CustomerNote.id.desc())))
