"""Wiring of the outbox to its consumers, chosen by whether REDIS_URL is set.

* Embedded default (no REDIS_URL): right after a commit that wrote outbox
  rows, those events are handled in-process and marked dispatched. A failed
  delivery never breaks the request: the row stays undispatched with
  ``attempts``/``last_error`` and a daemon timer (started by the first request
  of a serving process, never under TESTING) sweeps such leftovers and runs
  reservation expiry every EXPIRY_INTERVAL_SECONDS.
* With REDIS_URL: after such a commit the relay is nudged (one relay job
  enqueued at a time); the worker (``flask worker``) relays and runs the
  periodic jobs. If Redis is away the nudge is skipped - the outbox keeps the
  events and the periodic relay picks them up.

The hook is a SQLAlchemy session event on Flask-SQLAlchemy's Session class:
``after_flush`` collects the ids of new OutboxEvent rows in ``session.info``,
``after_commit`` hands them on, ``after_rollback`` forgets them.
"""

from __future__ import annotations

import logging
import threading
import time

from flask import Flask, current_app, has_app_context
from sqlalchemy import select
from sqlalchemy.orm import Session

from ecom.db import listen_on_sessions, utcnow
from ecom.extensions import db
from ecom.notifications.models import OutboxEvent

log = logging.getLogger("ecom.events")

PENDING_KEY = "ecom_outbox_pending"
EXTENSION = "ecom_events"
INLINE, QUEUE = "inline", "queue"
# In-process retries of a failing event stop here; the back office shows what is left.
MAX_INLINE_ATTEMPTS = 10

_timer_lock = threading.Lock()
_timer_started = False


def init_app(app: Flask) -> None:
    """Choose the dispatch mode for ``app`` and install the session hooks (once per process)."""
    app.extensions[EXTENSION] = QUEUE if app.config.get("REDIS_URL") else INLINE
    _install_listeners()
    if app.extensions[EXTENSION] == INLINE and not app.config.get("TESTING"):

        @app.before_request
        def _start_periodic_work() -> None:
            # Returns None: anything else from a before_request hook would become the response.
            start_background_timer(app)


def dispatch_mode(app: Flask) -> str:
    return app.extensions.get(EXTENSION, INLINE)


# --- the session hooks ------------------------------------------------------------------------

def _install_listeners() -> None:
    listen_on_sessions(after_flush=_collect_new_events, after_commit=_dispatch_committed_events,
                       after_rollback=_forget_events)


def _collect_new_events(session: Session, flush_context) -> None:
    new_ids = [obj.id for obj in session.new if isinstance(obj, OutboxEvent)]
    if new_ids:
        session.info.setdefault(PENDING_KEY, []).extend(new_ids)


def _forget_events(session: Session) -> None:
    session.info.pop(PENDING_KEY, None)


def _dispatch_committed_events(session: Session) -> None:
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
            process_event(event, settings=app.config, bind=bind)
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


# --- periodic work ----------------------------------------------------------------------------

def run_reservation_expiry() -> list[str]:
    """Expire overdue reservations (``ecom.commerce.expiry``) and commit; the order numbers expired."""
    try:
        from ecom.commerce.expiry import expire_reservations
    except ImportError:
        log.debug("ecom.commerce.expiry is not available yet; nothing to expire")
        return []
    expired = _committed(lambda: expire_reservations(now=None))
    if expired:
        log.info("expired reservations of %d order(s)", len(expired))
    return list(expired)


def run_guest_cart_purge() -> int:
    """Delete abandoned guest carts (``ecom.commerce.cart``) and commit; how many."""
    from ecom.commerce.cart import purge_guest_carts

    purged = _committed(purge_guest_carts)
    if purged:
        log.info("purged %d abandoned guest cart(s)", purged)
    return purged


def _committed(work):
    """``work()``'s result, its changes committed; rolled back (and re-raised) if it fails."""
    try:
        result = work()
        db.session.commit()
    except Exception:
        db.session.rollback()
        raise
    return result


def start_background_timer(app: Flask) -> bool:
    """Start the embedded periodic thread once per process. True if this call started it."""
    global _timer_started
    interval = int(app.config.get("EXPIRY_INTERVAL_SECONDS") or 0)
    if _timer_started or interval <= 0:
        return False
    with _timer_lock:
        if _timer_started:
            return False
        _timer_started = True
    thread = threading.Thread(target=_timer_loop, args=(app, interval), name="ecom-periodic", daemon=True)
    thread.start()
    return True


def _timer_loop(app: Flask, interval: int) -> None:
    from ecom.commerce.payments import retry_pending_gateway_calls

    while True:
        time.sleep(interval)
        with app.app_context():
            try:
                run_reservation_expiry()
                sweep_outbox_inline(app)
                run_guest_cart_purge()
                retry_pending_gateway_calls()
            except Exception:  # a daemon loop must outlive one bad tick; the next one retries
                log.exception("periodic expiry/outbox sweep/cart purge failed")
            finally:
                db.session.remove()
