"""Redis connections, queue names and the retry policy shared by the web app and the workers."""

from __future__ import annotations

import os

import redis
from flask import Flask
from rq import Queue, Retry

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


def setting(app: Flask, name: str, default: str) -> str:
    """A setting the shared config module does not define: app config, then environment."""
    value = app.config.get(name)
    if value in (None, ""):
        value = os.environ.get(name) or default
    return str(value)


def redis_connection(app: Flask) -> redis.Redis:
    """The app's Redis client (one pool per app), failing fast when Redis is away.

    Raises RuntimeError when the app has no REDIS_URL.
    """
    url = app.config.get("REDIS_URL")
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
    """RQ Retry for deliveries; NOTIFY_RETRY_INTERVALS="10,30,60" overrides the back-off."""
    raw = setting(app, "NOTIFY_RETRY_INTERVALS", ",".join(map(str, DEFAULT_RETRY_INTERVALS)))
    intervals = [int(part) for part in raw.split(",") if part.strip()]
    return Retry(max=MAX_DELIVERY_RETRIES, interval=intervals or list(DEFAULT_RETRY_INTERVALS))
