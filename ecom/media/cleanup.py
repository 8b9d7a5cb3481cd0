"""Files written during a transaction that then rolled back are deleted again.

A service stores uploaded files before its caller commits (the rows that name them need the
keys). Should the transaction roll back after that - a later step failed, the commit failed -
the files would be left behind, named by nothing. ``forget_on_rollback`` notes them on the
session; the outermost rollback deletes them, the outermost commit forgets the note.
"""

from __future__ import annotations

import logging

from sqlalchemy.orm import Session

from ecom.db import listen_on_sessions
from ecom.extensions import db

log = logging.getLogger(__name__)
WRITTEN = "ecom_media_written"


def forget_on_rollback(backend, keys: list[str]) -> None:
    """Delete ``keys`` from ``backend`` if the current transaction rolls back."""
    if keys:
        db.session.info.setdefault(WRITTEN, []).append((backend, list(keys)))


def _committed(session: Session) -> None:
    if not session.in_nested_transaction():
        session.info.pop(WRITTEN, None)


def _rolled_back(session: Session) -> None:
    if session.in_nested_transaction():
        return
    for backend, keys in session.info.pop(WRITTEN, []):
        for key in keys:
            try:
                backend.delete(key)
            except Exception:  # noqa: BLE001 - a file left behind costs space, not correctness
                log.warning("could not delete %s after a rollback", key, exc_info=True)


def init_app(app) -> None:
    listen_on_sessions(after_commit=_committed, after_rollback=_rolled_back)
