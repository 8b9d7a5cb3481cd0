"""Outbox dispatch: what happens to committed outbox rows, chosen by whether REDIS_URL is set.

* Embedded default (no REDIS_URL): right after a commit that wrote outbox
  rows, those events are handled in-process and marked dispatched. A failed
  delivery never breaks the request: the row stays undispatched with
  ``attempts``/``last_error`` for ``sweep_outbox_inline``, which the embedded
  timer (``workers.periodic``) runs every EXPIRY_INTERVAL_SECONDS.
* With REDIS_URL: after such a commit the relay is nudged (one relay job
  enqueued at a time); the worker (``flask worker``) relays and runs the
  periodic jobs. If Redis is away the nudge is skipped - the outbox keeps the
  events and the periodic relay picks them up.

The hook is a SQLAlchemy session event on Flask-SQLAlchemy's Session class:
``after_flush`` collects the ids of new OutboxEvent rows in ``session.info``,
``after_commit`` hands them on, ``after_rollback`` forgets them. A savepoint's commit or
rollback is not the end of the transaction: the ids wait for the outermost commit, and a
rolled-back savepoint's own rows are simply gone by then (handling skips an id it cannot
load), so one bad CSV row never delays the events of the rows before it.

The hooks read ``current_app``: SQLAlchemy calls them with the session only, and they need
the app itself (its dispatch mode, its Redis), not a setting - a session only exists inside
the app context of the app that owns it.
"""

from __future__ import annotations

import logging

from flask import Flask, current_app, has_app_context
from sqlalchemy import select
from sqlalchemy.orm import Session

from ecom import runtime
from ecom.db import listen_on_sessions, utcnow
from ecom.extensions import db
from ecom.notifications.models import OutboxEvent

log = logging.getLogger("ecom.notifications.outbox")

PENDING_KEY = "ecom_outbox_pending"
EXTENSION = "ecom_outbox"
INLINE, QUEUE = "inline", "queue"
# In-process retries of a failing event stop here; the back office shows what is left.
MAX_INLINE_ATTEMPTS = 10


def init_app(app: Flask) -> None:
    """Choose the dispatch mode for ``app`` and install the session hooks (once per process)."""
    app.extensions[EXTENSION] = QUEUE if runtime.settings(app)["REDIS_URL"] else INLINE
    _install_listeners()


def dispatch_mode(app: Flask) -> str:
    return app.extensions.get(EXTENSION, INLINE)


# --- the session hooks ------------------------------------------------------------------------

def _install_listeners() -> None:
    listen_on_sessions(after_flush=_collect_new_events, after_commit=_dispatch_committed_events,
                       after_rollback=_forget_events)


def note_pending(session: Session, *event_ids: str) -> None:
    """These events were written in the session's transaction: dispatch them after its commit."""
    session.info.setdefault(PENDING_KEY, []).extend(event_ids)


def _collect_new_events(session: Session, flush_context) -> None:
    new_ids = [obj.id for obj in session.new if isinstance(obj, OutboxEvent)]
    if new_ids:
        note_pending(session, *new_ids)


def _forget_events(session: Session) -> None:
    if not session.in_nested_transaction():
        session.info.pop(PENDING_KEY, None)


def _dispatch_committed_events(session: Session) -> None:
    if session.in_nested_transaction():
        return  # a savepoint: nothing is visible to others before the outermost commit
    event_ids = session.info.pop(PENDING_KEY, None)
    if not event_ids or not has_app_context():
        return
    app = current_app._get_current_object()
    if dispatch_mode(app) == QUEUE:
        _nudge_relay(app)
    else:
        # A session cannot run SQL inside after_commit: the handling uses sessions of its own,
        # on the same bind (in tests, the same outer transaction).
        handle_events_inline(app, event_ids, bind=session.get_bind())


def _nudge_relay(app: Flask) -> None:
    import redis

    from ecom.notifications.relay import request_relay

    try:
        request_relay(app)
    except redis.RedisError as exc:
        log.warning("could not nudge the outbox relay (events wait in the outbox): %s", exc)


# --- in-process handling ----------------------------------------------------------------------

def handle_events_inline(app: Flask, event_ids: list[str], *, bind=None) -> int:
    """Handle the given outbox events now, in this process. Returns how many were dispatched.

    Never raises for a failed delivery: the event keeps attempts/last_error
    and stays undispatched for the next sweep.
    """
    from ecom.notifications.handler import process_event

    bind = bind if bind is not None else db.engine
    dispatched = 0
    for event_id in event_ids:
        event = _load_event(bind, event_id)
        if event is None:
            continue
        try:
            process_event(event, settings=runtime.settings(app), bind=bind)
        except Exception as exc:  # the request that emitted the event must not fail because of it
            log.warning("in-process delivery of event %s failed: %s", event_id, exc)
            _mark_event(bind, event_id, error=f"{type(exc).__name__}: {exc}")
            continue
        _mark_event(bind, event_id, error=None)
        dispatched += 1
    return dispatched


def sweep_outbox_inline(app: Flask, batch: int = 100) -> int:
    """Handle undispatched events left behind (a crash after commit, a failed delivery)."""
    with Session(bind=db.engine) as session:
        event_ids = session.scalars(
            select(OutboxEvent.id)
            .where(OutboxEvent.dispatched_at.is_(None), OutboxEvent.attempts < MAX_INLINE_ATTEMPTS)
            .order_by(OutboxEvent.created_at)
            .limit(batch)
        ).all()
    return handle_events_inline(app, list(event_ids), bind=db.engine) if event_ids else 0


def _load_event(bind, event_id: str) -> dict | None:
    with Session(bind=bind, join_transaction_mode="create_savepoint") as session:
        event = session.get(OutboxEvent, event_id)
        if event is None or event.dispatched_at is not None:
            return None
        return {"id": event.id, "type": event.type, "data": (event.payload or {}).get("data") or {}}


def _mark_event(bind, event_id: str, *, error: str | None) -> None:
    with Session(bind=bind, join_transaction_mode="create_savepoint") as session:
        event = session.get(OutboxEvent, event_id)
        if event is None:
            return
        if error is None:
            event.dispatched_at = utcnow()
            event.last_error = None
        else:
            event.attempts = (event.attempts or 0) + 1
            event.last_error = error[:2000]
        session.commit()
