"""The audit log of changes made in the back office."""

from __future__ import annotations

from ecom.actor import Actor
from ecom.audit.models import AuditLog
from ecom.extensions import db


def record_change(
    actor: Actor, action: str, entity: str, entity_id, before: dict | None, after: dict | None,
    *, label: str = "",
) -> AuditLog:
    """Write one audit row with the before/after values of the fields that changed.

    ``label`` names the record as people know it (an order number, a SKU, an email); it is
    kept with the entry, so the log still says what it was after the record is gone."""
    before, after = before or {}, after or {}
    keys = sorted(set(before) | set(after))
    changes = {
        key: {"before": before.get(key), "after": after.get(key)}
        for key in keys
        if before.get(key) != after.get(key)
    }
    entry = AuditLog(
        user_id=actor.user_id,
        actor=actor.label,
        action=action,
        entity=entity,
        entity_id=str(entity_id),
        label=str(label or "")[:255],
        changes=_jsonable(changes),
    )
    db.session.add(entry)
    db.session.flush()
    return entry


def _jsonable(value):
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if value is None or isinstance(value, bool | int | str):
        return value
    return str(value)  # Decimal, datetime, enums: their text form
