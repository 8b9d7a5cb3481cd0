"""The worker ``flask worker`` runs: in-process, one app context per job."""

from __future__ import annotations

import os

from flask import current_app
from rq import Queue, SimpleWorker, Worker

from ecom.extensions import db
from ecom.notifications.models import OutboxEvent
from ecom.notifications.queues import NOTIFICATIONS, redis_connection
from workers.worker import AppWorker, RecoverableDequeue, make_worker, worker_connection


def leave_an_uncommitted_row() -> dict:
    """A job that adds a row to the session and neither commits nor rolls back."""
    db.session.add(OutboxEvent(type="ORDER_PAID", payload={}))
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
