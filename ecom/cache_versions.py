"""Version numbers in Redis, each bumped right after any commit that wrote one of its tables.

What is cached from those tables (rendered catalog pages, the pricing rules a process holds)
is labelled with the version read *before* the data was read, so a stored copy is never
labelled newer than what it was built from, and any commit writing a row of the tables,
from whichever process (an API request, a back-office form, a CSV import, a worker), makes
every copy stale at once.

Writes are seen through the ORM unit of work (``after_flush``) and through
``Session.execute`` of insert/update/delete constructs on those tables (``do_orm_execute``);
the bump waits for the outermost commit (a released savepoint is not yet visible to anyone),
and a rollback forgets what the transaction wrote (a rolled-back savepoint does not: the
writes made before it still count). SQL written as text is seen when it names the tables
it writes in the execution option ``WRITES``; unnamed, or run outside a Session (raw
connections, psql), it is not seen; each cache's time limit bounds how long such a change
stays unseen.

Redis should run with a ``volatile-*`` eviction policy (or none), so that a version key,
which has no expiry, is never evicted; if it goes anyway, or Redis restarts, it starts again
from the clock, never from a number used before.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable
from itertools import chain

import redis
from flask import Flask, current_app, has_app_context
from sqlalchemy import inspect
from sqlalchemy.orm import ORMExecuteState, Session

from ecom import runtime
from ecom.db import listen_on_sessions

log = logging.getLogger("ecom.cache_versions")

# INCR alone would restart a missing version at 1, a number cached copies may still carry.
BUMP = """
if redis.call('EXISTS', KEYS[1]) == 1 then return redis.call('INCR', KEYS[1]) end
redis.call('SET', KEYS[1], ARGV[1])
return ARGV[1]
"""


# The execution option by which a text statement names the tables it writes.
WRITES = "writes_tables"


class TableVersion:
    """The version ``key`` in Redis, bumped after any commit that wrote one of ``tables``.

    ``counter_columns``: an ORM update that changes only these columns is no change (a use
    counter and the timestamp it touches); so is a statement run with the execution option
    ``counter_option`` set. ``on_bump(app)`` runs in the committing process before the bump.
    ``falls_back``: what happens while Redis is away, for the warning.
    """

    # After a Redis error, leave it alone this long: a partitioned Redis would otherwise cost
    # every request its connect timeout.
    backoff_seconds = 2.0

    def __init__(self, name: str, key: str, tables: Iterable[str], *, falls_back: str,
                 counter_columns: Iterable[str] = (), counter_option: str | None = None,
                 on_bump: Callable[[Flask], None] | None = None):
        self.name = name
        self.key = key
        self.tables = frozenset(tables)
        self.counter_columns = frozenset(counter_columns)
        self.counter_option = counter_option
        self.falls_back = falls_back
        self.on_bump = on_bump
        slug = name.replace(" ", "_")
        self.client_key = f"ecom_{slug}_redis"  # app.extensions: the Redis client
        self.down_key = f"ecom_{slug}_redis_down_until"  # app.extensions: end of the back-off
        self.written_key = f"ecom_{slug}_written"  # session.info: a row written, not committed

    def init_app(self, app: Flask) -> None:
        url = runtime.settings(app)["REDIS_URL"]
        if url:
            # Short timeouts: a reader falls back to the database rather than wait for Redis.
            app.extensions[self.client_key] = redis.Redis.from_url(
                url, socket_connect_timeout=0.5, socket_timeout=0.5)
        listen_on_sessions(after_flush=self._note_flushed_rows, do_orm_execute=self._note_bulk_statement,
                           after_commit=self._bump_if_written, after_rollback=self._forget)

    # --- the version in Redis ----------------------------------------------------------------

    def client(self, app: Flask) -> redis.Redis | None:
        """The Redis client holding the version; None without REDIS_URL or just after a Redis error."""
        client = app.extensions.get(self.client_key)
        if client is None or time.monotonic() < app.extensions.get(self.down_key, 0.0):
            return None
        return client

    def failed(self, app: Flask, exc: redis.RedisError) -> None:
        """Record a Redis error: the version is not read for ``backoff_seconds``."""
        app.extensions[self.down_key] = time.monotonic() + self.backoff_seconds
        log.warning("%s: Redis unavailable, %s for %.0fs: %s", self.name, self.falls_back,
                    self.backoff_seconds, exc)

    def current(self, app: Flask) -> bytes | None:
        """The version now; None when it cannot be known (no Redis, Redis away)."""
        client = self.client(app)
        if client is None:
            return None
        try:
            return client.get(self.key) or self.start(client)
        except redis.RedisError as exc:
            self.failed(app, exc)
            return None

    def start(self, client: redis.Redis) -> bytes:
        """Set a version when there is none: Redis came back empty (it keeps nothing on disk).

        It starts from the clock in nanoseconds, a value no cached copy can carry.
        Raises redis.RedisError.
        """
        client.set(self.key, time.time_ns(), nx=True)
        return client.get(self.key)

    def bump(self, app: Flask) -> None:
        """Make every cached copy stale.

        Tried even during a read back-off: writes are rare, and a skipped bump leaves copies
        held by other processes stale up to their cache's time limit. When it fails, that is
        what happens (a Redis that restarted empty drops them all).
        """
        if self.on_bump is not None:
            self.on_bump(app)
        client = app.extensions.get(self.client_key)
        if client is None:
            return
        try:
            client.eval(BUMP, 1, self.key, time.time_ns())
        except redis.RedisError as exc:
            self.failed(app, exc)

    def written(self, session: Session) -> bool:
        """Whether ``session`` wrote a row of the tables that it has not committed yet."""
        return bool(session.info.get(self.written_key))

    # --- the session hooks -------------------------------------------------------------------

    def _changed(self, obj, *, updated: bool) -> bool:
        table = getattr(obj, "__table__", None)
        if table is None or table.name not in self.tables:
            return False
        if not updated or not self.counter_columns:
            return True
        return any(attr.key not in self.counter_columns and attr.history.has_changes()
                   for attr in inspect(obj).attrs)

    def _note_flushed_rows(self, session: Session, flush_context) -> None:
        if session.info.get(self.written_key):
            return
        if (any(self._changed(obj, updated=False) for obj in chain(session.new, session.deleted))
                or any(self._changed(obj, updated=True) for obj in session.dirty)):
            session.info[self.written_key] = True

    def _note_bulk_statement(self, state: ORMExecuteState) -> None:
        written = state.execution_options.get(WRITES)
        if written is None:
            if not (state.is_insert or state.is_update or state.is_delete):
                return
            written = (getattr(getattr(state.statement, "table", None), "name", None),)
        if self.counter_option is not None and state.execution_options.get(self.counter_option):
            return
        if self.tables.intersection(written):
            state.session.info[self.written_key] = True

    def _bump_if_written(self, session: Session) -> None:
        # current_app: SQLAlchemy calls the hook with the session only, and the bump needs the
        # app's own Redis client, not a setting; a session only exists inside its app's context.
        if session.in_nested_transaction():
            return  # a savepoint: the outermost commit makes the writes visible
        if session.info.pop(self.written_key, False) and has_app_context():
            self.bump(current_app._get_current_object())

    def _forget(self, session: Session) -> None:
        if not session.in_nested_transaction():  # writes before a rolled-back savepoint still count
            session.info.pop(self.written_key, None)
