"""SMTP delivery to a real local SMTP server (aiosmtpd on 127.0.0.1)."""

from __future__ import annotations

from email import message_from_bytes
from email.policy import default as default_policy

from sqlalchemy import select

from ecom.notifications.handler import process_event
from ecom.notifications.models import Notification
from tests.workers.conftest import order_data


def test_smtp_delivery_reaches_the_server_with_recipient_subject_and_body(app, committed_db, smtp_server):
    # given the smtp backend pointed at a local server
    settings = dict(app.config, MAIL_BACKEND="smtp", SMTP_HOST="127.0.0.1", SMTP_PORT=smtp_server.port,
                    SMTP_USE_TLS=False, MAIL_FROM="orders@shop.example")
    event = {"id": "evt-smtp", "type": "ORDER_SHIPPED",
             "data": order_data("Customer@Example.com", carrier="UPS", tracking_number="1Z42")}

    # when the event is handled
    result = process_event(event, settings=settings, bind=committed_db.session.get_bind())

    # then the server received one message for the customer, with text and HTML bodies
    assert result.sent == 1
    [envelope] = smtp_server.messages
    assert envelope.rcpt_tos == ["customer@example.com"]
    assert envelope.mail_from == "orders@shop.example"
    message = message_from_bytes(envelope.content, policy=default_policy)
    assert message["Subject"] == "Your order ORD-20260101-0101 has shipped"
    assert message["To"] == "customer@example.com"
    text = message.get_body(preferencelist=("plain",)).get_content()
    html = message.get_body(preferencelist=("html",)).get_content()
    assert "Tracking number: 1Z42" in text and "Carrier: UPS" in text
    assert "<strong>ORD-20260101-0101</strong>" in html
    row = committed_db.session.scalars(select(Notification).where(Notification.event_id == "evt-smtp")).one()
    assert row.status == "sent"


def test_replayed_event_sends_no_second_smtp_message(app, committed_db, smtp_server):
    settings = dict(app.config, MAIL_BACKEND="smtp", SMTP_HOST="127.0.0.1", SMTP_PORT=smtp_server.port)
    event = {"id": "evt-smtp-twice", "type": "ORDER_PLACED", "data": order_data()}
    bind = committed_db.session.get_bind()

    process_event(event, settings=settings, bind=bind)
    process_event(event, settings=settings, bind=bind)

    assert len(smtp_server.messages) == 1
