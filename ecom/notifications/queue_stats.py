"""Queue depths, failed jobs and the outbox backlog - for /health, /metrics and the back office.

API (each takes the Flask app; call inside or outside an app context):

* ``queue_stats(app) -> dict`` - never raises for Redis trouble; reports it.
* ``queue_rows(stats) -> list[dict]`` - the per-queue part of queue_stats as table rows.
* ``failed_jobs(app, limit=50) -> list[dict]`` - newest first: id, queue, description,
  func_name, args, error (last line), traceback, enqueued_at, failed_at (= ended_at).
* ``retry_failed_job(app, job_id) -> dict`` - requeue one failed job.
  Raises NotFound if no queue's failed registry holds it.
"""

from __future__ import annotations

from datetime import datetime

import redis
from flask import Flask
from rq.job import Job
from rq.registry import FailedJobRegistry
from sqlalchemy import func, select

from ecom import runtime
from ecom.db import as_utc, utcnow
from ecom.errors import NotFound
from ecom.extensions import db
from ecom.notifications.models import OutboxEvent
from ecom.notifications.queues import QUEUE_NAMES, get_queue, redis_connection


def queue_stats(app: Flask) -> dict:
    """Shape::

        {"mode": "queue" | "inline",
         "redis": "ok" | "disabled" | "error: ...",
         "queues": {"notifications": {"queued", "started", "scheduled", "deferred", "failed", "finished"},
                    "default": {...}},
         "failed": total failed jobs,
         "outbox": {"backlog": undispatched events, "retrying": of those with attempts > 0,
                    "oldest_age_seconds": float | None}}
    """
    from ecom.notifications.outbox import dispatch_mode

    stats: dict = {"mode": dispatch_mode(app), "queues": {}, "failed": 0, "outbox": outbox_backlog(app)}
    if not runtime.settings(app)["REDIS_URL"]:
        stats["redis"] = "disabled"
        return stats
    try:
        connection = redis_connection(app)
        for name in QUEUE_NAMES:
            queue = get_queue(app, name, connection=connection)
            depths = {
                "queued": queue.count,
                "started": queue.started_job_registry.count,
                "scheduled": queue.scheduled_job_registry.count,
                "deferred": queue.deferred_job_registry.count,
                "failed": queue.failed_job_registry.count,
                "finished": queue.finished_job_registry.count,
            }
            stats["queues"][name] = depths
            stats["failed"] += depths["failed"]
        stats["redis"] = "ok"
    except redis.RedisError as exc:
        stats["redis"] = f"error: {type(exc).__name__}"
    return stats


def outbox_backlog(app: Flask) -> dict:
    with app.app_context():
        backlog, retrying, oldest = db.session.execute(
            select(
                func.count(OutboxEvent.id),
                func.count(OutboxEvent.id).filter(OutboxEvent.attempts > 0),
                func.min(OutboxEvent.created_at),
            ).where(OutboxEvent.dispatched_at.is_(None))
        ).one()
    age = (utcnow() - as_utc(oldest)).total_seconds() if oldest else None
    return {"backlog": backlog, "retrying": retrying, "oldest_age_seconds": age}


def failed_jobs(app: Flask, limit: int = 50) -> list[dict]:
    """The failed jobs of every queue, newest first: id, queue, description, error, failed_at."""
    connection = redis_connection(app)
    found: list[dict] = []
    for name in QUEUE_NAMES:
        queue = get_queue(app, name, connection=connection)
        registry = queue.failed_job_registry
        job_ids = registry.get_job_ids(0, limit - 1, desc=True)
        for job in Job.fetch_many(job_ids, connection=connection):
            if job is not None:
                found.append(_describe(job, name))
    found.sort(key=lambda job: job["failed_at"] or datetime.min.isoformat(), reverse=True)
    return found[:limit]


def retry_failed_job(app: Flask, job_id: str) -> dict:
    """Put a failed job back on its queue. Raises NotFound if it is not in a failed registry."""
    connection = redis_connection(app)
    for name in QUEUE_NAMES:
        registry = FailedJobRegistry(name, connection=connection)
        if job_id in registry:
            registry.requeue(job_id)
            return {"id": job_id, "queue": name, "status": "queued"}
    raise NotFound(f"No failed job {job_id}.")


def queue_rows(stats: dict) -> list[dict]:
    """``queue_stats(app)["queues"]`` as table rows: ``[{"name", "queued", "started", ...}]``."""
    return [{"name": name, **depths} for name, depths in stats.get("queues", {}).items()]


def _describe(job: Job, queue_name: str) -> dict:
    latest = job.latest_result()
    error = (latest.exc_string if latest else "") or ""
    failed_at = job.ended_at.isoformat() if job.ended_at else None
    return {
        "id": job.id,
        "queue": queue_name,
        "description": job.description,
        "func_name": job.func_name,
        "args": list(job.args or []),
        "error": error.strip().splitlines()[-1] if error.strip() else "",
        "traceback": error,
        "enqueued_at": job.enqueued_at.isoformat() if job.enqueued_at else None,
        "failed_at": failed_at,
        "ended_at": failed_at,  # rq's own name for it
    }
