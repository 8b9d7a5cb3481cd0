"""A worker killed between dequeuing a job and starting it: the job is recovered and delivered once.

The kill is reproduced exactly: the job is popped the way the worker pops it
(its own dequeue, on real Redis) and the worker is then dropped without
another command, as ``kill -9`` would leave things.
"""

from __future__ import annotations

import threading
import time
from datetime import timedelta

import pytest
import redis
from rq import Queue, SimpleWorker
from rq.exceptions import DequeueTimeout
from rq.job import Job, JobStatus
from rq.registry import FailedJobRegistry, ScheduledJobRegistry, StartedJobRegistry
from rq.utils import now as rq_now
from sqlalchemy import select

from ecom.extensions import db
from ecom.notifications.models import Notification
from ecom.notifications.queues import (
    DEFAULT,
    MAX_DELIVERY_RETRIES,
    NOTIFICATIONS,
    QUEUE_NAMES,
    redis_connection,
)
from ecom.notifications.services import emit
from tests.workers.conftest import delivery_job_id, order_data
from workers.jobs import relay_once
from workers.worker import RecoverableQueue, make_worker, worker_connection

pytestmark = pytest.mark.slow


def relayed_event(email: str) -> str:
    """A committed ORDER_PAID event, relayed: its delivery job (id = event id) is on the queue."""
    event_id = emit("ORDER_PAID", order_data(email)).id
    db.session.commit()
    assert relay_once().enqueued == 1
    return event_id


def where_is(job_id: str, connection) -> list[str]:
    """Every list and registry of our queues holding the job."""
    places = []
    for name in QUEUE_NAMES:
        queue = Queue(name, connection=connection)
        if job_id in queue.job_ids:
            places.append(f"{name} queue")
        if job_id in queue.intermediate_queue.get_job_ids():
            places.append(f"{name} intermediate list")
        for registry in (StartedJobRegistry, ScheduledJobRegistry, FailedJobRegistry):
            if job_id in registry(name, connection=connection).get_job_ids(cleanup=False):
                places.append(f"{name} {registry.__name__}")
    return places


def assert_recovered_once(event_id: str, connection, smtp_server) -> None:
    """Run again after one retry: finished, one email, one sent row, in no list or registry."""
    job = Job.fetch(delivery_job_id(event_id), connection=connection)
    assert job.get_status() == JobStatus.FINISHED
    assert job.retries_left == MAX_DELIVERY_RETRIES - 1
    assert [envelope.rcpt_tos for envelope in smtp_server.messages] == [["survivor@example.com"]]
    assert sent_rows(event_id) == [("survivor@example.com", "sent")]
    assert where_is(delivery_job_id(event_id), connection) == []


def maintenance_twice(run_pass, monkeypatch) -> None:
    """Two maintenance passes of the workers, the second (as in production) over a minute later.

    rq fails a job in an intermediate list only when a pass finds it there
    over a minute after an earlier pass first saw it; the clock of the second
    pass is moved forward instead of waiting.
    """
    run_pass()
    monkeypatch.setattr("rq.intermediate_queue.now", lambda: rq_now() + timedelta(minutes=2))
    run_pass()


def sent_rows(event_id: str) -> list[tuple[str, str]]:
    db.session.expire_all()
    return [(row.recipient, row.status) for row in db.session.scalars(
        select(Notification).where(Notification.event_id == event_id))]


@pytest.fixture
def smtp_app(queue_app, smtp_server):
    queue_app.config.update(MAIL_BACKEND="smtp", SMTP_HOST="127.0.0.1", SMTP_PORT=smtp_server.port,
                            SMTP_USE_TLS=False)
    return queue_app


def test_rqs_own_dequeue_from_two_queues_loses_the_job_of_a_worker_killed_after_it(queue_app, monkeypatch):
    # given a relayed event, and rq's stock worker on both queues (as `flask worker` was)
    event_id = relayed_event("lost@example.com")
    connection = redis_connection(queue_app)

    def stock_worker():
        queues = [Queue(name, connection=connection) for name in QUEUE_NAMES]
        return SimpleWorker(queues, connection=connection)

    # when that worker dequeues the job and is killed before starting it
    job, _ = stock_worker().dequeue_job_and_maintain_ttl(timeout=None)
    assert job.id == delivery_job_id(event_id)

    # then the job is "queued" yet in no list and no registry, and the workers' maintenance never
    # brings it back: nothing is ever delivered (the relay skips it: its job exists)
    assert Job.fetch(delivery_job_id(event_id), connection=connection).get_status() == JobStatus.QUEUED
    assert where_is(delivery_job_id(event_id), connection) == []
    maintenance_twice(lambda: stock_worker().work(burst=True), monkeypatch)
    assert where_is(delivery_job_id(event_id), connection) == []
    assert relay_once().dispatched == 0
    assert sent_rows(event_id) == []


def test_a_job_whose_worker_was_killed_right_after_dequeuing_it_is_delivered_exactly_once(
    smtp_app, smtp_server, monkeypatch
):
    # given a relayed event, and the production worker on both queues
    event_id = relayed_event("survivor@example.com")
    connection = redis_connection(smtp_app)
    worker = make_worker(smtp_app, connection=worker_connection(smtp_app))
    assert [queue.name for queue in worker.queues] == [NOTIFICATIONS, DEFAULT]

    # when it dequeues the job and is killed before starting it
    job, _ = worker.dequeue_job_and_maintain_ttl(timeout=None)
    assert job.id == delivery_job_id(event_id)
    del worker

    # then the job is kept in the notifications queue's intermediate list, where rq looks for it
    assert where_is(delivery_job_id(event_id), connection) == [f"{NOTIFICATIONS} intermediate list"]

    # when workers start again, and their maintenance runs twice
    maintenance_twice(lambda: make_worker(smtp_app, connection=worker_connection(smtp_app)).work(burst=True),
                      monkeypatch)

    # then the job was failed into one retry and run: one email, one sent row, nothing left behind
    assert_recovered_once(event_id, connection, smtp_server)


def test_a_starting_job_moves_from_the_intermediate_list_to_the_started_registry_and_is_recovered_once(
    smtp_app, smtp_server, monkeypatch
):
    # given a job the production worker dequeued
    event_id = relayed_event("survivor@example.com")
    connection = redis_connection(smtp_app)
    worker = make_worker(smtp_app, connection=worker_connection(smtp_app))
    job, _ = worker.dequeue_job_and_maintain_ttl(timeout=None)

    # when the worker registers the job's execution and is killed there
    worker.prepare_execution(job)
    del worker

    # then the job is in the started registry only
    assert where_is(delivery_job_id(event_id), connection) == [f"{NOTIFICATIONS} StartedJobRegistry"]

    # when the abandoned-job cleanup runs (clock moved past the dead worker's heartbeat), then the
    # workers run, their maintenance twice
    StartedJobRegistry(NOTIFICATIONS, connection=connection).cleanup(timestamp=time.time() + 3600)
    assert where_is(delivery_job_id(event_id), connection) == [f"{NOTIFICATIONS} queue"]
    maintenance_twice(lambda: make_worker(smtp_app, connection=worker_connection(smtp_app)).work(burst=True),
                      monkeypatch)

    # then it ran once more, and once only: it used one retry, sent one email
    assert_recovered_once(event_id, connection, smtp_server)


def test_a_job_that_starts_leaves_the_intermediate_list(queue_app):
    # given jobs on both queues
    event_id = relayed_event("buyer@example.com")
    connection = redis_connection(queue_app)
    other = Queue(DEFAULT, connection=connection).enqueue("workers.jobs.purge_guest_carts_job")

    # when the production worker runs them
    assert make_worker(queue_app, connection=worker_connection(queue_app)).work(burst=True)

    # then both finished and no copy is left in any intermediate list
    for job_id in (delivery_job_id(event_id), other.id):
        assert Job.fetch(job_id, connection=connection).get_status() == JobStatus.FINISHED
        assert where_is(job_id, connection) == []
    assert sent_rows(event_id) == [("buyer@example.com", "sent")]


@pytest.mark.parametrize("queue_name", [NOTIFICATIONS, DEFAULT])
def test_an_idle_worker_takes_a_job_arriving_on_any_of_its_queues(redis_url, queue_name):
    # given a worker blocked on empty queues
    connection = redis_connection_for(redis_url)
    queues = [RecoverableQueue(name, connection=connection) for name in QUEUE_NAMES]
    got: list = []

    def dequeue() -> None:
        got.append(RecoverableQueue.dequeue_any(queues, 60, connection))

    waiting = threading.Thread(target=dequeue, daemon=True)
    waiting.start()
    try:
        wait_until_blocked(connection)

        # when a job arrives on one of them
        job = Queue(queue_name, connection=connection).enqueue("workers.jobs.purge_guest_carts_job")
    finally:
        waiting.join(90)

    # then the worker got it, keeping its copy in that queue's intermediate list
    [(dequeued, queue)] = got
    assert (dequeued.id, queue.name) == (job.id, queue_name)
    assert Queue(queue_name, connection=connection).intermediate_queue.get_job_ids() == [job.id]


def test_a_dequeue_from_empty_queues_times_out_or_returns_none(redis_url):
    connection = redis_connection_for(redis_url)
    queues = [RecoverableQueue(name, connection=connection) for name in QUEUE_NAMES]

    assert RecoverableQueue.dequeue_any(queues, None, connection) is None
    with pytest.raises(DequeueTimeout):
        RecoverableQueue.dequeue_any(queues, 1, connection)


def redis_connection_for(url: str) -> redis.Redis:
    return redis.Redis.from_url(url)


def wait_until_blocked(connection) -> None:
    """Until another client of this Redis database is blocked in BLMOVE."""
    db_index = connection.connection_pool.connection_kwargs.get("db", 0)
    for _ in range(600):
        if any(client.get("cmd") == "blmove" and int(client.get("db", -1)) == db_index
               for client in connection.client_list()):
            return
        time.sleep(0.05)
    raise AssertionError("the dequeue never blocked")
