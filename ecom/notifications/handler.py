"""``handle_event(event, context=None)``: render and deliver the notifications of one event.

A Lambda-style entry point: a plain function, importable and callable
without a Flask app or Redis. ``event`` is ``{"id"?, "type", "data"}``.

Where its database comes from:

* inside a Flask app context, the app's database (the bind of ``db.session``,
  so a test's transaction is joined) and the app's config;
* otherwise (a Lambda, a script, a plain ``rq worker``), an engine of its own
  built once per process from ``DATABASE_URL`` and the rest of the
  environment, through ``ecom.config.load_config`` - the same variables the
  app reads, so both always agree on the database and the mail settings.

Either way the handler works on a connection of its own (SQLAlchemy Core,
a few statements per delivery) and commits each delivery as it goes; it never
touches the caller's session or transaction.

Idempotency: each delivery is one ``notifications`` row, unique on
(event_id, channel, recipient), written in one transaction per delivery: the
row is claimed and locked before sending (INSERT ... ON CONFLICT DO UPDATE
with a no-op update, RETURNING its status) and updated after, so a replayed
or concurrently re-run event sends nothing twice. A failed delivery is
committed as ``failed`` with its error and the exception re-raised (RQ's
Retry then runs the event again); the retry updates that same row. If the
sender dies mid-send its transaction - claim included - rolls back, and the
re-run job sends it: at least once, never silently lost.
(The one inevitable gap: an SMTP server that accepted a message just before
the worker died gets it again on the re-run.)
"""

from __future__ import annotations

import json
import logging
import threading
import uuid
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import cache

from sqlalchemy import Engine, String, Text, bindparam, create_engine, func, select, update
from sqlalchemy.engine import Connection

import ecom.models  # noqa: F401  - every mapper, so relationships resolve without the app
from ecom.db import utcnow
from ecom.identity.models import Role, User
from ecom.notifications.channels import DeliveryFailed, send_email, send_sms
from ecom.notifications.models import Channel, DeliveryStatus, EventType, Notification, OutboxEvent
from ecom.notifications.rendering import render_email, render_sms

log = logging.getLogger("ecom.notifications")

IN_PROGRESS = "delivery in progress"
STAFF_ALERT_ROLES = (Role.ADMIN, Role.MERCHANDISER)
# A fixed namespace: an event without an id gets the same id every time it is replayed.
EVENT_NAMESPACE = uuid.UUID("6f1f7a4e-3c1b-4f55-9d59-2f5a3f0e8c11")

Bind = Engine | Connection


@dataclass
class HandleResult:
    event_id: str
    type: str
    sent: int = 0
    skipped: int = 0
    failed: list[str] = field(default_factory=list)

    def as_dict(self) -> dict:
        return {"event_id": self.event_id, "type": self.type, "sent": self.sent,
                "skipped": self.skipped, "failed": list(self.failed)}


def handle_event(event: dict, context=None) -> dict:
    """Deliver every notification of ``event``; ``context`` is the Lambda context and unused.

    Returns ``{"event_id", "type", "sent", "skipped", "failed"}``.
    Raises ValueError for a malformed event or an unknown backend, and
    DeliveryFailed when any delivery failed (after recording it), so the
    caller's retry policy can run the event again.
    """
    settings, bind = handler_environment()
    return process_event(event, settings=settings, bind=bind).as_dict()


def handle_outbox_event(event_id: str, *, settings: Mapping, bind: Bind) -> HandleResult | None:
    """Load one outbox event by id and process it; None if the row is gone. Raises as handle_event."""
    with _one_connection(bind) as connection:
        with _transaction(connection):
            row = connection.execute(_LOAD_EVENT, {"event_id": event_id}).one_or_none()
        if row is None:
            return None
        event = {"id": row.id, "type": row.type, "data": (row.payload or {}).get("data") or {}}
        return process_event(event, settings=settings, bind=connection)


@dataclass
class BatchResult:
    results: list[HandleResult] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)
    missing: list[str] = field(default_factory=list)

    def as_dict(self) -> dict:
        return {"events": len(self.results) + len(self.failed), "sent": sum(r.sent for r in self.results),
                "skipped": sum(r.skipped for r in self.results), "failed": dict(self.failed),
                "missing": list(self.missing)}


def handle_outbox_events(event_ids: list[str], *, settings: Mapping, bind: Bind) -> BatchResult:
    """Load several outbox events at once and process each; one event's failure never stops the others.

    Each event's deliveries are claimed and committed one by one, exactly as
    for a single event. Never raises for a delivery: failures are returned by
    event id (with the error), for the caller to retry those events alone.
    """
    batch = BatchResult()
    with _one_connection(bind) as connection:
        with _transaction(connection):
            rows = {row.id: row for row in connection.execute(_LOAD_EVENTS, {"event_ids": list(event_ids)})}
        for event_id in event_ids:
            row = rows.get(event_id)
            if row is None:
                batch.missing.append(event_id)
                continue
            event = {"id": row.id, "type": row.type, "data": (row.payload or {}).get("data") or {}}
            try:
                batch.results.append(process_event(event, settings=settings, bind=connection))
            except Exception as exc:  # recorded on its notification rows; retried alone by the caller
                batch.failed[event_id] = f"{type(exc).__name__}: {exc}"[:2000]
    return batch


def process_event(event: dict, *, settings: Mapping, bind: Bind) -> HandleResult:
    """``handle_event`` with the settings and database given explicitly. Raises as handle_event."""
    event_type, data = _parse(event)
    result = HandleResult(event_id=event_id_of(event), type=event_type.value)
    errors: list[BaseException] = []
    with _one_connection(bind) as connection:
        for channel, recipient in recipients_for(connection, event_type, data):
            try:
                delivered = _deliver_once(connection, settings, result.event_id, event_type, channel,
                                          recipient, data)
            except Exception as exc:  # recorded on the row already; re-raised below after the others
                errors.append(exc)
                result.failed.append(f"{channel}:{recipient}: {exc}")
                continue
            if delivered:
                result.sent += 1
            else:
                result.skipped += 1
    if errors:
        raise DeliveryFailed(
            f"{len(errors)} delivery(ies) of event {result.event_id} failed: " + "; ".join(result.failed)
        ) from errors[0]
    return result


def event_id_of(event: dict) -> str:
    """The event's id, or a stable one derived from its content when it has none."""
    if event.get("id"):
        return str(event["id"])
    content = {"type": event.get("type"), "data": event.get("data")}
    canonical = json.dumps(content, sort_keys=True, default=str)
    return str(uuid.uuid5(EVENT_NAMESPACE, canonical))


def recipients_for(bind: Bind, event_type: EventType, data: dict) -> list[tuple[Channel, str]]:
    """Who hears about the event: the order's customer, or every active merchandiser and admin."""
    if event_type == EventType.LOW_STOCK:
        with _one_connection(bind) as connection, _transaction(connection):
            emails = connection.scalars(
                select(User.email)
                .where(User.role.in_([str(r) for r in STAFF_ALERT_ROLES]), User.is_active.is_(True))
                .order_by(User.id)
            ).all()
        return [(Channel.EMAIL, email) for email in emails]
    recipients: list[tuple[Channel, str]] = []
    email = (data.get("user_email") or "").strip().lower()
    if email:
        recipients.append((Channel.EMAIL, email))
    phone = data.get("phone") or (data.get("shipping_address") or {}).get("phone")
    if phone:
        recipients.append((Channel.SMS, str(phone).strip()))
    if not recipients:
        log.warning("event %s has no recipient (no user_email in its data)", event_type)
    return recipients


def _parse(event: dict) -> tuple[EventType, dict]:
    if not isinstance(event, Mapping) or "type" not in event:
        raise ValueError("An event is a mapping with a 'type' and a 'data' object.")
    data = event.get("data") or {}
    if not isinstance(data, Mapping):
        raise ValueError("The event's 'data' must be an object.")
    return EventType(event["type"]), dict(data)


def _deliver_once(connection: Connection, settings: Mapping, event_id: str, event_type: EventType,
                  channel: Channel, recipient: str, data: dict) -> bool:
    """Send one message unless it was sent before. True if sent now, False if it had been.

    One transaction: claim the row (inserted, or the existing one locked, by
    one statement), send, record. A concurrent run of the same delivery waits
    on the row (or on the unique index) until this one commits, then finds it
    sent. Raises whatever the backend raised, after recording it on the row.
    """
    failure: Exception | None = None
    with _transaction(connection):
        if connection.dialect.name == "postgresql":
            # The commit need not wait for the disk: losing a "sent" row to a database crash
            # means at worst one more email on a re-run, the gap SMTP leaves open anyway.
            connection.exec_driver_sql(_ASYNC_COMMIT)
        claimed = connection.execute(_claim_statement(connection.dialect.name), {
            "event_id": event_id, "event_type": event_type.value, "channel": str(channel),
            "recipient": recipient, "status": DeliveryStatus.FAILED.value, "error": IN_PROGRESS,
            "subject": "", "body": "", "created_at": utcnow()}).one()
        if claimed.status == DeliveryStatus.SENT:
            return False
        rendered = {"subject": None, "body": None}
        try:
            _render_and_send(settings, rendered, event_type, channel, recipient, data)
        except Exception as exc:  # recorded (and committed) here, then re-raised for a retry
            failure = exc
            outcome = {"status": DeliveryStatus.FAILED.value, "error": f"{type(exc).__name__}: {exc}"[:2000],
                       "sent_at": None}
        else:
            outcome = {"status": DeliveryStatus.SENT.value, "error": None, "sent_at": utcnow()}
        connection.execute(_RECORD, {"notification_id": claimed.id, **rendered, **outcome})
    if failure is not None:
        log.warning("delivery failed event=%s %s to %s: %s", event_id, channel, recipient, failure)
        raise failure
    return True


# The statements of the delivery path, built once: a few per notification, nothing else.
_notifications = Notification.__table__
_outbox = OutboxEvent.__table__
_LOAD_EVENT = (select(_outbox.c.id, _outbox.c.type, _outbox.c.payload)
               .where(_outbox.c.id == bindparam("event_id")))
_ASYNC_COMMIT = "SET LOCAL synchronous_commit TO OFF"
_LOAD_EVENTS = (select(_outbox.c.id, _outbox.c.type, _outbox.c.payload)
                .where(_outbox.c.id.in_(bindparam("event_ids", expanding=True))))
# A failed attempt keeps the subject and body it had, unless this one rendered new ones.
_RECORD = (update(_notifications).where(_notifications.c.id == bindparam("notification_id")).values(
    status=bindparam("status"), error=bindparam("error"), sent_at=bindparam("sent_at"),
    subject=func.coalesce(bindparam("subject", type_=String), _notifications.c.subject),
    body=func.coalesce(bindparam("body", type_=Text), _notifications.c.body)))


@cache
def _claim_statement(dialect: str):
    """INSERT ... ON CONFLICT DO UPDATE ... RETURNING id, status on the (event_id, channel, recipient) key.

    The no-op update makes the statement lock a row that already exists (as
    SELECT ... FOR UPDATE would) and return it, in one round trip.
    """
    if dialect == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    elif dialect == "sqlite":
        from sqlalchemy.dialects.sqlite import insert
    else:  # pragma: no cover - the project runs on PostgreSQL and SQLite only
        raise NotImplementedError(f"no idempotent insert for {dialect}")
    columns = ("event_id", "event_type", "channel", "recipient", "status", "error", "subject", "body",
               "created_at")
    statement = insert(_notifications).values({name: bindparam(name) for name in columns})
    return statement.on_conflict_do_update(
        index_elements=["event_id", "channel", "recipient"], set_={"status": _notifications.c.status},
    ).returning(_notifications.c.id, _notifications.c.status)


def _render_and_send(settings: Mapping, rendered: dict, event_type: EventType,
                     channel: Channel, recipient: str, data: dict) -> None:
    """Render and send one message; ``rendered`` gets its subject and body before the sending."""
    shop_name = settings["SHOP_NAME"]
    if channel == Channel.EMAIL:
        content = render_email(event_type, data, shop_name=shop_name)
        rendered.update(subject=content.subject[:300], body=content.text)
        send_email(settings, recipient, content)
    else:
        text = render_sms(event_type, data, shop_name=shop_name)
        rendered.update(subject="", body=text)
        send_sms(settings, recipient, text)


@contextmanager
def _transaction(connection: Connection) -> Iterator[Connection]:
    """A transaction on ``connection``: a savepoint when the caller already has one open (a test's)."""
    with connection.begin_nested() if connection.in_transaction() else connection.begin():
        yield connection


@contextmanager
def _one_connection(bind: Bind) -> Iterator[Connection]:
    """One pooled connection for all of an event's transactions (one checkout, one pre-ping)."""
    if isinstance(bind, Connection):
        yield bind
    else:
        with bind.connect() as connection:
            yield connection


# --- where the database and settings come from -------------------------------------------------

_standalone_lock = threading.Lock()
_standalone: dict = {}


def handler_environment() -> tuple[Mapping, Bind]:
    """The settings and database the handler uses: the app's inside an app context, else its own."""
    from flask import has_app_context

    if has_app_context():
        from ecom import runtime
        from ecom.extensions import db

        # Whatever the app's session really talks to (a test may swap in a joined connection).
        return runtime.settings(), db.session.get_bind()
    return standalone_environment()


def standalone_environment() -> tuple[Mapping, Engine]:
    """Settings from the environment and one engine per process, for use without Flask."""
    with _standalone_lock:
        if not _standalone:
            from ecom.config import load_config
            from ecom.connections import engine_options, ping_after_idle

            settings = load_config()
            uri, idle_seconds = settings["SQLALCHEMY_DATABASE_URI"], settings["DB_PING_AFTER_IDLE_SECONDS"]
            options = engine_options(settings["SQLALCHEMY_ENGINE_OPTIONS"], uri, idle_seconds)
            engine = create_engine(uri, **options)
            ping_after_idle(engine, idle_seconds)
            _standalone.update(settings=settings, engine=engine)
        return _standalone["settings"], _standalone["engine"]


def reset_standalone_environment() -> None:
    """Forget the standalone engine (tests, or after the environment changed)."""
    with _standalone_lock:
        engine = _standalone.pop("engine", None)
        _standalone.clear()
    if engine is not None:
        engine.dispose()
