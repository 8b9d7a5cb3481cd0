"""Outbox -> relay -> RQ -> handler, with a real Redis and a real rq SimpleWorker."""

from __future__ import annotations

import pytest
from rq import Queue, SimpleWorker
from rq.job import Job, JobStatus
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from ecom.errors import NotFound
from ecom.extensions import db
from ecom.notifications.channels import DeliveryFailed
from ecom.notifications.models import Notification, OutboxEvent
from ecom.notifications.queue_stats import failed_jobs, queue_rows, queue_stats, retry_failed_job
from ecom.notifications.queues import DEFAULT, NOTIFICATIONS, redis_connection
from ecom.notifications.services import emit
from tests.conftest import make_test_app
from tests.workers.conftest import closed_port, delivery_job_id, order_data
from workers.jobs import relay_once


def run_worker(app) -> None:
    """One burst of a real rq SimpleWorker in this process (inside the app context)."""
    connection = redis_connection(app)
    queues = [Queue(name, connection=connection) for name in (NOTIFICATIONS, DEFAULT)]
    SimpleWorker(queues, connection=connection).work(burst=True)


def emit_committed(event_type="ORDER_PLACED", **data) -> str:
    event = emit(event_type, order_data(**data))
    event_id = event.id
    db.session.commit()
    return event_id


def notifications() -> list[Notification]:
    db.session.expire_all()
    return list(db.session.scalars(select(Notification).order_by(Notification.id)))


def outbox() -> list[OutboxEvent]:
    db.session.expire_all()
    return list(db.session.scalars(select(OutboxEvent).order_by(OutboxEvent.created_at)))


def test_event_emitted_relayed_and_processed_gives_exactly_one_notification(queue_app):
    # given a committed event (which also nudged a relay job onto the default queue)
    event_id = emit_committed(email="rq@example.com")

    # when the relay runs and a worker processes the queues
    result = relay_once()
    run_worker(queue_app)

    # then the event became one RQ delivery job that delivered one email
    assert result.enqueued == 1
    [row] = notifications()
    assert (row.event_id, row.recipient, row.status) == (event_id, "rq@example.com", "sent")
    job = Job.fetch(delivery_job_id(event_id), connection=redis_connection(queue_app))
    assert job.get_status() == JobStatus.FINISHED
    assert outbox()[0].dispatched_at is not None


def test_commit_nudges_a_relay_job_so_the_worker_alone_delivers(queue_app):
    emit_committed(email="nudged@example.com")
    assert Queue(DEFAULT, connection=redis_connection(queue_app)).count == 1

    run_worker(queue_app)

    assert [n.recipient for n in notifications()] == ["nudged@example.com"]


def test_the_same_event_relayed_twice_is_enqueued_once_and_notifies_once(queue_app):
    event_id = emit_committed()
    assert relay_once().enqueued == 1

    # when the row is relayed again (as after a crash between enqueue and commit)
    db.session.execute(update(OutboxEvent).values(dispatched_at=None))
    db.session.commit()
    again = relay_once()

    # then the relay recognised the job and enqueued nothing new
    assert (again.enqueued, again.already_queued) == (0, 1)
    assert Queue(NOTIFICATIONS, connection=redis_connection(queue_app)).job_ids == [delivery_job_id(event_id)]
    run_worker(queue_app)
    assert len(notifications()) == 1


def test_a_replay_after_the_job_expired_still_notifies_once(queue_app):
    emit_committed()
    relay_once()
    run_worker(queue_app)
    connection = redis_connection(queue_app)
    for job_id in Queue(NOTIFICATIONS, connection=connection).finished_job_registry.get_job_ids():
        Job.fetch(job_id, connection=connection).delete()

    db.session.execute(update(OutboxEvent).values(dispatched_at=None))
    db.session.commit()
    assert relay_once().enqueued == 1
    run_worker(queue_app)

    assert len(notifications()) == 1


def test_redis_down_keeps_events_with_attempts_then_real_redis_drains_them(queue_app, database_url):
    # given an app whose Redis is a closed port
    down = make_test_app(database_url, REDIS_URL=f"redis://127.0.0.1:{closed_port()}/0")
    with down.app_context():
        # when events are emitted (the after-commit nudge fails quietly) and the relay runs twice
        ids = [emit_committed(email=f"c{i}@example.com") for i in range(3)]
        first = relay_once(app=down)
        second = relay_once(app=down)
        db.session.remove()
        db.engine.dispose()

    # then nothing was lost: every event is still undispatched, with its attempts and the error
    assert (first.failed, second.failed) == (3, 3)
    rows = outbox()
    assert [r.id for r in rows] == ids
    assert all(r.dispatched_at is None and r.attempts == 2 for r in rows)
    assert all("ConnectionError" in r.last_error for r in rows)
    assert queue_stats(queue_app)["outbox"]["backlog"] == 3

    # when the relay runs against the real Redis and a worker runs
    drained = relay_once()
    run_worker(queue_app)

    # then each event gave exactly one notification and the outbox is empty
    assert drained.enqueued == 3
    assert sorted(n.event_id for n in notifications()) == sorted(ids)
    assert all(r.dispatched_at is not None and r.last_error is None for r in outbox())
    assert queue_stats(queue_app)["outbox"]["backlog"] == 0


def test_a_job_that_keeps_failing_ends_in_the_failed_registry_with_its_error(queue_app):
    # given SMTP that refuses connections (retries are immediate in tests)
    queue_app.config.update(MAIL_BACKEND="smtp", SMTP_HOST="127.0.0.1", SMTP_PORT=closed_port())
    event_id = emit_committed(email="unlucky@example.com")
    relay_once()

    # when the worker runs it through all its retries
    run_worker(queue_app)

    # then the job is parked in the failed registry with the error, after 1 + 5 attempts
    connection = redis_connection(queue_app)
    job = Job.fetch(event_id, connection=connection)
    assert job.get_status() == JobStatus.FAILED
    assert event_id in Queue(NOTIFICATIONS, connection=connection).failed_job_registry
    assert job.retries_left == 0
    error = job.latest_result().exc_string
    assert "DeliveryFailed" in error and "SMTP 127.0.0.1" in error
    [listed] = failed_jobs(queue_app)
    assert listed["id"] == event_id and "SMTP 127.0.0.1" in listed["error"]
    assert (listed["queue"], listed["func_name"]) == (NOTIFICATIONS, "workers.jobs.deliver_event")
    assert listed["failed_at"] is not None
    assert queue_stats(queue_app)["failed"] == 1
    # and the delivery row says failed with the error - one row, however many attempts
    [row] = notifications()
    assert row.status == "failed" and "SMTP 127.0.0.1" in row.error

    # when mail works again and the back office retries the job
    queue_app.config.update(MAIL_BACKEND="console")
    retry_failed_job(queue_app, event_id)
    run_worker(queue_app)

    # then the same row is now sent
    [sent] = notifications()
    assert (sent.id, sent.status) == (row.id, "sent")
    assert failed_jobs(queue_app) == []


def test_retrying_an_unknown_job_is_not_found(queue_app):
    with pytest.raises(NotFound):
        retry_failed_job(queue_app, "no-such-job")


def test_queue_stats_reports_depths_backlog_and_redis_errors(queue_app, database_url):
    emit_committed()
    emit_committed()

    before = queue_stats(queue_app)
    relay_once()
    after = queue_stats(queue_app)

    assert before["redis"] == "ok" and before["mode"] == "queue"
    assert before["outbox"]["backlog"] == 2 and before["outbox"]["oldest_age_seconds"] >= 0
    assert before["queues"][DEFAULT]["queued"] == 1  # the after-commit relay request
    assert after["queues"][NOTIFICATIONS]["queued"] == 1  # one job delivers both events
    assert after["outbox"]["backlog"] == 0
    assert [row["name"] for row in queue_rows(after)] == [NOTIFICATIONS, DEFAULT]
    assert queue_rows(after)[0]["queued"] == 1

    down = make_test_app(database_url, REDIS_URL=f"redis://127.0.0.1:{closed_port()}/0")
    assert queue_stats(down)["redis"].startswith("error")


def test_concurrent_relays_skip_each_others_locked_rows(postgres, queue_app):
    # given two events, one of them locked by another relay's transaction
    locked_id = emit_committed(email="locked@example.com")
    free_id = emit_committed(email="free@example.com")
    with Session(bind=db.engine) as other_relay:
        other_relay.execute(
            select(OutboxEvent).where(OutboxEvent.id == locked_id).with_for_update()
        ).all()

        # when this relay runs meanwhile
        result = relay_once()

        # then it took only the free row, without waiting for the lock
        assert result.enqueued == 1
        queued = Queue(NOTIFICATIONS, connection=redis_connection(queue_app)).job_ids
        assert queued == [delivery_job_id(free_id)]
        other_relay.rollback()

    assert relay_once().enqueued == 1


def test_a_batch_delivers_every_event_and_retries_only_the_one_that_failed_alone(queue_app, monkeypatch):
    from ecom.notifications import handler

    # given three events relayed together, and mail that fails for one recipient only
    sent = []

    def send_email(settings, to, content):
        if to == "bounce@example.com" and not mail_fixed:
            raise DeliveryFailed("mailbox unavailable")
        sent.append(to)

    mail_fixed = False
    monkeypatch.setattr(handler, "send_email", send_email)
    ids = [emit_committed(email=email) for email in ("a@example.com", "bounce@example.com", "c@example.com")]
    result = relay_once()
    connection = redis_connection(queue_app)
    assert result.enqueued == 3
    assert Queue(NOTIFICATIONS, connection=connection).count == 1  # one job carries the three events

    # when the worker runs the batch and the failed event's own retries
    run_worker(queue_app)

    # then the others were sent once each, and only the failed event was retried, as a job of its own
    assert sent == ["a@example.com", "c@example.com"]
    [listed] = failed_jobs(queue_app)
    assert listed["id"] == ids[1] and "mailbox unavailable" in listed["error"]
    assert listed["func_name"] == "workers.jobs.deliver_event"
    assert Job.fetch(ids[1], connection=connection).retries_left == 0
    assert {n.recipient: n.status for n in notifications()} == {
        "a@example.com": "sent", "bounce@example.com": "failed", "c@example.com": "sent"}

    # when mail works again and the back office retries that one job
    mail_fixed = True
    retry_failed_job(queue_app, ids[1])
    run_worker(queue_app)

    # then it alone is delivered; nothing else is sent again
    assert sent == ["a@example.com", "c@example.com", "bounce@example.com"]
    assert {n.status for n in notifications()} == {"sent"}


def test_a_relay_round_larger_than_a_batch_becomes_several_jobs(queue_app, monkeypatch):
    from ecom.notifications import relay

    monkeypatch.setattr(relay, "DELIVERY_BATCH", 2)
    for n in range(5):
        emit_committed(email=f"b{n}@example.com")

    assert relay_once().enqueued == 5
    assert Queue(NOTIFICATIONS, connection=redis_connection(queue_app)).count == 3
    run_worker(queue_app)
    assert sorted(n.recipient for n in notifications()) == [f"b{n}@example.com" for n in range(5)]
