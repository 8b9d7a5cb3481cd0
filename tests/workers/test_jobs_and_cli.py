"""Periodic jobs, the expiry job and the CLI commands of the workers area."""

from __future__ import annotations

import pytest
from rq import Queue, SimpleWorker
from rq.job import Job
from sqlalchemy import select

from ecom.extensions import db
from ecom.notifications.models import Notification, OutboxEvent
from ecom.notifications.queues import DEFAULT, NOTIFICATIONS, redis_connection
from ecom.notifications.services import emit
from tests.workers.conftest import order_data
from workers import periodic
from workers.jobs import expire_reservations_job, run_periodic, schedule_all_periodic


@pytest.fixture
def fake_expiry(monkeypatch):
    """Stands in for ecom.commerce.expiry: one overdue order, whose expiry emits its cancellation."""
    calls = []

    def expire_order(order_id, now):
        calls.append(order_id)
        emit("ORDER_CANCELLED", order_data("late@example.com", reason="Reservation expired"))
        return "ORD-20260101-0101"

    monkeypatch.setattr(periodic, "overdue_order_ids", lambda now: [101])
    monkeypatch.setattr(periodic, "expire_order", expire_order)
    return calls


def recipients() -> list[str]:
    db.session.expire_all()
    return [n.recipient for n in db.session.scalars(select(Notification))]


def test_expiry_job_commits_and_its_events_are_delivered(inline_app, fake_expiry):
    expired = expire_reservations_job()

    assert expired == ["ORD-20260101-0101"]
    assert fake_expiry == [101]
    assert recipients() == ["late@example.com"]


def test_expire_reservations_command_reports_the_orders(inline_app, fake_expiry):
    result = inline_app.test_cli_runner().invoke(args=["expire-reservations"])

    assert result.exit_code == 0, result.output
    assert "expired 1 order(s): ORD-20260101-0101" in result.output


def test_retry_gateway_calls_command_runs_the_retries_once_and_prints_the_counts(inline_app, monkeypatch):
    # given recorded gateway calls, as the retry job would find them
    runs = []

    class Counts:
        def as_dict(self):
            return {"refunds_made": 2, "refunds_pending": 1, "intents_cancelled": 0,
                    "cancellations_pending": 0}

    def retry_gateway_calls(*args, **kwargs):
        runs.append((args, kwargs))
        return Counts()

    monkeypatch.setattr(periodic, "retry_gateway_calls", retry_gateway_calls)

    # when the command runs
    result = inline_app.test_cli_runner().invoke(args=["retry-gateway-calls"])

    # then it made one pass, at the current time, and said what it did
    assert result.exit_code == 0, result.output
    assert runs == [((), {})]
    assert "refunds made 2, refunds pending 1, intents cancelled 0, cancellations pending 0" in result.output


def test_relay_outbox_command_without_redis_handles_events_in_process(inline_app):
    # an event left behind undispatched (as if the process died right after its commit)
    db.session.add(OutboxEvent(type="ORDER_PAID", payload={"type": "ORDER_PAID", "data": order_data()}))
    db.session.flush()
    db.session.info.clear()  # forget it for the after-commit hook
    db.session.commit()
    assert recipients() == []

    result = inline_app.test_cli_runner().invoke(args=["relay-outbox"])

    assert result.exit_code == 0, result.output
    assert "handled in-process 1" in result.output
    assert recipients() == ["buyer@example.com"]


def test_relay_outbox_command_with_redis_enqueues(queue_app):
    emit("ORDER_PLACED", order_data())
    db.session.commit()

    result = queue_app.test_cli_runner().invoke(args=["relay-outbox"])

    assert result.exit_code == 0, result.output
    assert "enqueued 1" in result.output
    assert Queue(NOTIFICATIONS, connection=redis_connection(queue_app)).count == 1


def test_worker_command_refuses_to_start_without_redis(inline_app):
    result = inline_app.test_cli_runner().invoke(args=["worker", "--burst"])

    assert result.exit_code != 0
    assert "REDIS_URL is not set" in result.output


def test_worker_command_processes_the_queues_in_the_app_context(queue_app):
    emit("ORDER_PLACED", order_data("cli-worker@example.com"))
    db.session.commit()  # nudges a relay job; the worker relays, then delivers

    result = queue_app.test_cli_runner().invoke(args=["worker", "--burst"])

    assert result.exit_code == 0, result.output
    assert recipients() == ["cli-worker@example.com"]


def test_periodic_jobs_are_scheduled_once_per_slot(queue_app):
    queue_app.config.update(RELAY_INTERVAL_SECONDS=3600, EXPIRY_INTERVAL_SECONDS=3600,
                            CART_PURGE_INTERVAL_SECONDS=3600, GATEWAY_RETRY_INTERVAL_SECONDS=3600)
    registry = Queue(DEFAULT, connection=redis_connection(queue_app)).scheduled_job_registry

    # when several workers start and each schedules the periodic jobs
    first = schedule_all_periodic(queue_app)
    second = schedule_all_periodic(queue_app)

    # then there is one scheduled job per periodic task
    assert first == second
    assert sorted(registry.get_job_ids()) == sorted(first)
    assert {job_id.rsplit("-", 1)[0] for job_id in first} == {
        "periodic-relay-outbox", "periodic-expire-reservations", "periodic-purge-guest-carts",
        "periodic-gateway-retries"}


def test_a_periodic_tick_schedules_the_next_one_then_does_its_work(queue_app):
    queue_app.config.update(RELAY_INTERVAL_SECONDS=3600)
    connection = redis_connection(queue_app)
    emit("ORDER_PAID", order_data("tick@example.com"))
    db.session.commit()
    default = Queue(DEFAULT, connection=connection)
    default.empty()  # drop the after-commit nudge: the periodic tick alone must relay

    # when one tick of the periodic relay runs on a worker
    default.enqueue(run_periodic, "relay-outbox", job_id="periodic-relay-outbox-now")
    queues = [default, Queue(NOTIFICATIONS, connection=connection)]
    SimpleWorker(queues, connection=connection).work(burst=True)

    # then it relayed the event (delivered by the same burst) and the next tick is scheduled
    assert recipients() == ["tick@example.com"]
    [next_tick] = default.scheduled_job_registry.get_job_ids()
    assert next_tick.startswith("periodic-relay-outbox-")
    assert Job.fetch(next_tick, connection=connection).func_name == "workers.jobs.run_periodic"


def test_a_zero_interval_disables_a_periodic_job(queue_app):
    queue_app.config.update(RELAY_INTERVAL_SECONDS=0, EXPIRY_INTERVAL_SECONDS=0,
                            CART_PURGE_INTERVAL_SECONDS=0, GATEWAY_RETRY_INTERVAL_SECONDS=0)

    assert schedule_all_periodic(queue_app) == []
