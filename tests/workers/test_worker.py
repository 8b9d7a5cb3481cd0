"""The worker ``flask worker`` runs: in-process, one app context per job."""

from __future__ import annotations

import os

from flask import current_app
from rq import Queue, SimpleWorker, Worker

from ecom.extensions import db
from ecom.notifications.models import OutboxEvent
from ecom.notifications.queues import NOTIFICATIONS, redis_connection
from workers.worker import AppWorker, RecoverableDequeue, make_worker, worker_connection

# Keeps each job's session alive, so that no later session can be given its id().
_SESSIONS_SEEN: list = []


def leave_an_uncommitted_row() -> dict:
    """A job that adds a row to the session and neither commits nor rolls back."""
    db.session.add(OutboxEvent(type="ORDER_PAID", payload={}))
    _SESSIONS_SEEN.append(db.session())
    return {"pid": os.getpid(), "app": current_app.name, "session": id(db.session())}


def look_at_the_session() -> dict:
    return {"pending": len(db.session.new), "session": id(db.session())}


def test_the_worker_runs_jobs_in_this_process_each_in_a_fresh_app_context(queue_app):
    # given two jobs, the first leaving its session dirty
    connection = redis_connection(queue_app)
    queue = Queue(NOTIFICATIONS, connection=connection)
    first = queue.enqueue(leave_an_uncommitted_row)
    second = queue.enqueue(look_at_the_session)

    # when the production worker runs them
    worker = make_worker(queue_app, connection=worker_connection(queue_app))
    assert worker.work(burst=True)

    # then both ran here, in the app, and the second saw nothing of the first's session
    first.refresh()
    second.refresh()
    assert isinstance(worker, AppWorker)
    assert first.return_value()["pid"] == os.getpid()
    assert first.return_value()["app"] == queue_app.name
    assert second.return_value()["pending"] == 0
    assert second.return_value()["session"] != first.return_value()["session"]
    assert db.session.query(OutboxEvent).count() == 0


def test_fork_gives_rqs_forking_worker(queue_app):
    worker = make_worker(queue_app, connection=worker_connection(queue_app), fork=True)

    assert isinstance(worker, Worker) and not isinstance(worker, SimpleWorker)
    assert isinstance(worker, RecoverableDequeue)


def test_the_default_heartbeat_is_sent_once_per_spacing_and_after_every_job_heartbeat(queue_app):
    # given a registered worker (its spacing made long, so that nothing here depends on the clock)
    connection = redis_connection(queue_app)
    worker = make_worker(queue_app, connection=worker_connection(queue_app))
    worker.HEARTBEAT_SPACING_SECONDS = 3600
    worker.register_birth()

    # when it sends its default heartbeat: the key lives for the worker TTL and records it
    worker.heartbeat()
    assert connection.ttl(worker.key) > worker.worker_ttl
    assert connection.hget(worker.key, "last_heartbeat")

    # when another default one follows within the spacing: it is not sent
    connection.expire(worker.key, 5)
    worker.heartbeat()
    assert connection.ttl(worker.key) <= 5

    # when a heartbeat with a job's TTL is sent, the next default one is sent again
    worker.heartbeat(100)
    assert 5 < connection.ttl(worker.key) <= 100
    worker.heartbeat()
    assert connection.ttl(worker.key) > worker.worker_ttl
    worker.register_death()


def test_the_worker_log_at_info_shows_deliveries_not_the_routine_relay_and_periodic_jobs(queue_app, caplog):
    import logging

    from ecom.notifications.services import emit
    from tests.workers.conftest import delivery_job_id, order_data
    from workers.jobs import run_periodic

    # given an event (its commit enqueues a relay job, which enqueues the delivery) and a periodic tick
    event_id = emit("ORDER_PAID", order_data("logged@example.com")).id
    db.session.commit()
    connection = redis_connection(queue_app)
    Queue("default", connection=connection).enqueue(run_periodic, "purge-guest-carts",
                                                    job_id="periodic-purge-guest-carts-1",
                                                    description="periodic purge-guest-carts")

    # when the production worker runs them with its log at INFO
    caplog.set_level(logging.INFO)
    worker = make_worker(queue_app, connection=worker_connection(queue_app))
    assert worker.work(burst=True, logging_level="INFO")

    # then the delivery's "Job OK" is there, and nothing at INFO about the relay or the periodic tick
    messages = [record.getMessage() for record in caplog.records if record.name == "rq.worker"]
    assert any("Job OK" in m and delivery_job_id(event_id) in m for m in messages)
    assert not [m for m in messages if "periodic" in m or "relay" in m]


def test_routine_job_lines_stay_visible_at_debug():
    import logging

    from workers.worker import RoutineJobLogFilter

    logger = logging.getLogger("rq.worker")
    record = logger.makeRecord("rq.worker", logging.INFO, __file__, 1, "Worker %s: %s: %s (%s)",
                               ("w1", "default", "\x1b[34mJob OK\x1b[39;49;00m", "periodic-relay-outbox-7"),
                               None)
    previous = logger.level
    logger.setLevel(logging.DEBUG)
    try:
        shown = RoutineJobLogFilter().filter(record)
    finally:
        logger.setLevel(previous)

    assert shown and record.levelno == logging.DEBUG and record.levelname == "DEBUG"
