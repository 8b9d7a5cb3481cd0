import pytest

from ecom.config import INSECURE_DEFAULT
from shop.app import create_app


def test_create_app_applies_config_overrides(app):
    assert app.config["TESTING"] is True
    assert "api" in app.blueprints


@pytest.mark.parametrize(
    "secrets",
    [
        {},
        {"SECRET_KEY": INSECURE_DEFAULT, "JWT_SECRET": "a-strong-jwt-secret-0123456789abcdef"},
        {"SECRET_KEY": "a-strong-secret-key-0123456789abcdef", "JWT_SECRET": INSECURE_DEFAULT},
        {"SECRET_KEY": "short", "JWT_SECRET": "a-strong-jwt-secret-0123456789abcdef"},
    ],
)
def test_production_refuses_missing_or_default_secrets(monkeypatch, secrets):
    monkeypatch.delenv("SECRET_KEY", raising=False)
    monkeypatch.delenv("JWT_SECRET", raising=False)
    config = {"ENV_NAME": "production", "SECRET_KEY": INSECURE_DEFAULT, "JWT_SECRET": INSECURE_DEFAULT}
    config.update(secrets)
    with pytest.raises(RuntimeError, match="must be set"):
        create_app(config)


def test_production_starts_with_real_secrets():
    app = create_app(
        {
            "ENV_NAME": "production",
            "SECRET_KEY": "a-strong-secret-key-0123456789abcdef",
            "JWT_SECRET": "a-strong-jwt-secret-0123456789abcdef",
            "SQLALCHEMY_DATABASE_URI": "sqlite://",
        }
    )
    assert app.config["ENV_NAME"] == "production"


def test_index_describes_the_service(client):
    response = client.get("/")
    assert response.status_code == 200
    assert response.json["api"] == "/api/v1"
    assert response.json["admin"] == "/admin/"


def test_health_reports_database_and_redis(client):
    response = client.get("/health")
    assert response.status_code == 200
    assert response.json == {"status": "ok", "database": "ok", "redis": "disabled"}


def test_health_is_503_when_the_database_is_down():
    app = create_app(
        {
            "TESTING": True,
            "SQLALCHEMY_DATABASE_URI": "postgresql+psycopg://nobody@127.0.0.1:1/none",
            "SQLALCHEMY_ENGINE_OPTIONS": {"connect_args": {"connect_timeout": 1}},
            "REDIS_URL": None,
        }
    )
    response = app.test_client().get("/health")
    assert response.status_code == 503
    assert response.json["database"].startswith("error")


def test_request_id_is_echoed_when_valid_and_generated_otherwise(client):
    echoed = client.get("/", headers={"X-Request-ID": "abc-123"})
    assert echoed.headers["X-Request-ID"] == "abc-123"
    replaced = client.get("/", headers={"X-Request-ID": "bad id with spaces"})
    assert replaced.headers["X-Request-ID"] != "bad id with spaces"
    assert len(replaced.headers["X-Request-ID"]) == 32


def test_metrics_exposes_traffic_and_business_figures(client, db):
    from tests.factories import make_order

    make_order(status="paid")
    db.session.commit()
    client.get("/")

    body = client.get("/metrics").get_data(as_text=True)

    assert 'http_requests_total{endpoint="/",method="GET",status="200"}' in body
    assert "http_request_duration_seconds_bucket" in body
    assert 'ecom_orders{status="paid"} 1.0' in body
    assert "ecom_outbox_backlog" in body


def test_a_non_testing_app_serves_requests_with_its_background_hooks(tmp_path):
    """The embedded (no Redis) mode installs request hooks; they must not hijack responses."""
    import logging

    from tests.conftest import _fresh_schema

    root_handlers = logging.getLogger().handlers[:]
    try:
        served = create_app({
            "TESTING": False,
            "SQLALCHEMY_DATABASE_URI": f"sqlite:///{tmp_path / 'served.sqlite3'}",
            "REDIS_URL": None,
            "EXPIRY_INTERVAL_SECONDS": 0,
        })
        _fresh_schema(served)
        response = served.test_client().get("/health")
    finally:
        logging.getLogger().handlers[:] = root_handlers
    assert response.status_code == 200
    assert response.json["database"] == "ok"
