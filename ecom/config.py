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
# The webhook secret of development and tests: public, so production never uses it.
DEVELOPMENT_WEBHOOK_SECRET = "whsec_dev_simulated"
PRODUCTION = "production"
# Every mode the app knows, spelt exactly: a misspelt production ("prod", "Production") must not
# start as development with its placeholder secrets and insecure cookies. `bench` is the
# benchmark and reliability harness's: strong secrets, the simulator, not production.
ENV_NAMES = ("development", "test", "bench", PRODUCTION)
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
    env_name = check_env_name(env.str("APP_ENV", env.str("FLASK_ENV", "development")))
    production = env_name == PRODUCTION
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
        # A pooled connection idle longer than this is pinged before use (ecom.connections);
        # 0 pings every time (SQLAlchemy's pre-ping).
        "DB_PING_AFTER_IDLE_SECONDS": env.int("DB_PING_AFTER_IDLE_SECONDS", 5),
        "REDIS_URL": env.str("REDIS_URL"),
        "STRIPE_SECRET_KEY": env.str("STRIPE_SECRET_KEY"),
        # No default in production: check_production_settings refuses to start without one.
        "STRIPE_WEBHOOK_SECRET": env.str("STRIPE_WEBHOOK_SECRET",
                                         None if production else DEVELOPMENT_WEBHOOK_SECRET),
        # Production without STRIPE_SECRET_KEY refuses to start unless this says the simulated
        # gateway (which takes no money) is meant: a staging shop.
        "ALLOW_SIMULATED_GATEWAY": env.bool("ALLOW_SIMULATED_GATEWAY"),
        "STRIPE_API_BASE": env.str("STRIPE_API_BASE"),
        # How long one call to Stripe may wait to connect and for its answer (the library's own
        # default is 80 s, which a hung Stripe would hold a checkout or back-office request for).
        "STRIPE_TIMEOUT_SECONDS": env.int("STRIPE_TIMEOUT_SECONDS", 20),
        "CORS_ORIGINS": [o.strip() for o in (env.str("CORS_ORIGINS", "") or "").split(",") if o.strip()],
        "RESERVATION_TTL_SECONDS": env.int("RESERVATION_TTL_SECONDS", 900),
        "MAX_OPEN_UNPAID_ORDERS": env.int("MAX_OPEN_UNPAID_ORDERS", 3),
        # A delivered order's units may be asked back this many days after its delivery.
        "RETURN_WINDOW_DAYS": env.int("RETURN_WINDOW_DAYS", 30),
        # Guest orders waiting for payment (holding stock) from one client address at once.
        "MAX_OPEN_GUEST_ORDERS_PER_IP": env.int("MAX_OPEN_GUEST_ORDERS_PER_IP", 5),
        # Proxies in front of the app (load balancer...) whose X-Forwarded-For/-Proto/-Host
        # are believed: 0 believes none, so a client cannot pick its own address.
        "TRUSTED_PROXY_COUNT": env.int("TRUSTED_PROXY_COUNT", 0),
        "TAX_RATE": Decimal(env.str("TAX_RATE", "0.08")),
        "SHIPPING_FLAT_RATE": Decimal(env.str("SHIPPING_FLAT_RATE", "5.99")),
        "FREE_SHIPPING_THRESHOLD": Decimal(env.str("FREE_SHIPPING_THRESHOLD", "50.00")),
        "CURRENCY": env.str("CURRENCY", "usd").lower(),
        # Pricing (ecom.pricing): shown prices include tax (EU style) or not; the destination the
        # cart's estimate is priced for when the shopper names none.
        "PRICES_INCLUDE_TAX": env.bool("PRICES_INCLUDE_TAX"),
        "DEFAULT_COUNTRY": env.str("DEFAULT_COUNTRY", "US").upper(),
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
        # Failed sign-ins (API and back office): per email and client address, per client address
        # across emails, and per email from anywhere (a ceiling with a longer window).
        "LOGIN_RATE_LIMIT": env.str("LOGIN_RATE_LIMIT", "10 per 5 minutes"),
        "LOGIN_IP_RATE_LIMIT": env.str("LOGIN_IP_RATE_LIMIT", "30 per 5 minutes"),
        "LOGIN_EMAIL_RATE_LIMIT": env.str("LOGIN_EMAIL_RATE_LIMIT", "30 per hour"),
        # A back-office session ends after this long without a request.
        "ADMIN_SESSION_IDLE_MINUTES": env.int("ADMIN_SESSION_IDLE_MINUTES", 480),
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
        # How long a process may price with the rules it holds (ecom.pricing.rules) without
        # reading them again, whatever the version says: bounds a change made outside the app.
        # 0: every quote reads them.
        "PRICING_CACHE_SECONDS": float(env.str("PRICING_CACHE_SECONDS", "60")),
        # Uploaded images: the largest file taken, and where files live (ecom.media.storage):
        # the local disk under MEDIA_ROOT unless MEDIA_S3_BUCKET names an S3-compatible bucket.
        "MAX_IMAGE_BYTES": env.int("MAX_IMAGE_BYTES", 10 * 1024 * 1024),
        "MEDIA_ROOT": env.str("MEDIA_ROOT") or str(PROJECT_ROOT / "instance" / "media"),
        "MEDIA_S3_BUCKET": env.str("MEDIA_S3_BUCKET"),
        "MEDIA_S3_ENDPOINT_URL": env.str("MEDIA_S3_ENDPOINT_URL"),
        "MEDIA_S3_REGION": env.str("MEDIA_S3_REGION"),
        "MEDIA_S3_ACCESS_KEY_ID": env.str("MEDIA_S3_ACCESS_KEY_ID"),
        "MEDIA_S3_SECRET_ACCESS_KEY": env.str("MEDIA_S3_SECRET_ACCESS_KEY"),
        "MEDIA_S3_PUBLIC_URL": env.str("MEDIA_S3_PUBLIC_URL"),
        # /metrics: a bearer token; without one it is served only in development and test.
        "METRICS_TOKEN": env.str("METRICS_TOKEN"),
        # Business gauges (orders and payments by status, outbox, queues) are read at most
        # once per this many seconds per process, not on every scrape.
        "METRICS_CACHE_SECONDS": float(env.str("METRICS_CACHE_SECONDS", "15")),
        "SESSION_COOKIE_SECURE": production,
        "SESSION_COOKIE_HTTPONLY": True,
        "SESSION_COOKIE_SAMESITE": "Lax",
        "REMEMBER_COOKIE_SECURE": production,
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


def check_env_name(name: str) -> str:
    """``name`` if it is one of ENV_NAMES. Raises ValueError for anything else (no guessing:
    ``prod`` or ``Production`` is refused, not read as development)."""
    if name not in ENV_NAMES:
        raise ValueError(f"APP_ENV must be one of {', '.join(ENV_NAMES)} (exactly), not {name!r}.")
    return name


def check_production_settings(config: Mapping) -> None:
    """Refuse to start with an unknown mode, or in production with what only development may
    use: a missing, default or short secret, no real payment gateway (unless
    ALLOW_SIMULATED_GATEWAY says so) or no webhook secret of its own.

    Raises ValueError for the mode, RuntimeError for the rest."""
    if check_env_name(config.get("ENV_NAME")) != PRODUCTION:
        return
    for name in ("SECRET_KEY", "JWT_SECRET"):
        value = config.get(name)
        # 32 bytes: the minimum RFC 7518 recommends for an HS256 key.
        if not value or value == INSECURE_DEFAULT or len(value.encode()) < 32:
            raise RuntimeError(
                f"{name} must be set to a strong secret (32+ bytes) in production."
            )
    if not config.get("STRIPE_SECRET_KEY") and not config.get("ALLOW_SIMULATED_GATEWAY"):
        raise RuntimeError(
            "STRIPE_SECRET_KEY must be set in production: without it payments go to the simulated "
            "gateway, which takes no money (set ALLOW_SIMULATED_GATEWAY=1 for a staging shop)."
        )
    # Anyone who knows the development secret can sign a payment_intent.succeeded.
    if config.get("STRIPE_WEBHOOK_SECRET") in (None, "", DEVELOPMENT_WEBHOOK_SECRET):
        raise RuntimeError(
            "STRIPE_WEBHOOK_SECRET must be set in production (Stripe's signing secret of the "
            "webhook endpoint; any secret of its own for a staging shop on the simulated gateway)."
        )
