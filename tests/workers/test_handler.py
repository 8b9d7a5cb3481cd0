"""handle_event: rendering, recipients, idempotency, failures - with no Redis involved."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time

import pytest
from sqlalchemy import select, text

import ecom.notifications.handler as handler
from ecom.config import PROJECT_ROOT
from ecom.notifications.channels import DeliveryFailed
from ecom.notifications.handler import event_id_of, handle_event, process_event
from ecom.notifications.models import Channel, DeliveryStatus, EventType, Notification
from ecom.notifications.rendering import render_email, render_sms
from tests.factories import UserFactory
from tests.workers.conftest import closed_port, order_data


def notifications(db, event_id=None) -> list[Notification]:
    query = select(Notification).order_by(Notification.id)
    if event_id:
        query = query.where(Notification.event_id == event_id)
    return list(db.session.scalars(query))


LOW_STOCK_DATA = {"variant_id": 7, "sku": "MUG-RED", "product_name": "Red mug", "available": 1,
                  "low_stock_threshold": 3}


STAFF_ACCOUNT_EVENTS = (EventType.STAFF_INVITED, EventType.PASSWORD_RESET)


@pytest.mark.parametrize("event_type", list(EventType))
def test_every_event_type_renders_an_email_and_an_sms(event_type):
    # given a payload with every field a template may use
    data = order_data(carrier="UPS", tracking_number="1Z999", reason="Customer asked",
                      refund_amount="42.50", link="https://shop.example/admin/password/reset/T0KEN",
                      role="warehouse", valid_hours=1, **LOW_STOCK_DATA)

    # when it is rendered
    email = render_email(event_type, data, shop_name="Tea & Co")
    sms = render_sms(event_type, data, shop_name="Tea & Co")

    # then subject, text, HTML and SMS all carry the event's key facts
    key = {EventType.LOW_STOCK: "MUG-RED", EventType.STAFF_INVITED: "/admin/password/reset/T0KEN",
           EventType.PASSWORD_RESET: "/admin/password/reset/T0KEN"}.get(event_type, "ORD-20260101-0101")
    assert key in email.subject or event_type in STAFF_ACCOUNT_EVENTS  # their key is the link
    assert key in email.text
    assert key in email.html and email.html.lstrip().startswith("<!doctype html>")
    assert key in sms and "\n" not in sms
    # signed with the shop's name (the SHOP_NAME setting); the staff's low-stock text needs no signature
    assert "Tea &amp; Co" in email.html
    if event_type != EventType.LOW_STOCK:
        assert "Tea & Co" in email.text and "Tea & Co" in sms


def test_shipped_email_carries_carrier_and_tracking_number():
    email = render_email(EventType.ORDER_SHIPPED, order_data(carrier="DHL", tracking_number="JD0123<b>"),
                         shop_name="Ecom Shop")

    assert "Carrier: DHL" in email.text
    assert "Tracking number: JD0123<b>" in email.text
    # HTML escapes what the payload says
    assert "JD0123&lt;b&gt;" in email.html


def test_missing_fields_render_without_failing():
    email = render_email(EventType.ORDER_DELIVERED, {}, shop_name="Ecom Shop")
    assert email.subject.startswith("Your order")


def test_unknown_event_type_is_refused(committed_db):
    with pytest.raises(ValueError):
        handle_event({"type": "ORDER_EXPLODED", "data": {}})


def test_customer_event_notifies_the_customer_once(committed_db):
    # given an ORDER_PAID event for a customer
    event = {"id": "evt-paid-1", "type": "ORDER_PAID", "data": order_data("Buyer@Example.com")}

    # when it is handled twice (a replay)
    first = handle_event(event)
    second = handle_event(event)

    # then one email was sent, to the customer, and the replay was a no-op
    assert (first["sent"], first["skipped"]) == (1, 0)
    assert (second["sent"], second["skipped"]) == (0, 1)
    [row] = notifications(committed_db, "evt-paid-1")
    assert (row.channel, row.recipient, row.status) == ("email", "buyer@example.com", "sent")
    assert row.subject == "Payment confirmed for order ORD-20260101-0101"
    assert "42.50 USD" in row.body
    assert row.sent_at is not None and row.error is None


def test_sms_goes_to_the_phone_in_the_shipping_address(committed_db):
    data = order_data(shipping_address={"full_name": "B", "phone": "+15550100"})

    result = handle_event({"id": "evt-sms", "type": "ORDER_SHIPPED", "data": data})

    assert result["sent"] == 2
    assert {(n.channel, n.recipient) for n in notifications(committed_db, "evt-sms")} == {
        ("email", "buyer@example.com"), ("sms", "+15550100")}


def test_event_without_id_gets_a_stable_id_so_a_replay_is_a_noop(committed_db):
    event = {"type": "ORDER_PLACED", "data": order_data()}

    handle_event(dict(event))
    handle_event(dict(event))

    assert len(notifications(committed_db, event_id_of(event))) == 1


def test_low_stock_goes_to_every_active_merchandiser_and_admin(committed_db):
    # given staff of every role, one of them deactivated, and a customer
    admin = UserFactory(role="admin")
    merchandiser = UserFactory(role="merchandiser")
    other_merchandiser = UserFactory(role="merchandiser")
    UserFactory(role="merchandiser", is_active=False)
    UserFactory(role="warehouse")
    UserFactory(role="customer")
    committed_db.session.commit()

    # when a LOW_STOCK event is handled
    result = handle_event({"id": "evt-low", "type": "LOW_STOCK", "data": LOW_STOCK_DATA})

    # then exactly the active merchandisers and admins got an email
    rows = notifications(committed_db, "evt-low")
    assert result["sent"] == 3
    assert sorted(n.recipient for n in rows) == sorted(
        [admin.email, merchandiser.email, other_merchandiser.email])
    assert {n.channel for n in rows} == {"email"}
    assert all(n.subject == "Low stock: MUG-RED" for n in rows)


def test_failed_delivery_is_recorded_reraised_and_a_later_success_updates_the_row(app, committed_db):
    event = {"id": "evt-fail", "type": "ORDER_PLACED", "data": order_data()}
    bind = committed_db.session.get_bind()
    broken = dict(app.config, MAIL_BACKEND="smtp", SMTP_HOST="127.0.0.1", SMTP_PORT=closed_port())

    # when the SMTP server cannot be reached
    with pytest.raises(DeliveryFailed, match="SMTP 127.0.0.1"):
        process_event(event, settings=broken, bind=bind)

    # then the delivery is recorded as failed, with the error
    [row] = notifications(committed_db, "evt-fail")
    assert row.status == DeliveryStatus.FAILED
    assert "ConnectionRefusedError" in row.error or "SMTP" in row.error

    # when a retry succeeds
    result = process_event(event, settings=dict(app.config, MAIL_BACKEND="console"), bind=bind)

    # then the same row became sent - no duplicate
    committed_db.session.expire_all()
    [again] = notifications(committed_db, "evt-fail")
    assert result.sent == 1
    assert (again.id, again.status, again.error) == (row.id, "sent", None)


def test_one_failing_recipient_does_not_stop_the_others(app, committed_db):
    UserFactory(role="admin", email="boss@example.com")
    UserFactory(role="merchandiser", email="buyer-team@example.com")
    committed_db.session.commit()
    settings = dict(app.config, MAIL_BACKEND="carrier-pigeon")

    with pytest.raises(DeliveryFailed, match="2 delivery"):
        process_event({"id": "evt-cfg", "type": "LOW_STOCK", "data": LOW_STOCK_DATA},
                      settings=settings, bind=committed_db.session.get_bind())

    rows = notifications(committed_db, "evt-cfg")
    assert len(rows) == 2
    assert all(r.status == "failed" and "carrier-pigeon" in r.error for r in rows)


def test_event_without_recipient_delivers_nothing(committed_db):
    result = handle_event({"id": "evt-none", "type": "ORDER_PAID", "data": {"order_number": "X"}})
    assert result["sent"] == 0
    assert notifications(committed_db, "evt-none") == []


@pytest.mark.slow
def test_handle_event_runs_without_flask_app_or_redis(committed_db, database_url):
    # given a process that never builds the Flask app, with only DATABASE_URL in its environment
    event = {"id": "evt-standalone", "type": "ORDER_DELIVERED", "data": order_data("solo@example.com")}
    script = (
        "import json, sys\n"
        "from ecom.notifications.handler import handle_event\n"
        "event = json.loads(sys.argv[1])\n"
        "first = handle_event(event)\n"
        "second = handle_event(event)\n"
        "print(json.dumps([first, second, 'shop.app' in sys.modules, 'rq' in sys.modules]))\n"
    )
    env = {k: v for k, v in os.environ.items() if k not in {"REDIS_URL", "FLASK_APP"}}
    env.update(DATABASE_URL=database_url, MAIL_BACKEND="console")

    # when it calls handle_event twice
    done = subprocess.run([sys.executable, "-c", script, json.dumps(event)], cwd=PROJECT_ROOT, env=env,
                          capture_output=True, text=True, timeout=60)

    # then it delivered once, without the app or RQ, to the shared database
    assert done.returncode == 0, done.stderr
    first, second, app_imported, rq_imported = json.loads(done.stdout.strip().splitlines()[-1])
    assert (first["sent"], second["skipped"]) == (1, 1)
    assert not app_imported and not rq_imported
    [row] = notifications(committed_db, "evt-standalone")
    assert (row.channel, row.recipient, row.status) == (Channel.EMAIL, "solo@example.com", "sent")


def test_a_concurrent_rerun_waits_for_the_claim_and_sends_nothing_twice(postgres, app, committed_db,
                                                                         monkeypatch):
    # given a delivery in progress, held inside its send (its claim committed by nobody yet)
    sending, release = threading.Event(), threading.Event()
    sent: list[str] = []

    def slow_send(settings, to, content):
        sending.set()
        assert release.wait(30)
        sent.append(to)

    monkeypatch.setattr(handler, "send_email", slow_send)
    event = {"id": "evt-race", "type": "ORDER_PAID", "data": order_data("race@example.com")}
    engine = committed_db.engine
    results: dict = {}

    def run(name):
        results[name] = process_event(event, settings=app.config, bind=engine).as_dict()

    first = threading.Thread(target=run, args=("first",))
    first.start()
    assert sending.wait(30)

    # when the same event is run again meanwhile
    second = threading.Thread(target=run, args=("second",))
    second.start()

    # then the re-run waits on the claimed row (a lock wait in PostgreSQL) ...
    deadline = time.monotonic() + 30
    with engine.connect() as conn:
        while not conn.scalar(text("SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
                                   " AND wait_event_type = 'Lock'")):
            assert time.monotonic() < deadline, "the second run never waited for the first one's claim"
            conn.rollback()
            time.sleep(0.02)
    release.set()
    first.join(30)
    second.join(30)

    # ... and once the first committed, it finds the delivery done: one email in all
    assert sent == ["race@example.com"]
    assert (results["first"]["sent"], results["second"]["skipped"]) == (1, 1)
    [row] = notifications(committed_db, "evt-race")
    assert row.status == "sent"
