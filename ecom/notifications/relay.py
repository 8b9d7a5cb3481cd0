"""The transactional outbox relay: undispatched ``outbox_events`` rows onto the RQ queue.

Delivery is at least once and never twice: each event becomes the RQ job whose
id *is* the event id (so a re-relay finds the job and enqueues nothing), and
the handler's unique (event_id, channel, recipient) row covers the rest.
If Redis is away the rows stay undispatched, with ``attempts`` and
``last_error``, until a later relay gets them through.
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass

import redis
from flask import Flask
from rq.job import Job
from sqlalchemy import select

from ecom.db import utcnow
from ecom.extensions import db
from ecom.notifications.models import OutboxEvent
from ecom.notifications.queues import (
    DELIVER_EVENT_JOB,
    FAILURE_TTL_SECONDS,
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
    redis_error: str | None = None
    for event in db.session.scalars(pending_events_query(batch)).all():
        if redis_error is None:
            try:
                result_kind = _enqueue(queue, connection, event, retry)
            except redis.RedisError as exc:
                redis_error = f"{type(exc).__name__}: {exc}"
                log.warning("outbox relay: Redis unavailable, events stay in the outbox: %s", exc)
        if redis_error is not None:
            # Redis is down: every remaining row records it without another slow attempt.
            event.attempts = (event.attempts or 0) + 1
            event.last_error = redis_error[:2000]
            result.failed += 1
            continue
        event.dispatched_at = utcnow()
        event.last_error = None
        if result_kind == "enqueued":
            result.enqueued += 1
        else:
            result.already_queued += 1
    db.session.flush()
    return result


def _enqueue(queue, connection, event: OutboxEvent, retry) -> str:
    if Job.exists(event.id, connection=connection):
        return "already_queued"
    queue.enqueue(
        DELIVER_EVENT_JOB,
        event.id,
        job_id=event.id,
        retry=retry,
        description=f"deliver {event.type} {event.id}",
        result_ttl=RESULT_TTL_SECONDS,
        failure_ttl=FAILURE_TTL_SECONDS,
    )
    return "enqueued"


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
