"""One version number for everything the storefront's catalog pages show.

A commit that wrote a row of a catalog table (categories, products, images,
variants, inventory, reviews) bumps ``ecom:catalog:version`` in Redis right
after it committed, whichever process made it: an API request, a back-office
form, a CSV import, a worker expiring reservations. Response caches key what
they store by the version they read *before* querying, so a stored page is
never labelled newer than the data it was built from.

Writes are seen through the ORM unit of work (``after_flush``) and through
``Session.execute`` of insert/update/delete constructs on those tables
(``do_orm_execute``); the bump waits for the outermost commit (a released
savepoint is not yet visible to anyone). SQL written as text, or run outside
a Session (raw connections, psql), is not seen; the cache's time limit bounds
how long such a change stays unseen.

Redis should run with a ``volatile-*`` eviction policy (or none), so that the
version key, which has no expiry, is never evicted; if it goes anyway, or
Redis restarts, it starts again from the clock, never from a number used before.

Without ``REDIS_URL`` there is no shared version and no catalog cache.
"""

from __future__ import annotations

import logging
import time
from itertools import chain

import redis
from flask import Flask, current_app, has_app_context
from sqlalchemy.orm import ORMExecuteState, Session

from ecom import runtime
from ecom.db import listen_on_sessions

log = logging.getLogger("ecom.catalog.cache")

VERSION_KEY = "ecom:catalog:version"
CATALOG_TABLES = frozenset({"categories", "products", "product_images", "variants", "inventory", "reviews"})
_DIRTY = "ecom_catalog_written"
_CLIENT = "ecom_catalog_cache_redis"
_DOWN_UNTIL = "ecom_catalog_cache_redis_down_until"
# After a Redis error, leave it alone this long: a partitioned Redis would otherwise
# cost every request its connect timeout.
REDIS_BACKOFF_SECONDS = 2.0


def init_app(app: Flask) -> None:
    url = runtime.settings(app)["REDIS_URL"]
    if url:
        # Short timeouts: a page falls back to the database rather than wait for Redis.
        app.extensions[_CLIENT] = redis.Redis.from_url(url, socket_connect_timeout=0.5, socket_timeout=0.5)
    _install_listeners()


def redis_client(app: Flask) -> redis.Redis | None:
    """The Redis client holding the version; None without REDIS_URL or just after a Redis error."""
    client = app.extensions.get(_CLIENT)
    if client is None or time.monotonic() < app.extensions.get(_DOWN_UNTIL, 0.0):
        return None
    return client


def redis_failed(app: Flask, exc: redis.RedisError) -> None:
    """Record a Redis error: the cache is bypassed for REDIS_BACKOFF_SECONDS."""
    app.extensions[_DOWN_UNTIL] = time.monotonic() + REDIS_BACKOFF_SECONDS
    log.warning("catalog cache: Redis unavailable, pages come from the database for %.0fs: %s",
                REDIS_BACKOFF_SECONDS, exc)


def current_version(app: Flask) -> bytes | None:
    """The catalog's version now; None when it cannot be known (no Redis, Redis away)."""
    client = redis_client(app)
    if client is None:
        return None
    try:
        return client.get(VERSION_KEY) or start_version(client)
    except redis.RedisError as exc:
        redis_failed(app, exc)
        return None


def start_version(client: redis.Redis) -> bytes:
    """Set a version when there is none: Redis came back empty (it keeps nothing on disk).

    It starts from the clock in nanoseconds, a value no page cached before can carry.
    Raises redis.RedisError.
    """
    client.set(VERSION_KEY, time.time_ns(), nx=True)
    return client.get(VERSION_KEY)


# INCR alone would restart a missing version at 1, a number pages may still carry.
BUMP = """
if redis.call('EXISTS', KEYS[1]) == 1 then return redis.call('INCR', KEYS[1]) end
redis.call('SET', KEYS[1], ARGV[1])
return ARGV[1]
"""


def bump_version(app: Flask) -> None:
    """Make every cached page stale.

    Tried even during a read back-off: writes are rare, and a skipped bump leaves
    pages cached by other processes stale for up to CATALOG_CACHE_SECONDS. When it
    fails, that is what happens (a Redis that restarted empty drops them all).
    """
    client = app.extensions.get(_CLIENT)
    if client is None:
        return
    try:
        client.eval(BUMP, 1, VERSION_KEY, time.time_ns())
    except redis.RedisError as exc:
        redis_failed(app, exc)


# --- the session hooks ----------------------------------------------------------------------

def _install_listeners() -> None:
    listen_on_sessions(after_flush=_note_flushed_rows, do_orm_execute=_note_bulk_statement,
                       after_commit=_bump_if_written, after_rollback=_forget)


def _is_catalog_row(obj) -> bool:
    table = getattr(obj, "__table__", None)
    return table is not None and table.name in CATALOG_TABLES


def _note_flushed_rows(session: Session, flush_context) -> None:
    if any(_is_catalog_row(obj) for obj in chain(session.new, session.dirty, session.deleted)):
        session.info[_DIRTY] = True


def _note_bulk_statement(state: ORMExecuteState) -> None:
    if not (state.is_insert or state.is_update or state.is_delete):
        return
    table = getattr(state.statement, "table", None)
    if getattr(table, "name", None) in CATALOG_TABLES:
        state.session.info[_DIRTY] = True


def _bump_if_written(session: Session) -> None:
    # current_app: SQLAlchemy calls the hook with the session only, and the bump needs the app's
    # own Redis client, not a setting; a session only exists inside its app's context.
    if session.in_nested_transaction():
        return  # a savepoint: the outermost commit makes the writes visible
    if session.info.pop(_DIRTY, False) and has_app_context():
        bump_version(current_app._get_current_object())


def _forget(session: Session) -> None:
    if not session.in_nested_transaction():  # writes before a rolled-back savepoint still count
        session.info.pop(_DIRTY, None)
