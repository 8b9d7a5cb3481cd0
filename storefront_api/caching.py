"""Rendered catalog pages, shared in Redis, served while the catalog is unchanged.

``@cached_page`` goes between the route and ``@endpoint`` of an anonymous GET.
A 200 page is stored in Redis under its path and parsed query, together
with the catalog version (``ecom.catalog.cache_version``) read *before* it was
built, for ``CATALOG_CACHE_SECONDS`` (0 disables the cache). It is served again
only while that version is still current, so any catalog write makes every
stored page a miss. One round trip reads the version and the page together.

Every page carries an ``ETag`` (a matching ``If-None-Match`` is 304) and
``X-Cache: hit|miss``. Without Redis, or when it does not answer, pages come
from the database as if there were no cache.

Hits are normally answered before Flask runs, by ``shop.page_layer`` (same key, same one
round trip, same headers, access log and metrics); a miss it hands on carries what it read
(``LAYER_READ`` in the WSGI environ), so this decorator does not read Redis again.

Cached pages are not rate limited: none has a limit, and the limiter's
per-request bookkeeping cost more than serving a cached page. A page that
needs a limit must not use ``@cached_page``.

One key per page, overwritten in place, expiring with the page: however
often the version moves, Redis holds at most the distinct pages asked for
within CATALOG_CACHE_SECONDS. The key is the endpoint's *parsed* query (the
model ``@endpoint`` validates), so unknown, repeated or differently spelt
parameters name the same page and cannot multiply keys.
"""

from __future__ import annotations

import hashlib
import os
import threading
import time
from collections.abc import Callable
from functools import wraps
from urllib.parse import urlencode

import redis
from flask import Flask, Response, current_app, request

from ecom.catalog.cache_version import VERSION_KEY, redis_client, redis_failed, start_version
from ecom.extensions import limiter
from storefront_api.openapi import parse_query

PAGE_PREFIX = "ecom:page:"
_READER = "ecom_page_reader"  # the app's PageReader
# WSGI environ key: what the page layer in front of Flask read for this request, (key, version)
# of a miss, or REDIS_FAILED.
LAYER_READ = "ecom.cached_page.read"
# Packed read commands kept per process, at most this many (then forgotten at once).
COMMANDS_REMEMBERED = 4096
# Pages a process holds, at most this many bytes (then let go of at once): ~800 list pages.
PAGES_HELD_BYTES = 8 * 1024 * 1024
REDIS_FAILED = "redis-failed"


def cached_page(view: Callable) -> Callable:
    @wraps(view)
    def wrapper(*args, **kwargs):
        seconds = float(current_app.config.get("CATALOG_CACHE_SECONDS") or 0)
        client = redis_client(current_app) if seconds > 0 else None
        if client is None:
            return view(*args, **kwargs)
        key = page_key(getattr(view, "api_operation", None), request.path, request.args)
        earlier = request.environ.get(LAYER_READ)
        if earlier == REDIS_FAILED:
            return view(*args, **kwargs)
        if earlier is not None and earlier[0] == key:
            version, page = earlier[1], None  # the layer's miss: no second round trip
        else:
            try:
                version, page = read_page(current_app, client, key)
            except redis.RedisError as exc:
                redis_failed(current_app, exc)
                return view(*args, **kwargs)
        if page is not None:
            etag, body = page
            return _finish(Response(body, mimetype="application/json"), etag, hit=True)
        response = current_app.make_response(view(*args, **kwargs))
        if response.status_code != 200 or response.direct_passthrough:
            return response
        body = response.get_data()
        etag = hashlib.blake2b(body, digest_size=16).hexdigest()
        try:
            client.set(key, b"\n".join((version, etag.encode(), body)), ex=max(1, round(seconds)))
        except redis.RedisError as exc:
            redis_failed(current_app, exc)
        return _finish(response, etag, hit=False)

    wrapper.cached_page = True
    return wrapper


@limiter.request_filter
def _is_cached_page() -> bool:
    view = current_app.view_functions.get(request.endpoint or "")
    return getattr(view, "cached_page", False)


def page_key(operation, path: str, args) -> str:
    """The Redis key of the page at ``path`` with query ``args`` (a MultiDict) for the endpoint
    declared by ``operation``: the path and the query as the endpoint will read it.

    Raises BadRequest like the endpoint."""
    return PAGE_PREFIX + _page_name(operation, path, args)


def read_page(app: Flask, client: redis.Redis, key: str) -> tuple[bytes, tuple[str, bytes] | None]:
    """One round trip: the catalog version now, and the page stored under ``key`` as
    (etag, body) if it was built at that version, else None. Raises redis.RedisError.

    One MGET reads both at one instant. (The Lua script of two GETs it replaces cost Redis more
    and copied the page twice more: 43 against 27 us of Redis CPU per 1.2 kB detail hit, 57
    against 35 us per 10 kB list page.)"""
    version, stored = _read(app, client, key)
    return version, _unpack(stored, version)


def _read(app: Flask, client: redis.Redis, key: str) -> tuple[bytes, bytes | None]:
    reader = app.extensions.get(_READER)
    if reader is None or reader.client is not client:
        reader = app.extensions[_READER] = (
            PageReader(client) if hasattr(client, "connection_pool")
            else ClientReader(client))  # a test's stand-in for Redis
    version, stored = reader.read(key)
    return (version or start_version(client)), stored


class ClientReader:
    """The version and the page through redis-py's own MGET (a test's stand-in for Redis)."""

    def __init__(self, client):
        self.client = client

    def read(self, key: str) -> list:
        return self.client.mget([VERSION_KEY, key])


class PageReader:
    """MGET of the version and the page on a connection of this thread's own, the command
    packed and sent directly: redis-py's pool and command wrappers cost about 0.07 ms of CPU
    per call, a sixth of what a whole cached answer may cost (issue 17). The connection is
    made by the client's pool (same server, database, credentials, timeouts) but kept per
    thread. Raises redis.RedisError; the connection is dropped after any error.

    A page read at the current version is also held in the process until Redis would expire
    it (its TTL is read with it, in the same round trip), up to PAGES_HELD_BYTES in all: the
    next read of it asks Redis for the version only, and a list page's 10 kB are not sent
    again while the catalog is unchanged. A version that moved lets go of every page held."""

    def __init__(self, client: redis.Redis):
        self.client = client
        self.local = threading.local()
        self.commands: dict[str, list] = {}  # key -> its packed MGET + PTTL (~4 us to pack)
        self.version_command: list | None = None
        # key -> (version, stored page, monotonic time Redis expires it); replaced, not cleared,
        # so that another thread's reader never sees it half emptied.
        self.held: dict[str, tuple[bytes, bytes, float]] = {}
        self.held_bytes = 0

    def read(self, key: str) -> list:
        conn = self._connection()
        now = time.monotonic()
        held = self.held.get(key)
        try:
            if held is not None and held[2] > now:
                version = self._ask(conn, self._version_command(conn))
                if version == held[0]:
                    return [version, held[1]]
                self.held, self.held_bytes = {}, 0  # the catalog changed: every page held is stale
            conn.send_packed_command(self._page_command(conn, key), check_health=False)
            version, stored = conn.read_response()
            ttl_ms = conn.read_response()
        except BaseException:
            conn.disconnect()  # never reuse a connection whose answer may still be on its way
            raise
        if stored and version and ttl_ms > 0 and stored.startswith(version + b"\n"):
            self._hold(key, (version, stored, now + ttl_ms / 1000))
        return [version, stored]

    def _connection(self):
        pid = os.getpid()
        conn = getattr(self.local, "conn", None)
        if conn is None or self.local.pid != pid:  # none yet in this thread, or a forked child
            conn = self.local.conn = self.client.connection_pool.make_connection()
            self.local.pid = pid
        return conn

    @staticmethod
    def _ask(conn, command: list):
        conn.send_packed_command(command, check_health=False)
        return conn.read_response()

    def _version_command(self, conn) -> list:
        if self.version_command is None:
            self.version_command = conn.pack_command("GET", VERSION_KEY)
        return self.version_command

    def _page_command(self, conn, key: str) -> list:
        command = self.commands.get(key)
        if command is None:
            if len(self.commands) >= COMMANDS_REMEMBERED:
                self.commands.clear()
            command = self.commands[key] = conn.pack_commands([("MGET", VERSION_KEY, key), ("PTTL", key)])
        return command

    def _hold(self, key: str, page: tuple[bytes, bytes, float]) -> None:
        size = len(page[1])
        replaced = self.held.get(key)  # an expired copy of the same page: its bytes go with it
        if replaced is not None:
            self.held_bytes -= len(replaced[1])
        if self.held_bytes + size > PAGES_HELD_BYTES:
            self.held, self.held_bytes = {}, 0
        self.held[key] = page
        self.held_bytes += size


def _unpack(stored: bytes | None, version: bytes) -> tuple[str, bytes] | None:
    if not stored:
        return None
    stored_version, etag, body = stored.split(b"\n", 2)
    return (etag.decode(), body) if stored_version == version else None


def _page_name(operation, path: str, args) -> str:
    query_model = operation.query if operation is not None else None
    if query_model is None:
        return path
    parsed = parse_query(query_model, args)
    # A model whose dump leaves out what it parsed (ProductQuery's attr.* filters) names it itself.
    # Otherwise defaults are left out: a page asked for without (or with the default of) a newer
    # parameter, such as the product detail's ?pickup=false, is the page it always was.
    if hasattr(parsed, "cache_key"):
        query = parsed.cache_key()
    else:
        query = parsed.model_dump(mode="json", exclude_defaults=True)
    return f"{path}?{urlencode(sorted(query.items()))}" if query else path


def _finish(response: Response, etag: str, *, hit: bool) -> Response:
    response.set_etag(etag)
    response.headers["X-Cache"] = "hit" if hit else "miss"
    return response.make_conditional(request)  # 304 on a (weakly) matching If-None-Match
