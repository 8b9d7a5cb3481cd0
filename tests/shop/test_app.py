import pytest

from ecom.config import DEVELOPMENT_WEBHOOK_SECRET, INSECURE_DEFAULT
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


PRODUCTION = {
    "ENV_NAME": "production",
    "SECRET_KEY": "a-strong-secret-key-0123456789abcdef",
    "JWT_SECRET": "a-strong-jwt-secret-0123456789abcdef",
    "STRIPE_SECRET_KEY": "sk_live_0123456789",
    "STRIPE_WEBHOOK_SECRET": "whsec_from_the_stripe_dashboard",
    "SQLALCHEMY_DATABASE_URI": "sqlite://",
}


def test_production_starts_with_real_secrets():
    app = create_app(PRODUCTION)
    assert app.config["ENV_NAME"] == "production"


def test_production_without_a_stripe_key_refuses_to_start():
    # given production with no real gateway and nothing saying the simulator is meant
    config = dict(PRODUCTION, STRIPE_SECRET_KEY=None, ALLOW_SIMULATED_GATEWAY=False)

    # when the app starts, then it refuses, naming the variable and the way out
    with pytest.raises(RuntimeError, match="STRIPE_SECRET_KEY.*ALLOW_SIMULATED_GATEWAY"):
        create_app(config)


def test_a_staging_shop_runs_the_simulator_when_the_setting_says_so():
    app = create_app(dict(PRODUCTION, STRIPE_SECRET_KEY=None, ALLOW_SIMULATED_GATEWAY=True))

    assert app.config["ENV_NAME"] == "production"


@pytest.mark.parametrize("secret", [None, "", DEVELOPMENT_WEBHOOK_SECRET])
def test_production_without_its_own_webhook_secret_refuses_to_start(secret):
    # given production with a Stripe key and no webhook secret of its own (or the public one)
    with pytest.raises(RuntimeError, match="STRIPE_WEBHOOK_SECRET"):
        create_app(dict(PRODUCTION, STRIPE_WEBHOOK_SECRET=secret))


def test_production_from_the_environment_has_no_webhook_secret_to_fall_back_on(monkeypatch):
    # given the environment a production server would have, minus the webhook secret
    for name in ("STRIPE_WEBHOOK_SECRET", "FLASK_ENV"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("APP_ENV", "production")
    monkeypatch.setenv("SECRET_KEY", PRODUCTION["SECRET_KEY"])
    monkeypatch.setenv("JWT_SECRET", PRODUCTION["JWT_SECRET"])
    monkeypatch.setenv("STRIPE_SECRET_KEY", PRODUCTION["STRIPE_SECRET_KEY"])

    with pytest.raises(RuntimeError, match="STRIPE_WEBHOOK_SECRET"):
        create_app({"SQLALCHEMY_DATABASE_URI": "sqlite://"})


@pytest.mark.parametrize("name", ["prod", "Production"])
def test_an_unknown_mode_refuses_to_start(monkeypatch, name):
    monkeypatch.setenv("APP_ENV", name)

    with pytest.raises(ValueError, match="APP_ENV must be one of"):
        create_app({"SQLALCHEMY_DATABASE_URI": "sqlite://"})
    # and a mode given as an override is held to the same list
    monkeypatch.delenv("APP_ENV")
    with pytest.raises(ValueError, match="APP_ENV must be one of"):
        create_app(dict(PRODUCTION, ENV_NAME=name))


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


def test_metrics_exposes_traffic_and_business_figures(app, client, db):
    from shop.metrics import EXTENSION
    from tests.factories import make_order

    app.extensions[EXTENSION].forget()  # figures another test's scrape left in the cache
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
