"""Configuration, read only from environment variables (and ``.env`` in development).

``load_config`` is the one reader of the environment: every variable the
README's configuration table documents is read here, and nothing else reads
the environment for a setting (tests/ecom/test_config.py holds both to that).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from decimal import Decimal
from pathlib import Path

INSECURE_DEFAULT = "dev-insecure-change-me"
PROJECT_ROOT = Path(__file__).resolve().parent.parent


class _Environment:
    """Typed reads of one environment mapping; an empty value counts as unset."""

    def __init__(self, environ: Mapping[str, str]):
        self.environ = environ

    def str(self, name: str, default: str | None = None) -> str | None:
        value = self.environ.get(name)
        return value if value not in (None, "") else default

    def int(self, name: str, default: int) -> int:
        return int(self.str(name) or default)

    def bool(self, name: str, default: bool = False) -> bool:
        value = self.str(name)
        if value is None:
            return default
        return value.strip().lower() in {"1", "true", "yes", "on"}


def _normalise_db_url(url: str) -> str:
    # Heroku-style URLs and bare "postgresql://" should use psycopg 3.
    if url.startswith("postgres://"):
        url = "postgresql://" + url[len("postgres://"):]
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url[len("postgresql://"):]
    return url


def default_sqlite_url() -> str:
    instance = PROJECT_ROOT / "instance"
    instance.mkdir(exist_ok=True)
    return f"sqlite:///{instance / 'ecom.sqlite3'}"


def load_config(environ: Mapping[str, str] | None = None) -> dict:
    """Build the Flask config dict from the environment (``os.environ`` unless given).

    Raises ValueError for a value of the wrong type (a port that is not a number).
    """
    env = _Environment(os.environ if environ is None else environ)
    env_name = env.str("APP_ENV", env.str("FLASK_ENV", "development"))
    database_url = _normalise_db_url(env.str("DATABASE_URL") or default_sqlite_url())
    engine_options: dict = {"pool_pre_ping": True}
    pool = {"pool_size": env.int("DB_POOL_SIZE", 10), "max_overflow": env.int("DB_MAX_OVERFLOW", 20)}
    if not database_url.startswith("sqlite"):
        engine_options.update(pool, pool_recycle=1800)
    return {
        "ENV_NAME": env_name,
        "TESTING": False,
        # Where `make run` (and the Procfile's web process) listens; seed-demo prints it.
        "PORT": env.int("PORT", 8000),
        "SECRET_KEY": env.str("SECRET_KEY", INSECURE_DEFAULT),
        "JWT_SECRET": env.str("JWT_SECRET", INSECURE_DEFAULT),
        "JWT_LIFETIME_SECONDS": env.int("JWT_LIFETIME_SECONDS", 3600),
        "SQLALCHEMY_DATABASE_URI": database_url,
        "SQLALCHEMY_ENGINE_OPTIONS": engine_options,
        "REDIS_URL": env.str("REDIS_URL"),
        "STRIPE_SECRET_KEY": env.str("STRIPE_SECRET_KEY"),
        "STRIPE_WEBHOOK_SECRET": env.str("STRIPE_WEBHOOK_SECRET", "whsec_dev_simulated"),
        "STRIPE_API_BASE": env.str("STRIPE_API_BASE"),
        "CORS_ORIGINS": [o.strip() for o in (env.str("CORS_ORIGINS", "") or "").split(",") if o.strip()],
        "RESERVATION_TTL_SECONDS": env.int("RESERVATION_TTL_SECONDS", 900),
        "TAX_RATE": Decimal(env.str("TAX_RATE", "0.08")),
        "SHIPPING_FLAT_RATE": Decimal(env.str("SHIPPING_FLAT_RATE", "5.99")),
        "FREE_SHIPPING_THRESHOLD": Decimal(env.str("FREE_SHIPPING_THRESHOLD", "50.00")),
        "CURRENCY": env.str("CURRENCY", "usd").lower(),
        "SHOP_NAME": env.str("SHOP_NAME", "Ecom Shop"),
        "MAIL_BACKEND": env.str("MAIL_BACKEND", "console"),
        "MAIL_FROM": env.str("MAIL_FROM", "shop@example.com"),
        "SMS_BACKEND": env.str("SMS_BACKEND", "console"),
        "SMTP_HOST": env.str("SMTP_HOST", "localhost"),
        "SMTP_PORT": env.int("SMTP_PORT", 25),
        "SMTP_USER": env.str("SMTP_USER"),
        "SMTP_PASSWORD": env.str("SMTP_PASSWORD"),
        "SMTP_USE_TLS": env.bool("SMTP_USE_TLS"),
        "SMTP_TIMEOUT_SECONDS": float(env.str("SMTP_TIMEOUT_SECONDS", "30")),
        # RQ back-off of a failed delivery, in seconds, one retry per entry.
        "NOTIFY_RETRY_INTERVALS": _seconds_list(env.str("NOTIFY_RETRY_INTERVALS", "10,30,60,300,900")),
        "LOG_LEVEL": env.str("LOG_LEVEL", "INFO").upper(),
        "LOGIN_RATE_LIMIT": env.str("LOGIN_RATE_LIMIT", "10 per 5 minutes"),
        "SIGNUP_RATE_LIMIT": env.str("SIGNUP_RATE_LIMIT", "20 per hour"),
        "RATELIMIT_ENABLED": env.bool("RATELIMIT_ENABLED", True),
        # The largest request body accepted (413 beyond it); the back office's CSV import
        # allows its own, larger limit on that one route.
        "MAX_CONTENT_LENGTH": env.int("MAX_REQUEST_BYTES", 1024 * 1024),
        # Periodic work, every N seconds (0 turns it off): with REDIS_URL as worker jobs; without,
        # EXPIRY_INTERVAL_SECONDS paces the serving process's embedded timer.
        "RELAY_INTERVAL_SECONDS": env.int("RELAY_INTERVAL_SECONDS", 5),
        "EXPIRY_INTERVAL_SECONDS": env.int("EXPIRY_INTERVAL_SECONDS", 30),
        "CART_PURGE_INTERVAL_SECONDS": env.int("CART_PURGE_INTERVAL_SECONDS", 3600),
        "GATEWAY_RETRY_INTERVAL_SECONDS": env.int("GATEWAY_RETRY_INTERVAL_SECONDS", 60),
        "CATALOG_CACHE_SECONDS": float(env.str("CATALOG_CACHE_SECONDS", "30")),
        "SESSION_COOKIE_SECURE": env_name == "production",
        "SESSION_COOKIE_HTTPONLY": True,
        "SESSION_COOKIE_SAMESITE": "Lax",
        "REMEMBER_COOKIE_SECURE": env_name == "production",
        "WTF_CSRF_ENABLED": True,
        "FLASK_ADMIN_SWATCH": "cerulean",
    }


def _seconds_list(value: str) -> tuple[int, ...]:
    """``"10,30,60"`` as seconds. Raises ValueError for a part that is not a whole number, or
    for no number at all (RQ needs at least one interval)."""
    seconds = tuple(int(part) for part in value.split(",") if part.strip())
    if not seconds:
        raise ValueError(f"Expected comma-separated seconds, got {value!r}.")
    return seconds


def check_production_secrets(config: dict) -> None:
    """Refuse to run in production with a missing or default secret."""
    if config.get("ENV_NAME") != "production":
        return
    for name in ("SECRET_KEY", "JWT_SECRET"):
        value = config.get(name)
        # 32 bytes: the minimum RFC 7518 recommends for an HS256 key.
        if not value or value == INSECURE_DEFAULT or len(value.encode()) < 32:
            raise RuntimeError(
                f"{name} must be set to a strong secret (32+ bytes) in production."
            )
