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

No job lost between its dequeue and its start (``RecoverableQueue``)
----------------------------------------------------------------------
The worker listens on two queues. rq 2.12 dequeues from several queues with
BLPOP/LPOP, which keeps no copy: a job popped by a worker killed before the
job entered the started registry was in no list and no registry - never run,
never retried, and (its hash still existing) never re-relayed, because the
relay only enqueues an event whose job does not exist. With ONE queue rq
instead moves the job (LMOVE/BLMOVE, atomic) into the queue's intermediate
list, which it leaves once the job is in the started registry. Every
worker's maintenance (every ``maintenance_interval``: 10 minutes) fails a job
it finds in that list, not started, over a minute after a pass first saw it
there - so 10 to 20 minutes after the crash - and the failure goes through
the job's ``Retry`` (parked in the failed registry when no retry is left, as
after a crash mid-job). ``RecoverableQueue`` dequeues
that way from any number of queues, and the workers here take the job out of
the intermediate list in the MULTI that puts it in the started registry
(``RecoverableDequeue``), so it is always in one place rq recovers it from.

Why this and not the alternatives:

* one worker process per queue also gets rq's single-queue path, but doubles
  the processes (and database pools) and needs a supervisor in ``flask worker``
  or a second Procfile line - while any multi-queue ``flask worker`` started
  by hand would reopen the hole;
* a periodic sweep re-enqueuing dispatched events whose job is "queued" yet in
  no list must bound how far back it looks and cannot tell "delivered" from
  "never ran" once a job's hash has expired (events may legitimately have no
  recipient, so the notification rows cannot tell either) without a marker
  written on every delivery; and it would cover the delivery jobs only, not
  the relay and periodic jobs on ``default``.

The price: Redis has no blocking move from several lists. An idle worker
blocks on its first queue (``notifications``: its jobs are picked up at once)
for at most ``POLL_SECONDS``, then looks at the others, so a job arriving on
``default`` while the worker is idle waits up to that long; a busy worker
never blocks. Requires Redis >= 6.2 (LMOVE), as rq's single-queue path does.
"""

from __future__ import annotations

import logging
import os
import re
import time

import redis
from flask import Flask
from rq import Queue, SimpleWorker, Worker
from rq.exceptions import DequeueTimeout, NoSuchJobError
from rq.executions import Execution
from rq.utils import as_text, backend_class
from rq.worker import BaseWorker, WorkerStatus

from ecom.notifications.queues import QUEUE_NAMES
from ecom.notifications.relay import RELAY_JOB_PREFIX


class RecoverableQueue(Queue):
    """An rq queue whose dequeue from several queues keeps a recoverable copy (see the module docstring)."""

    # How long an idle worker blocks on its first queue before it looks at the others again.
    POLL_SECONDS = 0.25

    @classmethod
    def dequeue_any(cls, queues, timeout, connection, job_class=None, serializer=None,
                    death_penalty_class=None):
        """rq's ``dequeue_any``, each job moved into its queue's intermediate list (LMOVE, atomic).

        ``timeout`` None: one pass, None when every queue is empty; otherwise
        raises DequeueTimeout once ``timeout`` seconds passed without a job.
        """
        queues = list(queues)
        if len(queues) == 1:
            return super().dequeue_any(queues, timeout, connection=connection, job_class=job_class,
                                       serializer=serializer, death_penalty_class=death_penalty_class)
        job_cls = backend_class(cls, "job_class", override=job_class)
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            queue, job_id = cls._move_first(queues, connection)
            if job_id is None:
                if deadline is None:
                    return None
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise DequeueTimeout(timeout, [q.key for q in queues])
                queue = queues[0]
                job_id = connection.blmove(queue.key, queue.intermediate_queue_key,
                                           min(cls.POLL_SECONDS, remaining))
                if job_id is None:
                    continue
            try:
                job = job_cls.fetch(as_text(job_id), connection=connection, serializer=serializer)
            except NoSuchJobError:
                # As rq does: skip it; maintenance removes the id from the intermediate list.
                continue
            return job, cls.from_queue_key(queue.key, connection=connection, job_class=job_cls,
                                           serializer=serializer, death_penalty_class=death_penalty_class)

    @staticmethod
    def _move_first(queues, connection):
        """The first queue, in order, that had a job, and the job's id moved to its intermediate list."""
        for queue in queues:
            job_id = connection.lmove(queue.key, queue.intermediate_queue_key)
            if job_id is not None:
                return queue, job_id
        return None, None


class RecoverableDequeue:
    """Worker mixin: dequeue through ``RecoverableQueue``; a job leaves its intermediate list as it starts."""

    queue_class = RecoverableQueue

    def prepare_execution(self, job) -> Execution:
        """rq's ``prepare_execution`` (the job's execution enters the started registry) plus, in the same
        MULTI, the job's removal from its intermediate list: wherever the worker dies, the job is in
        exactly one of the two, and recovered from there once (by the abandoned-job or the
        intermediate-list cleanup). rq removes it only later (in ``prepare_job_execution``), and only
        when the worker has a single queue; that removal now finds nothing to remove.
        """
        # rq 2.12's rq.executions.prepare_execution, plus the LREM: recheck it when rq is upgraded.
        with self.connection.pipeline() as pipeline:
            self.execution = Execution.create(job, self.get_heartbeat_ttl(job), pipeline=pipeline,
                                              worker_name=self.name)
            self.set_state(WorkerStatus.BUSY, pipeline=pipeline)
            intermediate = self.queue_class(job.origin, connection=self.connection).intermediate_queue_key
            pipeline.lrem(intermediate, 1, job.id)
            pipeline.execute()
        return self.execution


class ForkingWorker(RecoverableDequeue, Worker):
    """rq's forking worker (``--fork``), dequeuing recoverably."""


class AppWorker(RecoverableDequeue, SimpleWorker):
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


class RoutineJobLogFilter(logging.Filter):
    """Demotes rq's per-job INFO lines ("Job OK", dequeued, completed) about routine jobs - the
    periodic ticks and the relay runs, several a minute - to DEBUG, so that at INFO the worker log
    shows the deliveries, imports and failures. Warnings and errors about them are untouched."""

    # Job ids (``periodic-<name>-<slot>``, the relay's prefix) and descriptions of routine jobs.
    ROUTINE = re.compile(rf"^(periodic[- ]|{re.escape(RELAY_JOB_PREFIX)}|relay outbox\b)")
    _ANSI = re.compile(r"\x1b\[[0-9;]*m")

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno != logging.INFO or not self._is_routine(record):
            return True
        record.levelno, record.levelname = logging.DEBUG, logging.getLevelName(logging.DEBUG)
        # The logger let the record through as INFO; as DEBUG it is shown only if DEBUG is on.
        return logging.getLogger(record.name).isEnabledFor(logging.DEBUG)

    def _is_routine(self, record: logging.LogRecord) -> bool:
        args = record.args if isinstance(record.args, tuple) else ()
        return any(isinstance(arg, str) and self.ROUTINE.match(self._ANSI.sub("", arg)) for arg in args)


def install_routine_job_log_filter() -> None:
    """Put ``RoutineJobLogFilter`` on rq's worker logger (once per process)."""
    logger = logging.getLogger("rq.worker")
    if not any(isinstance(f, RoutineJobLogFilter) for f in logger.filters):
        logger.addFilter(RoutineJobLogFilter())


def make_worker(app: Flask, queue_names: tuple[str, ...] = QUEUE_NAMES, *,
                connection: redis.Redis, fork: bool = False) -> BaseWorker:
    """The worker ``flask worker`` runs: in-process (``AppWorker``), or forking per job with ``fork``."""
    from ecom.extensions import db

    engine = db.engine
    engine.dispose()
    # A forked child (a work horse, or rq's scheduler process) must never reuse a pooled connection
    # of its parent.
    os.register_at_fork(after_in_child=lambda: engine.dispose(close=False))
    install_routine_job_log_filter()
    queues = [RecoverableQueue(name, connection=connection) for name in queue_names]
    if fork:
        return ForkingWorker(queues, connection=connection)
    return AppWorker(queues, connection=connection, app=app)


def worker_connection(app: Flask) -> redis.Redis:
    """The worker's own Redis client: rq sets long socket timeouts on it for blocking dequeues."""
    return redis.Redis.from_url(app.config["REDIS_URL"])


def run_worker(worker: BaseWorker, app: Flask, *, burst: bool = False, max_jobs: int | None = None,
               max_idle_time: int | None = None) -> bool:
    """``worker.work`` as production runs it: with the scheduler, at the app's LOG_LEVEL.

    The SMTP sessions its deliveries kept open are closed (QUIT) when it stops.
    """
    from ecom.notifications.channels import close_smtp_sessions

    try:
        return worker.work(with_scheduler=True, burst=burst, max_jobs=max_jobs, max_idle_time=max_idle_time,
                           logging_level=app.config.get("LOG_LEVEL", "INFO"))
    finally:
        close_smtp_sessions()
