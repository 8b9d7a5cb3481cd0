"""The embedded default (no REDIS_URL): events handled in-process right after the commit."""

from __future__ import annotations

import threading

from sqlalchemy import select

from ecom.extensions import db
from ecom.notifications.models import Notification, OutboxEvent
from ecom.notifications.outbox import dispatch_mode, sweep_outbox_inline
from ecom.notifications.services import emit
from tests.factories import UserFactory
from tests.workers.conftest import closed_port, order_data
from workers.periodic import start_background_timer


def rows(model):
    db.session.expire_all()
    return list(db.session.scalars(select(model)))


def test_an_emitted_event_is_delivered_after_the_commit(inline_app):
    assert dispatch_mode(inline_app) == "inline"
    # given an event emitted in a transaction
    event = emit("ORDER_PLACED", order_data("inline@example.com"))
    event_id = event.id

    # then nothing is delivered before the commit
    assert rows(Notification) == []

    # when the transaction commits
    db.session.commit()

    # then the customer was notified and the event marked dispatched
    [notification] = rows(Notification)
    assert (notification.event_id, notification.recipient, notification.status) == (
        event_id, "inline@example.com", "sent")
    [outbox] = rows(OutboxEvent)
    assert outbox.dispatched_at is not None and outbox.attempts == 0


def test_a_rolled_back_event_is_never_delivered(inline_app):
    emit("ORDER_PLACED", order_data())
    db.session.rollback()

    UserFactory()
    db.session.commit()

    assert rows(Notification) == [] and rows(OutboxEvent) == []


def test_savepoints_neither_deliver_early_nor_forget_the_events_before_them(inline_app):
    # given an event, then a savepoint whose own event is kept, then one that is rolled back
    # (a CSV import: a good row, then a bad row)
    emit("ORDER_PLACED", order_data("first@example.com"))
    with db.session.begin_nested():
        emit("ORDER_PLACED", order_data("kept@example.com"))
    assert rows(Notification) == []  # a savepoint's commit is not the commit
    savepoint = db.session.begin_nested()
    emit("ORDER_PLACED", order_data("rolled-back@example.com"))
    savepoint.rollback()

    # when the transaction commits
    db.session.commit()

    # then the events that were committed are delivered at once, the rolled-back one never
    assert sorted(n.recipient for n in rows(Notification)) == ["first@example.com", "kept@example.com"]
    assert all(event.dispatched_at is not None for event in rows(OutboxEvent))


def test_low_stock_in_process_reaches_merchandisers_and_admins(inline_app):
    UserFactory(role="admin", email="admin@example.com")
    UserFactory(role="merchandiser", email="merch@example.com")
    UserFactory(role="customer", email="shopper@example.com")
    db.session.commit()

    emit("LOW_STOCK", {"sku": "TEA-1", "available": 2, "low_stock_threshold": 5})
    db.session.commit()

    assert sorted(n.recipient for n in rows(Notification)) == ["admin@example.com", "merch@example.com"]


def test_failed_delivery_does_not_break_the_commit_and_the_sweep_delivers_later(inline_app):
    # given SMTP that cannot be reached
    inline_app.config.update(MAIL_BACKEND="smtp", SMTP_HOST="127.0.0.1", SMTP_PORT=closed_port())
    emit("ORDER_PAID", order_data("later@example.com"))

    # when the transaction commits, it succeeds regardless
    db.session.commit()

    # then the event stays in the outbox with the error, and the delivery is recorded as failed
    [outbox] = rows(OutboxEvent)
    assert outbox.dispatched_at is None and outbox.attempts == 1
    assert "SMTP 127.0.0.1" in outbox.last_error
    [failed] = rows(Notification)
    assert failed.status == "failed"

    # when mail works again and the periodic sweep runs
    inline_app.config.update(MAIL_BACKEND="console")
    handled = sweep_outbox_inline(inline_app)

    # then the same delivery row is now sent and the event dispatched
    assert handled == 1
    [sent] = rows(Notification)
    assert (sent.id, sent.status) == (failed.id, "sent")
    assert rows(OutboxEvent)[0].dispatched_at is not None


def test_the_background_timer_does_not_start_when_disabled(inline_app):
    # Tests run with EXPIRY_INTERVAL_SECONDS=0 and TESTING: no thread may start.
    assert start_background_timer(inline_app) is False
    assert not any(t.name == "ecom-periodic" for t in threading.enumerate())


def test_the_background_timer_starts_once_per_process(inline_app):
    inline_app.config.update(EXPIRY_INTERVAL_SECONDS=3600)

    started = [start_background_timer(inline_app) for _ in range(3)]

    assert started.count(True) <= 1  # another test may have started it already
    assert [t.name for t in threading.enumerate()].count("ecom-periodic") == 1
