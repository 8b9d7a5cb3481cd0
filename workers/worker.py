"""The worker process of ``flask --app wsgi worker`` (and of the workers bench).

By default jobs run in the worker's own process, one app context per job
(``AppWorker``), rather than in rq's default work horse forked per job. A
forked horse starts every job cold: it must not reuse its parent's pooled
PostgreSQL connection, so it opens a new one (a new server backend), and a new
Redis connection - about 60 ms of CPU per notification, which held the
production worker at ~12 notifications/s on the 2-core bench machine.

What the fork bought, and what covers it in-process:

* a crash or ``kill -9`` mid-job: either way the job stays in RQ's started
  registry and the delivery's transaction (claim included) rolls back with
  the connection; RQ's abandoned-job cleanup retries or parks it (see
  ``ecom/notifications/handler.py``);
* job timeouts: rq's SIGALRM death penalty interrupts the job in this process
  (SMTP calls also have their own socket timeout);
* state leaking between jobs: each job gets a fresh app context, so its
  scoped database session is removed when the job ends, committed or not.

``--fork`` keeps rq's forking worker for anyone who wants the isolation.
"""

from __future__ import annotations

import os
import time

import redis
from flask import Flask
from rq import Queue, SimpleWorker, Worker
from rq.worker import BaseWorker

from ecom.notifications.queues import QUEUE_NAMES


class AppWorker(SimpleWorker):
    """rq's in-process worker, running each job inside a fresh app context of ``app``."""

    # rq's fourth INFO line per job would only repeat the result TTL.
    log_result_lifespan = False

    def __init__(self, *args, app: Flask, **kwargs):
        self._default_heartbeat_at: float | None = None
        super().__init__(*args, **kwargs)
        self.app = app

    def perform_job(self, job, queue) -> bool:
        with self.app.app_context():
            return super().perform_job(job, queue)

    # rq sends its default heartbeat three times per job (after the job, before and after the
    # dequeue); one of them keeps the worker's key alive as well as three.
    HEARTBEAT_SPACING_SECONDS = 1.0

    def heartbeat(self, timeout: int | None = None, pipeline=None) -> None:
        """rq's heartbeat (HSET and EXPIRE of the worker's key) in one round trip, at most once a second.

        Only the default heartbeat (worker TTL) is skipped, and only while the
        previous one, with the same TTL, is less than a second old; one with a
        job's TTL is always sent, and makes the next default one due.
        """
        if timeout is not None or pipeline is not None:
            self._default_heartbeat_at = None
        elif (self._default_heartbeat_at is not None
              and time.monotonic() - self._default_heartbeat_at < self.HEARTBEAT_SPACING_SECONDS):
            return
        else:
            self._default_heartbeat_at = time.monotonic()
        if pipeline is not None:
            super().heartbeat(timeout, pipeline=pipeline)
            return
        with self.connection.pipeline(transaction=False) as own:
            super().heartbeat(timeout, pipeline=own)
            own.execute()


def make_worker(app: Flask, queue_names: tuple[str, ...] = QUEUE_NAMES, *,
                connection: redis.Redis, fork: bool = False) -> BaseWorker:
    """The worker ``flask worker`` runs: in-process (``AppWorker``), or forking per job with ``fork``."""
    from ecom.extensions import db

    engine = db.engine
    engine.dispose()
    # A forked child (a work horse, or rq's scheduler process) must never reuse a pooled connection
    # of its parent.
    os.register_at_fork(after_in_child=lambda: engine.dispose(close=False))
    queues = [Queue(name, connection=connection) for name in queue_names]
    if fork:
        return Worker(queues, connection=connection)
    return AppWorker(queues, connection=connection, app=app)


def worker_connection(app: Flask) -> redis.Redis:
    """The worker's own Redis client: rq sets long socket timeouts on it for blocking dequeues."""
    return redis.Redis.from_url(app.config["REDIS_URL"])


def run_worker(worker: BaseWorker, app: Flask, *, burst: bool = False, max_jobs: int | None = None,
               max_idle_time: int | None = None) -> bool:
    """``worker.work`` as production runs it: with the scheduler, at the app's LOG_LEVEL."""
    return worker.work(with_scheduler=True, burst=burst, max_jobs=max_jobs, max_idle_time=max_idle_time,
                       logging_level=app.config.get("LOG_LEVEL", "INFO"))
