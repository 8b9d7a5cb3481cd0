"""Configuration, read only from environment variables (and ``.env`` in development)."""

from __future__ import annotations

import os
from decimal import Decimal
from pathlib import Path

INSECURE_DEFAULT = "dev-insecure-change-me"
PROJECT_ROOT = Path(__file__).resolve().parent.parent


def _env(name: str, default: str | None = None) -> str | None:
    value = os.environ.get(name)
    return value if value not in (None, "") else default


def _bool(name: str, default: bool = False) -> bool:
    value = _env(name)
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


def load_config() -> dict:
    """Build the Flask config dict from the environment."""
    env = _env("APP_ENV", _env("FLASK_ENV", "development"))
    database_url = _normalise_db_url(_env("DATABASE_URL") or default_sqlite_url())
    engine_options: dict = {"pool_pre_ping": True}
    if not database_url.startswith("sqlite"):
        engine_options.update(
            pool_size=int(_env("DB_POOL_SIZE", "10")),
            max_overflow=int(_env("DB_MAX_OVERFLOW", "20")),
            pool_recycle=1800,
        )
    return {
        "ENV_NAME": env,
        "TESTING": False,
        "SECRET_KEY": _env("SECRET_KEY", INSECURE_DEFAULT),
        "JWT_SECRET": _env("JWT_SECRET", INSECURE_DEFAULT),
        "JWT_LIFETIME_SECONDS": int(_env("JWT_LIFETIME_SECONDS", "3600")),
        "SQLALCHEMY_DATABASE_URI": database_url,
        "SQLALCHEMY_ENGINE_OPTIONS": engine_options,
        "REDIS_URL": _env("REDIS_URL"),
        "STRIPE_SECRET_KEY": _env("STRIPE_SECRET_KEY"),
        "STRIPE_WEBHOOK_SECRET": _env("STRIPE_WEBHOOK_SECRET", "whsec_dev_simulated"),
        "STRIPE_API_BASE": _env("STRIPE_API_BASE"),
        "CORS_ORIGINS": [o.strip() for o in (_env("CORS_ORIGINS", "") or "").split(",") if o.strip()],
        "RESERVATION_TTL_SECONDS": int(_env("RESERVATION_TTL_SECONDS", "900")),
        "TAX_RATE": Decimal(_env("TAX_RATE", "0.08")),
        "SHIPPING_FLAT_RATE": Decimal(_env("SHIPPING_FLAT_RATE", "5.99")),
        "FREE_SHIPPING_THRESHOLD": Decimal(_env("FREE_SHIPPING_THRESHOLD", "50.00")),
        "CURRENCY": (_env("CURRENCY", "usd") or "usd").lower(),
        "MAIL_BACKEND": _env("MAIL_BACKEND", "console"),
        "MAIL_FROM": _env("MAIL_FROM", "shop@example.com"),
        "SMS_BACKEND": _env("SMS_BACKEND", "console"),
        "SMTP_HOST": _env("SMTP_HOST", "localhost"),
        "SMTP_PORT": int(_env("SMTP_PORT", "25")),
        "SMTP_USER": _env("SMTP_USER"),
        "SMTP_PASSWORD": _env("SMTP_PASSWORD"),
        "SMTP_USE_TLS": _bool("SMTP_USE_TLS"),
        "LOG_LEVEL": (_env("LOG_LEVEL", "INFO") or "INFO").upper(),
        "LOGIN_RATE_LIMIT": _env("LOGIN_RATE_LIMIT", "10 per 5 minutes"),
        "SIGNUP_RATE_LIMIT": _env("SIGNUP_RATE_LIMIT", "20 per hour"),
        "RATELIMIT_ENABLED": _bool("RATELIMIT_ENABLED", True),
        "EXPIRY_INTERVAL_SECONDS": int(_env("EXPIRY_INTERVAL_SECONDS", "30")),
        "CATALOG_CACHE_SECONDS": float(_env("CATALOG_CACHE_SECONDS", "30")),
        "SESSION_COOKIE_SECURE": env == "production",
        "SESSION_COOKIE_HTTPONLY": True,
        "SESSION_COOKIE_SAMESITE": "Lax",
        "REMEMBER_COOKIE_SECURE": env == "production",
        "WTF_CSRF_ENABLED": True,
        "FLASK_ADMIN_SWATCH": "cerulean",
    }


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
