"""Redis connections, queue names and the retry policy shared by the web app and the workers."""

from __future__ import annotations

import redis
from flask import Flask
from rq import Queue, Retry

from ecom import runtime

NOTIFICATIONS = "notifications"
DEFAULT = "default"
QUEUE_NAMES = (NOTIFICATIONS, DEFAULT)

# Jobs are referenced by dotted path so the web app never imports the workers package.
DELIVER_EVENT_JOB = "workers.jobs.deliver_event"
DELIVER_EVENTS_JOB = "workers.jobs.deliver_events"
RELAY_OUTBOX_JOB = "workers.jobs.relay_outbox_job"

MAX_DELIVERY_RETRIES = 5
# How long finished jobs stay visible; while they do, a re-relay is recognised by job id.
RESULT_TTL_SECONDS = 24 * 3600
FAILURE_TTL_SECONDS = 7 * 24 * 3600


def redis_connection(app: Flask) -> redis.Redis:
    """The app's Redis client (one pool per app), failing fast when Redis is away.

    Raises RuntimeError when the app has no REDIS_URL.
    """
    url = runtime.settings(app)["REDIS_URL"]
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
    return Retry(max=MAX_DELIVERY_RETRIES, interval=list(runtime.settings(app)["NOTIFY_RETRY_INTERVALS"]))
