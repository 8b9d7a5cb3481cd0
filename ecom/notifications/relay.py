"""The transactional outbox relay: undispatched ``outbox_events`` rows onto the RQ queue.

Delivery is at least once and never twice. Events go to RQ in batches: one job
per DELIVERY_BATCH events, its id derived from the ids it carries (so a re-relay
of the same rows finds the job and enqueues nothing), and the handler's unique
(event_id, channel, recipient) row covers the rest. An event whose delivery
fails in a batch is retried on its own, as a job whose id *is* the event id:
the failed-jobs page lists each event that could not be delivered, one by one.
If Redis is away the rows stay undispatched, with ``attempts`` and
``last_error``, until a later relay gets them through.
"""

from __future__ import annotations

import hashlib
import logging
import uuid
from dataclasses import dataclass
from datetime import timedelta

import redis
from flask import Flask
from rq import Retry
from rq.job import Job
from sqlalchemy import select

from ecom.db import utcnow
from ecom.extensions import db
from ecom.notifications.models import OutboxEvent
from ecom.notifications.queues import (
    DELIVER_EVENT_JOB,
    DELIVER_EVENTS_JOB,
    FAILURE_TTL_SECONDS,
    MAX_DELIVERY_RETRIES,
    RESULT_TTL_SECONDS,
    delivery_retry,
    get_queue,
    redis_connection,
)

log = logging.getLogger("ecom.notifications")

NUDGE_KEY = "ecom:outbox:relay-requested"
NUDGE_TTL_SECONDS = 60
# Relay jobs run every few seconds; the worker log names them by this prefix (workers.worker).
RELAY_JOB_PREFIX = "relay-outbox-"
BATCH_JOB_PREFIX = "deliver-batch-"
# Events per delivery job: RQ's own cost per job (about 2.7 ms of worker CPU) is paid once per batch.
DELIVERY_BATCH = 50


@dataclass
class RelayResult:
    enqueued: int = 0
    already_queued: int = 0
    failed: int = 0

    @property
    def dispatched(self) -> int:
        return self.enqueued + self.already_queued

    def as_dict(self) -> dict:
        return {"enqueued": self.enqueued, "already_queued": self.already_queued, "failed": self.failed}


def pending_events_query(batch: int):
    """The oldest undispatched events, locked; concurrent relays skip each other's rows.

    SQLite has no row locks (SQLAlchemy renders no FOR UPDATE there) and a single writer anyway.
    """
    return (
        select(OutboxEvent)
        .where(OutboxEvent.dispatched_at.is_(None))
        .order_by(OutboxEvent.created_at, OutboxEvent.id)
        .limit(batch)
        .with_for_update(skip_locked=True)
    )


def relay_outbox(app: Flask, batch: int = 100) -> RelayResult:
    """Enqueue up to ``batch`` undispatched events on the ``notifications`` queue; flushes only.

    The caller (the relay job) commits right after, so what the rows record
    matches what Redis was told; until then the rows stay locked against
    concurrent relays. Redis errors are not raised: they are stored on the rows
    (attempts, last_error), which stay undispatched. Raises RuntimeError if the
    app has no REDIS_URL. ``app`` is the one whose Redis and retry policy apply.
    """
    connection = redis_connection(app)
    queue = get_queue(app, connection=connection)
    retry = delivery_retry(app)
    result = RelayResult()
    events = db.session.scalars(pending_events_query(batch)).all()
    for start in range(0, len(events), DELIVERY_BATCH):
        chunk = events[start:start + DELIVERY_BATCH]
        try:
            enqueued = _enqueue_batch(queue, connection, chunk, retry)
        except redis.RedisError as exc:
            log.warning("outbox relay: Redis unavailable, events stay in the outbox: %s", exc)
            # Redis is down: every remaining row records it without another slow attempt.
            for event in events[start:]:
                event.attempts = (event.attempts or 0) + 1
                event.last_error = f"{type(exc).__name__}: {exc}"[:2000]
            result.failed += len(events) - start
            break
        for event in chunk:
            event.dispatched_at = utcnow()
            event.last_error = None
        if enqueued:
            result.enqueued += len(chunk)
        else:
            result.already_queued += len(chunk)
    db.session.flush()
    return result


def batch_job_id(event_ids: list[str]) -> str:
    return BATCH_JOB_PREFIX + hashlib.sha256("\n".join(event_ids).encode()).hexdigest()[:32]


def _enqueue_batch(queue, connection, events: list[OutboxEvent], retry) -> bool:
    """One delivery job for ``events``; False if a job for exactly these events exists already."""
    event_ids = [event.id for event in events]
    job_id = batch_job_id(event_ids)
    if Job.exists(job_id, connection=connection):
        return False
    types = sorted({event.type for event in events})
    queue.enqueue(
        DELIVER_EVENTS_JOB,
        event_ids,
        job_id=job_id,
        retry=retry,
        description=f"deliver {len(event_ids)} event(s): {', '.join(types)}",
        result_ttl=RESULT_TTL_SECONDS,
        failure_ttl=FAILURE_TTL_SECONDS,
    )
    return True


def retry_event_alone(app: Flask, event_id: str, *, connection: redis.Redis | None = None) -> bool:
    """After its delivery failed in a batch, retry one event as a job of its own (job id = event id).

    The first retry waits the first of NOTIFY_RETRY_INTERVALS; the job's own
    Retry has the rest, so an event gets as many attempts as it would alone.
    False if that job exists already (a re-run batch). Raises redis.RedisError.
    """
    connection = connection or redis_connection(app)
    if Job.exists(event_id, connection=connection):
        return False
    intervals = list(delivery_retry(app).intervals)
    first, rest = intervals[0], intervals[1:] or intervals
    options = dict(job_id=event_id, retry=Retry(max=MAX_DELIVERY_RETRIES - 1, interval=rest),
                   description=f"deliver event {event_id} (retry)", result_ttl=RESULT_TTL_SECONDS,
                   failure_ttl=FAILURE_TTL_SECONDS)
    queue = get_queue(app, connection=connection)
    if first > 0:
        queue.enqueue_in(timedelta(seconds=first), DELIVER_EVENT_JOB, event_id, **options)
    else:
        queue.enqueue(DELIVER_EVENT_JOB, event_id, **options)
    return True


def request_relay(app: Flask) -> bool:
    """Ask a worker to relay soon (after a commit wrote events). True if a relay job was enqueued.

    At most one relay request waits at a time: the flag is cleared by the relay
    job as it starts, before it reads the outbox, so no committed event is
    missed. Raises redis.RedisError when Redis is away.
    """
    from ecom.notifications.queues import DEFAULT, RELAY_OUTBOX_JOB

    connection = redis_connection(app)
    if not connection.set(NUDGE_KEY, "1", nx=True, ex=NUDGE_TTL_SECONDS):
        return False
    get_queue(app, DEFAULT, connection=connection).enqueue(
        RELAY_OUTBOX_JOB, job_id=f"{RELAY_JOB_PREFIX}{uuid.uuid4().hex}",
        description="relay outbox (after commit)", result_ttl=60, failure_ttl=3600,
    )
    return True


def clear_relay_request(app: Flask) -> None:
    redis_connection(app).delete(NUDGE_KEY)
