"""Fixtures for the outbox relay, notification and worker tests."""

from __future__ import annotations

import socket
import threading

import pytest

from ecom.extensions import db as _db
from tests.conftest import make_test_app


def delivery_job_id(event_id: str) -> str:
    """The id of the relay's delivery job for an event relayed alone (a batch of one)."""
    from ecom.notifications.relay import batch_job_id

    return batch_job_id([event_id])


def order_data(email: str = "buyer@example.com", **extra) -> dict:
    """An order event payload in the shape ``order_event_data`` produces."""
    data = {
        "order_id": 101,
        "order_number": "ORD-20260101-0101",
        "user_email": email,
        "total": "42.50",
        "currency": "usd",
        "status": "created",
        "items": [{"sku": "MUG-1", "product_name": "Mug", "quantity": 2, "line_total": "30.00"}],
    }
    data.update(extra)
    return data


def closed_port() -> int:
    """A local port nothing listens on (bound, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def queue_app(committed_db, database_url, redis_url):
    """An app in queue mode (REDIS_URL set) on the test database, its context pushed.

    Retries are immediate so a burst worker runs every attempt.
    """
    app = make_test_app(database_url, REDIS_URL=redis_url, NOTIFY_RETRY_INTERVALS=(0,))
    with app.app_context():
        yield app
        _db.session.remove()
        _db.engine.dispose()


@pytest.fixture
def inline_app(committed_db, database_url):
    """An app in the embedded mode (no REDIS_URL) with real commits."""
    app = make_test_app(database_url)
    with app.app_context():
        yield app
        _db.session.remove()
        _db.engine.dispose()


class RecordingSMTPHandler:
    """aiosmtpd handler keeping every message it accepts.

    While ``blocking`` is set, DATA hangs (a slow server) until ``release`` is
    set, then is refused and not recorded - the sender never got a 250.
    """

    def __init__(self):
        self.messages: list = []
        self.sessions: set = set()  # client (host, port): one per connection that delivered a message
        self.blocking = False
        self.data_started = threading.Event()
        self.release = threading.Event()

    async def handle_DATA(self, server, session, envelope):
        import asyncio

        if self.blocking:
            self.data_started.set()
            while not self.release.is_set():
                await asyncio.sleep(0.05)
            return "451 Aborted"
        self.messages.append(envelope)
        self.sessions.add(session.peer)
        return "250 OK"


@pytest.fixture
def smtp_server():
    """A real SMTP server on 127.0.0.1 (aiosmtpd), recording what it receives."""
    from aiosmtpd.controller import Controller

    handler = RecordingSMTPHandler()
    handler.port = closed_port()
    controller = Controller(handler, hostname="127.0.0.1", port=handler.port)
    controller.start()
    try:
        yield handler
    finally:
        from ecom.notifications.channels import close_smtp_sessions

        # This thread's sessions with the server go with it: kept, they would be the next
        # test's (test_smtp counts the sessions it finds).
        close_smtp_sessions()
        controller.stop()
