"""RQ jobs. Each takes ids (never objects), reloads, and is idempotent.

Jobs run inside the Flask app context the worker pushed (``flask worker``);
under a plain ``rq worker`` they build the app once per process from the
environment.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime

from flask import Flask, current_app, has_app_context
from rq import get_current_job
from rq.job import Job

from ecom import runtime
from ecom.notifications.queues import DEFAULT, get_queue, redis_connection
from ecom.notifications.relay import RelayResult, relay_outbox
from ecom.unit_of_work import unit_of_work

log = logging.getLogger("ecom.workers")

RELAY_BATCH = 100
# Guard against a relay that never finishes draining a flood; the next run continues.
MAX_RELAY_ROUNDS = 50

_standalone_app: Flask | None = None


@contextmanager
def app_context() -> Iterator[Flask]:
    """The current app, or (plain ``rq worker``) one built from the environment, once per process."""
    global _standalone_app
    if has_app_context():
        yield current_app._get_current_object()
        return
    if _standalone_app is None:
        from shop.app import create_app

        _standalone_app = create_app()
    with _standalone_app.app_context():
        yield _standalone_app


def deliver_event(event_id: str) -> dict:
    """Deliver the notifications of one outbox event (the relay's job; job id = event id).

    A re-run sends nothing already sent. Raises DeliveryFailed when a
    delivery failed, so the job's Retry runs it again.
    """
    from ecom.notifications.handler import handle_outbox_event, handler_environment

    with app_context():
        settings, bind = handler_environment()
        result = handle_outbox_event(event_id, settings=settings, bind=bind)
        if result is None:
            log.warning("outbox event %s no longer exists; nothing to deliver", event_id)
            return {"event_id": event_id, "missing": True}
        return result.as_dict()


def deliver_events(event_ids: list[str]) -> dict:
    """Deliver a batch of outbox events (the relay's job). An event that fails is retried alone.

    Every event of the batch is tried; each failed one becomes a job of its
    own (job id = event id) with the remaining retries, so only what failed
    runs again and the failed-jobs page lists it by itself. If Redis refuses
    that job, this raises and the batch's own Retry re-runs it (what was sent
    is skipped).
    """
    from ecom.notifications.handler import handle_outbox_events, handler_environment
    from ecom.notifications.relay import retry_event_alone

    with app_context() as app:
        settings, bind = handler_environment()
        batch = handle_outbox_events(event_ids, settings=settings, bind=bind)
        job = get_current_job()
        for event_id, error in batch.failed.items():
            log.warning("event %s failed in its batch, retried alone: %s", event_id, error)
            retry_event_alone(app, event_id, connection=job.connection if job else None)
        for event_id in batch.missing:
            log.warning("outbox event %s no longer exists; nothing to deliver", event_id)
        return batch.as_dict()


def relay_outbox_job(batch: int = RELAY_BATCH) -> dict:
    """Relay the outbox until it is drained (or MAX_RELAY_ROUNDS batches). Returns the counts."""
    from ecom.notifications.relay import clear_relay_request

    with app_context() as app:
        # Cleared before reading: a commit after this point asks for (and gets) a new relay.
        clear_relay_request(app)
        totals = {"enqueued": 0, "already_queued": 0, "failed": 0}
        for _ in range(MAX_RELAY_ROUNDS):
            result = relay_once(batch, app=app)
            for key, value in result.as_dict().items():
                totals[key] += value
            if result.dispatched < batch or result.failed:
                break
        return totals


def relay_once(batch: int = RELAY_BATCH, *, app: Flask | None = None) -> RelayResult:
    """One batch of the relay in its own unit of work: what the rows record is committed right
    after Redis was told. Raises RuntimeError without REDIS_URL."""
    with unit_of_work():
        return relay_outbox(app or current_app._get_current_object(), batch)


def expire_reservations_job() -> list[str]:
    """Expire overdue reservations; the order numbers whose reservations expired."""
    from workers.periodic import expire_reservations

    with app_context():
        return expire_reservations()


def purge_guest_carts_job() -> int:
    """Delete abandoned guest carts; how many."""
    from workers.periodic import purge_guest_carts

    with app_context():
        return purge_guest_carts()


def run_import_job(job_id: int) -> str | None:
    """Run a product CSV import (enqueued by ``workers.imports.start_import``): takes an id,
    reloads, and skips a job already finished, so a re-run does nothing new. Its status, or None
    if the job row is gone."""
    from ecom.catalog.models import ImportJob
    from ecom.extensions import db
    from workers.imports import run_import

    with app_context():
        job = db.session.get(ImportJob, job_id)
        if job is None or job.status in ("finished", "failed"):
            return job.status if job else None
        return run_import(job).status


def gateway_retries_job() -> dict:
    """Make the recorded gateway calls not done yet (refunds, intent cancellations); the counts."""
    from workers.periodic import retry_gateway_calls

    with app_context():
        return retry_gateway_calls().as_dict()


# --- periodic jobs: each run schedules the next one --------------------------------------------

PERIODIC = {
    # name: (the setting holding its interval in seconds, job)
    "relay-outbox": ("RELAY_INTERVAL_SECONDS", relay_outbox_job),
    "expire-reservations": ("EXPIRY_INTERVAL_SECONDS", expire_reservations_job),
    "purge-guest-carts": ("CART_PURGE_INTERVAL_SECONDS", purge_guest_carts_job),
    "gateway-retries": ("GATEWAY_RETRY_INTERVAL_SECONDS", gateway_retries_job),
}


def periodic_interval(app: Flask, name: str) -> int:
    key, _ = PERIODIC[name]
    return int(runtime.settings(app)[key] or 0)


def schedule_periodic(app: Flask, name: str, *, connection=None) -> str | None:
    """Schedule the next run of a periodic job; returns its job id (None if disabled).

    The id names the time slot, so any number of workers scheduling the same
    slot create one job, and a slot that already ran is never scheduled again.
    """
    interval = periodic_interval(app, name)
    if interval <= 0:
        return None
    slot = int(time.time() // interval) + 1
    job_id = f"periodic-{name}-{slot}"
    connection = connection or redis_connection(app)
    if not Job.exists(job_id, connection=connection):
        get_queue(app, DEFAULT, connection=connection).enqueue_at(
            datetime.fromtimestamp(slot * interval, UTC),
            run_periodic,
            name,
            job_id=job_id,
            description=f"periodic {name}",
            result_ttl=max(interval * 4, 60),
            failure_ttl=24 * 3600,
        )
    return job_id


def schedule_all_periodic(app: Flask, *, connection=None) -> list[str]:
    return [job_id for name in PERIODIC if (job_id := schedule_periodic(app, name, connection=connection))]


def run_periodic(name: str):
    """Run one tick of a periodic job, scheduling the next tick first so a failure cannot end the chain."""
    with app_context() as app:
        job = get_current_job()
        schedule_periodic(app, name, connection=job.connection if job else None)
        _, func = PERIODIC[name]
        return func()


def make_thumbnails_job(image_id: int) -> dict | None:
    """The 200 and 800 px WebP thumbnails of an uploaded product image (enqueued by
    ``workers.media.start_thumbnails``): takes an id, reloads, makes only what is missing."""
    from workers.media import run_thumbnails

    with app_context():
        return run_thumbnails(image_id)
