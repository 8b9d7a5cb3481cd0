"""Cached catalog pages answered in front of Flask, observed exactly as Flask would observe them.

A cached page costs Flask about 1.1 ms of CPU (request context, a dozen before/after hooks,
the session, routing, the response object) to send bytes already rendered. This WSGI layer
wraps the app's ``wsgi_app`` and, for a GET or HEAD of a route marked ``@cached_page``,
does what the decorator does on a hit with the same functions:

* routing with the app's own URL adapter (so the same rule, or nothing);
* the page's key from the path and the *parsed* query (``storefront_api.caching.page_key``);
* one Redis round trip for the catalog version and the page (``read_page``);
* the answer: the stored body and ETag, ``X-Cache: hit``, 304 on a matching If-None-Match
  (werkzeug's own rule), the security headers (``shop.security_headers.api_headers``),
  CORS from flask-cors's ``get_cors_headers`` with the app's resolved options, ``Vary:
  Cookie`` as Flask's session adds it, and the request id;
* the access-log line (``shop.logging.log_request_line``) and the request metrics
  (``shop.metrics.HttpMetrics.observe``, labelled by the route pattern).

Anything else goes to Flask untouched: other methods and paths, a miss (which carries what
was read, so the decorator does not read Redis again), a query the endpoint refuses (Flask
answers the 400), a session or remember-me cookie (Flask may refresh it), If-Match or
Range, no Redis or a Redis error (the usual back-off), and any unexpected exception
(logged). Cached pages have no rate limit in Flask either (``caching._is_cached_page``).

``tests/shop/test_page_layer.py`` holds each kind of answer byte for byte to Flask's.
"""

from __future__ import annotations

import logging
import time
from urllib.parse import unquote

import redis
from flask import Flask
from werkzeug.datastructures import EnvironHeaders
from werkzeug.exceptions import HTTPException
from werkzeug.http import HTTP_STATUS_CODES, http_date, is_resource_modified, quote_etag

from ecom.catalog.cache_version import redis_client, redis_failed
from ecom.errors import EcomError
from shop.logging import log_request_line, request_id_for
from shop.metrics import http_metrics
from shop.security_headers import api_headers
from storefront_api import CORS_EXTENSION
from storefront_api.caching import LAYER_READ, REDIS_FAILED, page_key, read_page

log = logging.getLogger("ecom.page_layer")

STATUS_LINES = {code: f"{code} {HTTP_STATUS_CODES[code].upper()}" for code in (200, 304)}
# Entity headers werkzeug leaves out of a 304.
ENTITY_HEADERS = ("Content-Type", "Content-Length")
# Pages named from their request line, at most this many per process (then forgotten at once).
PAGES_REMEMBERED = 4096


class PageLayer:
    """WSGI middleware: ``app.wsgi_app = PageLayer(app, app.wsgi_app)``."""

    def __init__(self, app: Flask, wsgi_app):
        self.app = app
        self.wsgi_app = wsgi_app  # Flask's own: every request the layer does not answer
        # The fixed start of each cached route: a cheap test before any routing.
        self.prefixes = tuple(sorted({
            rule.rule.split("<", 1)[0] for rule in app.url_map.iter_rules()
            if getattr(app.view_functions.get(rule.endpoint), "cached_page", False)
        }))
        cookies = (app.config.get("SESSION_COOKIE_NAME") or "session",
                   app.config.get("REMEMBER_COOKIE_NAME") or "remember_token")
        self.cookie_names = tuple(f"{name}=" for name in cookies)
        self._adapter = None
        # (method, PATH_INFO, QUERY_STRING) -> (route pattern, path, Redis key): routing and
        # parsing the query are pure functions of these (unless the host matters), and they
        # are most of what naming a page costs.
        self._pages: dict[tuple[str, str, str], tuple[str, str, str]] = {}
        self._date = (0, "")  # (Unix second, its HTTP date): formatting one costs ~12 us

    def __call__(self, environ, start_response):
        answer = None
        if (environ["REQUEST_METHOD"] in ("GET", "HEAD") and self.prefixes
                and environ.get("PATH_INFO", "").startswith(self.prefixes)):
            try:
                answer = self.answer(environ)
            except Exception:  # never a 500 from here: Flask answers as it always did
                log.exception("page layer: handing %s to Flask", environ.get("PATH_INFO"))
        if answer is None:
            return self.wsgi_app(environ, start_response)
        status, headers, body = answer
        start_response(status, headers)
        return [body]

    def answer(self, environ) -> tuple[str, list[tuple[str, str]], bytes] | None:
        """(status line, headers, body) of a cached page, or None to let Flask answer."""
        started = time.perf_counter()
        cookie = environ.get("HTTP_COOKIE")
        if cookie and any(name in cookie for name in self.cookie_names):
            return None  # Flask may refresh the session or remember-me cookie
        if "HTTP_IF_MATCH" in environ or "HTTP_RANGE" in environ:
            return None  # rare: werkzeug's 412 and range rules stay with Flask
        app = self.app
        if float(app.config.get("CATALOG_CACHE_SECONDS") or 0) <= 0:
            return None
        client = redis_client(app)
        if client is None:
            return None
        method = environ["REQUEST_METHOD"]
        asked = (method, environ.get("PATH_INFO", ""), environ.get("QUERY_STRING", ""))
        page_of = self._pages.get(asked)
        if page_of is None:
            page_of = self._page_of(environ, method)
            if page_of is None:
                return None  # Flask answers: not a cached page, or not this way
            if not self._host_matters():
                if len(self._pages) >= PAGES_REMEMBERED:
                    self._pages.clear()
                self._pages[asked] = page_of
        rule, path, key = page_of
        try:
            version, page = read_page(app, client, key)
        except redis.RedisError as exc:
            redis_failed(app, exc)
            environ[LAYER_READ] = REDIS_FAILED
            return None
        if page is None:
            environ[LAYER_READ] = (key, version)
            return None
        etag, body = page
        request_id = request_id_for(environ.get("HTTP_X_REQUEST_ID", ""))
        quoted = quote_etag(etag)
        # werkzeug's rule (make_conditional); without If-None-Match nothing can match an ETag.
        status = 304 if ("HTTP_IF_NONE_MATCH" in environ
                         and not is_resource_modified(environ, quoted)) else 200
        headers = [("Content-Type", "application/json"), ("Content-Length", str(len(body))),
                   ("ETag", quoted), ("X-Cache", "hit"), ("Date", self._http_date()),
                   *api_headers(app, path, authorization="HTTP_AUTHORIZATION" in environ)]
        vary_at = None
        for name, value in self._cors_headers(environ, path, method):
            if name == "Vary":  # Flask's session adds Cookie to the first Vary header
                vary_at, value = len(headers), f"{value}, Cookie"
            headers.append((name, value))
        headers.append(("X-Request-ID", request_id))
        if vary_at is None:
            headers.append(("Vary", "Cookie"))
        if status == 304:
            headers = [(name, value) for name, value in headers if name not in ENTITY_HEADERS]
        elapsed = time.perf_counter() - started
        log_request_line(request_id, method, path, status, round(elapsed * 1000, 2), None)
        http_metrics(app).observe(rule, method, status, elapsed)
        return STATUS_LINES[status], headers, (body if status == 200 and method == "GET" else b"")

    def _http_date(self) -> str:
        """``werkzeug.http.http_date()`` (what ``make_conditional`` writes), made once a second."""
        now = int(time.time())
        second, text = self._date
        if second != now:
            text = http_date(now)
            self._date = (now, text)
        return text

    def _page_of(self, environ, method: str) -> tuple[str, str, str] | None:
        """(route pattern, path, Redis key) of the cached page asked for, or None."""
        request = self.app.request_class(environ)
        try:
            rule, _ = self._match(request, method)
            view = self.app.view_functions.get(rule.endpoint)
            if not getattr(view, "cached_page", False):
                return None
            path = request.path
            return rule.rule, path, page_key(getattr(view, "api_operation", None), path, request.args)
        except (HTTPException, EcomError):
            return None  # no such route, a redirect, a refused query: Flask says so

    def _host_matters(self) -> bool:
        app = self.app
        return bool(app.url_map.host_matching or app.subdomain_matching or app.config.get("SERVER_NAME")
                    or app.config.get("TRUSTED_HOSTS"))

    def _match(self, request, method: str):
        """(rule, arguments) for the request, as Flask's URL adapter finds them.

        Rules here match on the path and method alone, so one adapter bound once serves
        every request; with host or subdomain matching, SERVER_NAME or TRUSTED_HOSTS (where
        Flask's adapter also checks the host) Flask's own is made per request. Raises
        werkzeug's NotFound, MethodNotAllowed, RequestRedirect."""
        app = self.app
        if self._host_matters():
            return app.create_url_adapter(request).match(return_rule=True)
        if self._adapter is None:
            self._adapter = app.url_map.bind("localhost")
        return self._adapter.match(request.path, method, return_rule=True)

    def _cors_headers(self, environ, path: str, method: str) -> list[tuple[str, str]]:
        resources = self.app.extensions.get(CORS_EXTENSION)
        if not resources:
            return []
        from flask_cors.core import get_cors_headers, try_match_pattern

        normalized = unquote(path)
        for pattern, options in resources:
            if try_match_pattern(normalized, pattern, caseSensitive=True):
                headers = get_cors_headers(options, EnvironHeaders(environ), method)
                return list(headers.items(multi=True))
        return []


def init_page_layer(app: Flask) -> None:
    """Put the layer in front of the app's WSGI callable; call last in ``create_app``."""
    app.wsgi_app = PageLayer(app, app.wsgi_app)
