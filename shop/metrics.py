"""Prometheus metrics at /metrics: HTTP traffic, orders, payments, queues.

Counters live per process (prometheus_client's default registry); business
gauges (orders by status, payment outcomes, outbox backlog, queue depth) are
read from PostgreSQL/Redis at most once per ``METRICS_CACHE_SECONDS`` per
process and served from memory in between, so however often (and however many
scrapers) ask, the database sees a few GROUP BYs a minute.

/metrics is not public: with ``METRICS_TOKEN`` set it needs
``Authorization: Bearer <token>``; without one it is served only in
development and test, refused elsewhere.
"""

from __future__ import annotations

import hmac
import threading
import time

from flask import Flask, Response, g, request
from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily
from sqlalchemy import func, select

from ecom.extensions import csrf, db

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
EXTENSION = "shop_metrics"
HTTP_EXTENSION = "shop_http_metrics"
# Modes where /metrics may be served without a token (nothing there is anyone else's).
OPEN_WITHOUT_TOKEN = ("development", "test")


class BusinessCollector:
    """Order, payment and queue figures, read at most once per ``METRICS_CACHE_SECONDS``."""

    def __init__(self, app: Flask):
        self.app = app
        self.clock = time.monotonic  # tests put a clock of their own here
        self._lock = threading.Lock()
        self._figures: dict | None = None
        self._read_at = 0.0

    def forget(self) -> None:
        """Drop the cached figures: the next scrape reads them again."""
        with self._lock:
            self._figures = None

    def figures(self) -> dict:
        seconds = self.app.config["METRICS_CACHE_SECONDS"]
        with self._lock:  # one reader at a time: concurrent scrapes share one reading
            now = self.clock()
            if self._figures is None or now - self._read_at >= seconds:
                self._figures = self._read()
                self._read_at = now
            return self._figures

    def _read(self) -> dict:
        from ecom.commerce.models import Order, Payment
        from ecom.notifications.models import OutboxEvent

        with self.app.app_context():
            try:
                return {
                    "orders": list(db.session.execute(
                        select(Order.status, func.count()).group_by(Order.status))),
                    "payments": list(db.session.execute(
                        select(Payment.status, func.count()).group_by(Payment.status))),
                    "backlog": db.session.scalar(
                        select(func.count()).select_from(OutboxEvent)
                        .where(OutboxEvent.dispatched_at.is_(None))) or 0,
                    "queues": _queue_depths(self.app),
                }
            finally:
                db.session.remove()

    def collect(self):
        figures = self.figures()
        orders = GaugeMetricFamily("ecom_orders", "Orders by status", labels=["status"])
        payments = GaugeMetricFamily("ecom_payments", "Payments by outcome", labels=["status"])
        backlog = GaugeMetricFamily("ecom_outbox_backlog", "Outbox events not yet dispatched")
        queues = GaugeMetricFamily("ecom_queue_depth", "Jobs waiting per RQ queue", labels=["queue"])
        for status, count in figures["orders"]:
            orders.add_metric([status], count)
        for status, count in figures["payments"]:
            payments.add_metric([status], count)
        backlog.add_metric([], figures["backlog"])
        for name, depth in figures["queues"].items():
            queues.add_metric([name], depth)
        yield from (orders, payments, backlog, queues)


def _queue_depths(app: Flask) -> dict[str, int]:
    url = app.config.get("REDIS_URL")
    if not url:
        return {}
    import redis

    try:
        connection = redis.Redis.from_url(url, socket_connect_timeout=1, socket_timeout=1)
        return {name: connection.llen(f"rq:queue:{name}") for name in ("notifications", "default")}
    except redis.RedisError:
        return {}


def refusal(app: Flask) -> Response | None:
    """Why this request may not read /metrics (a 401 or 403 response), or None if it may."""
    token = app.config.get("METRICS_TOKEN")
    if not token:
        if app.config["ENV_NAME"] in OPEN_WITHOUT_TOKEN:
            return None
        return Response("Set METRICS_TOKEN to serve /metrics outside development and test.\n",
                        status=403, mimetype="text/plain")
    scheme, _, given = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() == "bearer" and hmac.compare_digest(given.strip().encode(), token.encode()):
        return None
    return Response("A bearer token is required.\n", status=401, mimetype="text/plain",
                    headers={"WWW-Authenticate": 'Bearer realm="metrics"'})


class HttpMetrics:
    """The per-request counters: requests by route pattern, method and status, and latency.

    Flask's after-request hook and the page layer in front of Flask (``shop.page_layer``)
    both record through ``observe``, so a page served either way counts the same."""

    def __init__(self, registry: CollectorRegistry):
        self.requests_total = Counter(
            "http_requests_total", "HTTP requests", ["endpoint", "method", "status"], registry=registry
        )
        self.latency = Histogram(
            "http_request_duration_seconds", "HTTP request latency", ["endpoint", "method"],
            registry=registry,
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
        )

        # The labelled children, found once: ``labels()`` takes a lock and builds a key per call.
        self._counters: dict = {}
        self._latencies: dict = {}

    def observe(self, endpoint: str, method: str, status: int, seconds: float | None) -> None:
        """``endpoint``: the route pattern, not the raw path, keeps label cardinality bounded."""
        counter = self._counters.get((endpoint, method, status))
        if counter is None:
            counter = self._counters[endpoint, method, status] = self.requests_total.labels(
                endpoint, method, str(status))
        counter.inc()
        if seconds is not None:
            latency = self._latencies.get((endpoint, method))
            if latency is None:
                latency = self._latencies[endpoint, method] = self.latency.labels(endpoint, method)
            latency.observe(seconds)


def http_metrics(app: Flask) -> HttpMetrics:
    return app.extensions[HTTP_EXTENSION]


def init_metrics(app: Flask) -> None:
    registry = CollectorRegistry()
    http = app.extensions[HTTP_EXTENSION] = HttpMetrics(registry)
    business = BusinessCollector(app)
    registry.register(business)
    app.extensions[EXTENSION] = business

    @app.after_request
    def observe(response):
        started = g.get("request_started")  # set by shop.logging's before_request
        endpoint = request.url_rule.rule if request.url_rule else "unmatched"
        http.observe(endpoint, request.method, response.status_code,
                     None if started is None else time.perf_counter() - started)
        return response

    @app.get("/metrics")
    def metrics():
        refused = refusal(app)
        if refused is not None:
            return refused
        return Response(generate_latest(registry), mimetype=CONTENT_TYPE)

    csrf.exempt(metrics)
