"""SMTP delivery to a real local SMTP server (aiosmtpd on 127.0.0.1)."""

from __future__ import annotations

import socket
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


def test_messages_to_one_server_share_one_smtp_session_until_it_is_closed(app, committed_db, smtp_server):
    from ecom.notifications.channels import close_smtp_sessions

    settings = dict(app.config, MAIL_BACKEND="smtp", SMTP_HOST="127.0.0.1", SMTP_PORT=smtp_server.port)
    bind = committed_db.session.get_bind()
    try:
        # when three events are delivered one after the other by this thread
        for n in range(3):
            data = order_data(f"s{n}@example.com")
            event = {"id": f"evt-session-{n}", "type": "ORDER_PLACED", "data": data}
            process_event(event, settings=settings, bind=bind)
    finally:
        close_smtp_sessions()

    # then the server received three messages over one connection
    assert len(smtp_server.messages) == 3
    assert len(smtp_server.sessions) == 1


def test_a_session_the_server_closed_meanwhile_is_reopened_and_the_message_sent_once(app, committed_db,
                                                                                   smtp_server):
    from ecom.notifications import channels

    settings = dict(app.config, MAIL_BACKEND="smtp", SMTP_HOST="127.0.0.1", SMTP_PORT=smtp_server.port)
    bind = committed_db.session.get_bind()
    try:
        process_event({"id": "evt-idle-1", "type": "ORDER_PLACED", "data": order_data("first@example.com")},
                      settings=settings, bind=bind)
        # given the kept session dropped under us (as a server's idle timeout does)
        [smtp] = channels._smtp_sessions.by_key.values()
        smtp.sock.shutdown(socket.SHUT_RDWR)

        # when the next message goes out
        process_event({"id": "evt-idle-2", "type": "ORDER_PLACED", "data": order_data("second@example.com")},
                      settings=settings, bind=bind)
    finally:
        channels.close_smtp_sessions()

    # then it was sent once, on a new session
    assert [m.rcpt_tos for m in smtp_server.messages] == [["first@example.com"], ["second@example.com"]]
    assert len(smtp_server.sessions) == 2
