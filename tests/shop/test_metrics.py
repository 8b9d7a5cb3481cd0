"""/metrics: who may read it, and what a scrape costs the database."""

from __future__ import annotations

import time

import pytest
from sqlalchemy import event

from ecom.extensions import db as _db
from shop.metrics import EXTENSION
from tests.factories import make_order


@pytest.fixture
def business(app):
    """The app's business collector with a clock the test moves, its cache emptied."""
    collector = app.extensions[EXTENSION]
    now = [1000.0]
    collector.clock = lambda: now[0]
    collector.forget()
    yield collector, now
    collector.clock = time.monotonic
    collector.forget()


@pytest.fixture
def group_bys(app):
    """The GROUP BY statements the app runs while the test does."""
    seen: list[str] = []

    def record(conn, cursor, statement, *args):
        if "GROUP BY" in statement.upper():
            seen.append(statement)

    with app.app_context():
        engine = _db.engine
    event.listen(engine, "before_cursor_execute", record)
    yield seen
    event.remove(engine, "before_cursor_execute", record)


@pytest.mark.parametrize("env_name", ["production", "bench"])
def test_without_a_token_metrics_are_refused_outside_development_and_test(client, app, monkeypatch, env_name):
    # given a production (or bench) app with no METRICS_TOKEN
    monkeypatch.setitem(app.config, "ENV_NAME", env_name)
    monkeypatch.setitem(app.config, "METRICS_TOKEN", None)

    # when anyone scrapes /metrics
    response = client.get("/metrics")

    # then it is refused and says how to open it
    assert response.status_code == 403
    assert "METRICS_TOKEN" in response.get_data(as_text=True)
    assert "ecom_orders" not in response.get_data(as_text=True)


@pytest.mark.parametrize("authorization", [None, "Bearer wrong-token", "Basic s3cret-metrics-token",
                                           "Bearer", "Bearer s3cret-metrics-token-and-more"])
def test_with_a_token_only_its_bearer_reads_metrics(client, app, monkeypatch, authorization):
    monkeypatch.setitem(app.config, "ENV_NAME", "production")
    monkeypatch.setitem(app.config, "METRICS_TOKEN", "s3cret-metrics-token")
    headers = {"Authorization": authorization} if authorization else {}

    refused = client.get("/metrics", headers=headers)
    allowed = client.get("/metrics", headers={"Authorization": "Bearer s3cret-metrics-token"})

    assert refused.status_code == 401
    assert refused.headers["WWW-Authenticate"].startswith("Bearer")
    assert allowed.status_code == 200
    assert "http_requests_total" in allowed.get_data(as_text=True)


def test_business_gauges_are_read_once_per_interval_not_per_scrape(client, app, db, business, group_bys,
                                                                   monkeypatch):
    collector, now = business
    monkeypatch.setitem(app.config, "METRICS_CACHE_SECONDS", 15.0)
    make_order(status="paid")
    db.session.commit()

    # given a first scrape, which reads the figures
    first = client.get("/metrics").get_data(as_text=True)
    assert 'ecom_orders{status="paid"} 1.0' in first
    reads = len(group_bys)
    assert reads > 0

    # when more scrapes come within the interval, after another order was paid
    make_order(status="paid")
    db.session.commit()
    now[0] += 14
    again = [client.get("/metrics").get_data(as_text=True) for _ in range(5)]

    # then they run no GROUP BY and serve the figures read first
    assert len(group_bys) == reads
    assert all('ecom_orders{status="paid"} 1.0' in body for body in again)

    # and once the interval has passed, the next scrape reads them again
    now[0] += 2
    fresh = client.get("/metrics").get_data(as_text=True)
    assert 'ecom_orders{status="paid"} 2.0' in fresh
    assert len(group_bys) > reads
