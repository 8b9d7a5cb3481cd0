"""Prometheus metrics at /metrics: HTTP traffic, orders, payments, queues.

Counters live per process (prometheus_client's default registry); business
gauges (orders by status, payment outcomes, queue depth) are read from
PostgreSQL/Redis at scrape time, so they agree across every web process.
"""

from __future__ import annotations

import time

from flask import Flask, Response, g, request
from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily
from sqlalchemy import func, select

from ecom.extensions import csrf, db

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


class BusinessCollector:
    """Reads order, payment and queue figures at scrape time."""

    def __init__(self, app: Flask):
        self.app = app

    def collect(self):
        from ecom.commerce.models import Order, Payment
        from ecom.notifications.models import OutboxEvent

        orders = GaugeMetricFamily("ecom_orders", "Orders by status", labels=["status"])
        payments = GaugeMetricFamily("ecom_payments", "Payments by outcome", labels=["status"])
        backlog = GaugeMetricFamily("ecom_outbox_backlog", "Outbox events not yet dispatched")
        queues = GaugeMetricFamily("ecom_queue_depth", "Jobs waiting per RQ queue", labels=["queue"])
        with self.app.app_context():
            for status, count in db.session.execute(
                select(Order.status, func.count()).group_by(Order.status)
            ):
                orders.add_metric([status], count)
            for status, count in db.session.execute(
                select(Payment.status, func.count()).group_by(Payment.status)
            ):
                payments.add_metric([status], count)
            backlog.add_metric([], db.session.scalar(
                select(func.count()).select_from(OutboxEvent)
                .where(OutboxEvent.dispatched_at.is_(None))
            ) or 0)
            for name, depth in _queue_depths(self.app).items():
                queues.add_metric([name], depth)
            db.session.remove()
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


def init_metrics(app: Flask) -> None:
    registry = CollectorRegistry()
    requests_total = Counter(
        "http_requests_total", "HTTP requests", ["endpoint", "method", "status"], registry=registry
    )
    latency = Histogram(
        "http_request_duration_seconds", "HTTP request latency", ["endpoint", "method"],
        registry=registry,
        buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
    )
    registry.register(BusinessCollector(app))

    @app.after_request
    def observe(response):
        started = g.get("request_started")  # set by shop.logging's before_request
        # The route pattern, not the raw path, keeps label cardinality bounded.
        endpoint = request.url_rule.rule if request.url_rule else "unmatched"
        requests_total.labels(endpoint, request.method, str(response.status_code)).inc()
        if started is not None:
            latency.labels(endpoint, request.method).observe(time.perf_counter() - started)
        return response

    @app.get("/metrics")
    def metrics():
        return Response(generate_latest(registry), mimetype=CONTENT_TYPE)

    csrf.exempt(metrics)
