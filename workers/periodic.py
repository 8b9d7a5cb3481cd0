"""The periodic work, and who runs it.

* With REDIS_URL the worker runs it as scheduled RQ jobs (``workers.jobs.PERIODIC``).
* Without it (the embedded default) a daemon timer in the serving process runs
  it every EXPIRY_INTERVAL_SECONDS: started by the first request, never under
  TESTING.

Each function here is an edge: it owns its commits, through ``ecom.unit_of_work``.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from datetime import datetime

from flask import Flask
from sqlalchemy.exc import SQLAlchemyError

from ecom import runtime
from ecom.commerce import cart, payments
from ecom.commerce.expiry import expire_order
from ecom.commerce.status import RefundStatus
from ecom.db import as_utc, utcnow
from ecom.errors import EcomError
from ecom.extensions import db
from ecom.inventory.services import overdue_order_ids
from ecom.notifications.outbox import INLINE, dispatch_mode, sweep_outbox_inline
from ecom.unit_of_work import committed, rollback, unit_of_work

log = logging.getLogger("ecom.workers")

TIMER_THREAD = "ecom-periodic"

_timer_lock = threading.Lock()
_timer_started = False


def expire_reservations(now: datetime | None = None) -> list[str]:
    """Cancel every unpaid order whose reservation is overdue; the order numbers cancelled.

    One unit of work per order, so one stuck order never holds back the rest;
    its payment intent is cancelled after that commit (the cancel path registers
    it), outside the row locks.
    """
    now = as_utc(now) or utcnow()
    cancelled: list[str] = []
    for order_id in overdue_order_ids(now):
        try:
            with unit_of_work():
                order_number = expire_order(order_id, now)
        except (EcomError, SQLAlchemyError):
            log.exception("could not expire order %s", order_id)
            continue
        if order_number is not None:
            cancelled.append(order_number)
    if cancelled:
        log.info("expired reservations of %d order(s)", len(cancelled))
    return cancelled


@dataclass(frozen=True)
class RetryResult:
    refunds_made: int
    refunds_pending: int
    intents_cancelled: int
    cancellations_pending: int

    def as_dict(self) -> dict:
        return dict(self.__dict__)


def retry_gateway_calls(now: datetime | None = None) -> RetryResult:
    """Make the refunds and intent cancellations recorded but not yet done (a crash or a gateway
    outage after their commit; ``payments.gateway_calls_due`` as of ``now``), each call in a
    unit of work of its own so one stuck call never holds back the rest."""
    due = payments.gateway_calls_due(now)
    made = cancelled = 0
    for refund_id in due.refund_ids:
        try:
            with unit_of_work():
                refund = payments.perform_refund(refund_id)
        # Any exception: an unknown gateway error class is as much one item's failure as a
        # deadlock; the rest of the batch still runs, and this one is retried next time.
        except Exception:
            log.exception("could not make refund %s", refund_id)
            continue
        made += refund is not None and refund.status == RefundStatus.SUCCEEDED
    for payment_id in due.payment_ids:
        try:
            with unit_of_work():
                done = payments.perform_intent_cancellation(payment_id)
        except Exception:
            log.exception("could not cancel the payment intent of payment %s", payment_id)
            continue
        cancelled += done
    return RetryResult(refunds_made=made, refunds_pending=len(due.refund_ids) - made,
                       intents_cancelled=cancelled, cancellations_pending=len(due.payment_ids) - cancelled)


def purge_guest_carts() -> int:
    """Delete abandoned guest carts in one unit of work; how many."""
    purged = committed(cart.purge_guest_carts)
    if purged:
        log.info("purged %d abandoned guest cart(s)", purged)
    return purged


# --- the embedded timer ----------------------------------------------------------------------

def init_app(app: Flask) -> None:
    """In the embedded mode of a serving app, start the timer with its first request."""
    if dispatch_mode(app) != INLINE or runtime.settings(app).get("TESTING"):
        return

    @app.before_request
    def _start_periodic_work() -> None:
        # Returns None: anything else from a before_request hook would become the response.
        start_background_timer(app)


def start_background_timer(app: Flask) -> bool:
    """Start the embedded periodic thread once per process. True if this call started it."""
    global _timer_started
    interval = int(runtime.settings(app).get("EXPIRY_INTERVAL_SECONDS") or 0)
    if _timer_started or interval <= 0:
        return False
    with _timer_lock:
        if _timer_started:
            return False
        _timer_started = True
    thread = threading.Thread(target=_timer_loop, args=(app, interval), name=TIMER_THREAD, daemon=True)
    thread.start()
    return True


def run_embedded_tick(app: Flask) -> None:
    """One tick of the embedded timer: expiry, the outbox sweep, the cart purge, gateway retries;
    each step guarded on its own, so one that fails never skips the others."""
    steps = (("reservation expiry", expire_reservations), ("outbox sweep", lambda: sweep_outbox_inline(app)),
             ("guest cart purge", purge_guest_carts), ("gateway retries", retry_gateway_calls))
    for name, step in steps:
        try:
            step()
        except Exception:  # the next step, and the next tick, still run
            log.exception("periodic %s failed", name)
            rollback()


def _timer_loop(app: Flask, interval: int) -> None:
    while True:
        time.sleep(interval)
        with app.app_context():
            try:
                run_embedded_tick(app)
            except Exception:  # a daemon loop must outlive one bad tick; the next one retries
                log.exception("periodic tick (expiry, outbox sweep, cart purge, gateway retries) failed")
            finally:
                db.session.remove()
