"""Making sure a pooled PostgreSQL connection still works, without a round trip per request.

SQLAlchemy's ``pool_pre_ping`` sends ``SELECT 1`` every time a connection leaves the pool:
one round trip more for every request. Here only a connection that sat in the pool longer
than ``DB_PING_AFTER_IDLE_SECONDS`` is pinged (and replaced when the ping fails, as pre-ping
would); one returned within that time was working a moment ago and goes out as it is. If
its server process died in between (a restart, a terminated backend), the request using it
fails once, answered 503 by the API's error handler, and the pool replaces every connection
opened before the failure, so the next requests get fresh ones.
"""

from __future__ import annotations

import time

from sqlalchemy import event
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.exc import DisconnectionError

CHECKED_IN_AT = "ecom_checked_in_at"


def ping_after_idle(engine: Engine, idle_seconds: float) -> None:
    """Ping ``engine``'s connections when they leave the pool after more than ``idle_seconds``
    in it, in place of pre-ping (``engine_options`` turned it off); nothing for SQLite, or
    when ``idle_seconds`` is 0 (pre-ping stays)."""
    if not _replaces_pre_ping(engine.dialect.name, idle_seconds):
        return
    dbapi_errors = engine.dialect.loaded_dbapi.Error

    def rested(_dbapi_connection, record) -> None:
        record.info[CHECKED_IN_AT] = time.monotonic()

    def check(dbapi_connection, record, _proxy) -> None:
        if time.monotonic() - record.info.get(CHECKED_IN_AT, 0.0) < idle_seconds:
            return
        try:
            engine.dialect.do_ping(dbapi_connection)
        except dbapi_errors as exc:
            # The pool drops this connection and checks out another (up to three tries).
            raise DisconnectionError(f"a pooled connection no longer works: {exc}") from exc

    event.listen(engine, "connect", rested)  # a new connection is as good as a rested one
    event.listen(engine, "checkin", rested)
    event.listen(engine, "checkout", check)


def engine_options(options: dict, database_uri: str, idle_seconds: float) -> dict:
    """The engine options for ``database_uri``: pre-ping off where ``ping_after_idle`` takes
    its place (PostgreSQL, ``idle_seconds`` > 0)."""
    if not _replaces_pre_ping(make_url(database_uri).get_backend_name(), idle_seconds):
        return options
    return {**options, "pool_pre_ping": False}


def _replaces_pre_ping(dialect: str, idle_seconds: float) -> bool:
    return dialect != "sqlite" and idle_seconds > 0
