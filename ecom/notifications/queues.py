"""Redis connections, queue names and the retry policy shared by the web app and the workers."""

from __future__ import annotations

from collections.abc import Sequence

import redis
from flask import Flask
from rq import Queue, Retry

from ecom import runtime

NOTIFICATIONS = "notifications"
DEFAULT = "default"
QUEUE_NAMES = (NOTIFICATIONS, DEFAULT)

# Jobs are referenced by dotted path so the web app never imports the workers package.
DELIVER_EVENT_JOB = "workers.jobs.deliver_event"
RELAY_OUTBOX_JOB = "workers.jobs.relay_outbox_job"

DEFAULT_RETRY_INTERVALS = (10, 30, 60, 300, 900)
MAX_DELIVERY_RETRIES = 5
# How long finished jobs stay visible; while they do, a re-relay is recognised by job id.
RESULT_TTL_SECONDS = 24 * 3600
FAILURE_TTL_SECONDS = 7 * 24 * 3600


def redis_connection(app: Flask) -> redis.Redis:
    """The app's Redis client (one pool per app), failing fast when Redis is away.

    Raises RuntimeError when the app has no REDIS_URL.
    """
    url = runtime.settings(app).get("REDIS_URL")
    if not url:
        raise RuntimeError("REDIS_URL is not set: there are no queues (events are handled in-process).")
    cache = app.extensions.setdefault("ecom_redis", {})
    if url not in cache:
        cache[url] = redis.Redis.from_url(url, socket_connect_timeout=2, socket_timeout=10,
                                          health_check_interval=30)
    return cache[url]


def get_queue(app: Flask, name: str = NOTIFICATIONS, connection: redis.Redis | None = None) -> Queue:
    return Queue(name, connection=connection or redis_connection(app))


def delivery_retry(app: Flask) -> Retry:
    """RQ Retry for deliveries, backing off by NOTIFY_RETRY_INTERVALS (seconds)."""
    intervals = retry_intervals(runtime.settings(app).get("NOTIFY_RETRY_INTERVALS"))
    return Retry(max=MAX_DELIVERY_RETRIES, interval=intervals)


def retry_intervals(value: str | Sequence[int] | None) -> list[int]:
    """``"10,30,60"`` (or a sequence of seconds) as a list of ints; the default when empty.
    Raises ValueError for a part that is not a whole number."""
    if isinstance(value, str):
        value = [part for part in value.split(",") if part.strip()]
    intervals = [int(part) for part in value or ()]
    return intervals or list(DEFAULT_RETRY_INTERVALS)
