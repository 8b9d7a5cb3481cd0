"""The application factory: the one place that composes the domain and its edges."""

from __future__ import annotations

from flask import Flask, jsonify

from ecom import __version__
from ecom.config import PROJECT_ROOT, check_production_settings, load_config
from ecom.extensions import csrf, db, limiter, login_manager, migrate


def create_app(config: dict | None = None) -> Flask:
    """Build the app. ``config`` overrides what the environment says."""
    try:
        from dotenv import load_dotenv

        load_dotenv()
    except ImportError:  # pragma: no cover - python-dotenv is a pinned dependency
        pass
    app = Flask(__name__, instance_relative_config=False)
    app.config.update(load_config())
    if config:
        app.config.update(config)
    check_production_settings(app.config)
    _trust_proxies(app)

    from shop.logging import configure_logging, init_request_logging

    if not app.config.get("TESTING"):
        configure_logging(app)
    init_request_logging(app)

    from ecom.connections import engine_options, ping_after_idle

    idle_seconds = app.config["DB_PING_AFTER_IDLE_SECONDS"]
    app.config["SQLALCHEMY_ENGINE_OPTIONS"] = engine_options(
        app.config["SQLALCHEMY_ENGINE_OPTIONS"], app.config["SQLALCHEMY_DATABASE_URI"], idle_seconds)
    db.init_app(app)
    with app.app_context():
        ping_after_idle(db.engine, idle_seconds)
    import ecom.models  # noqa: F401  - registers every table on the metadata

    migrate.init_app(app, db, directory=str(PROJECT_ROOT / "migrations"))
    login_manager.init_app(app)
    csrf.init_app(app)
    _init_limiter(app)

    from ecom import runtime, unit_of_work
    from ecom.catalog import cache_version
    from ecom.commerce.gateways import choose_gateway
    from ecom.media import cleanup as media_cleanup
    from ecom.notifications import outbox
    from ecom.pricing import rules as pricing_rules

    runtime.init_app(app, gateway_factory=choose_gateway)
    unit_of_work.init_app(app)
    outbox.init_app(app)
    cache_version.init_app(app)
    pricing_rules.init_app(app)
    media_cleanup.init_app(app)

    from admin import init_admin
    from storefront_api import init_api
    from workers import periodic

    init_api(app)
    init_admin(app)
    periodic.init_app(app)

    from shop.cli import register_cli
    from shop.metrics import init_metrics
    from shop.security_headers import init_security_headers

    init_metrics(app)
    init_security_headers(app)
    register_cli(app)
    _register_ops_routes(app)

    from shop.page_layer import init_page_layer

    init_page_layer(app)  # last: it reads the routes, and answers before everything above
    return app


def _trust_proxies(app: Flask) -> None:
    """Behind TRUSTED_PROXY_COUNT proxies (a load balancer...), read the client's address,
    scheme and host from their X-Forwarded-For/-Proto/-Host through exactly that many hops
    (werkzeug's ProxyFix): the rate limits and the guest-order cap then see each shopper,
    not the balancer, and a client's own X-Forwarded-For entries are never believed. With
    0 (the default) the headers are ignored. Raises ValueError for a negative count."""
    count = int(app.config.get("TRUSTED_PROXY_COUNT") or 0)
    if count < 0:
        raise ValueError(f"TRUSTED_PROXY_COUNT must be 0 or more, not {count}.")
    if count:
        from werkzeug.middleware.proxy_fix import ProxyFix

        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=count, x_proto=count, x_host=count)


def _init_limiter(app: Flask) -> None:
    redis_url = app.config.get("REDIS_URL")
    app.config.setdefault("RATELIMIT_STORAGE_URI", redis_url or "memory://")
    app.config.setdefault("RATELIMIT_HEADERS_ENABLED", True)
    # If Redis goes away the limiter falls back to memory rather than failing requests.
    app.config.setdefault("RATELIMIT_IN_MEMORY_FALLBACK_ENABLED", True)
    limiter.init_app(app)


def _register_ops_routes(app: Flask) -> None:
    from shop.health import check_health

    @app.get("/")
    def index():
        return jsonify(
            service="ecom",
            version=__version__,
            api="/api/v1",
            docs="/api/v1/docs",
            admin="/admin/",
        )

    @app.get("/health")
    def health():
        body, healthy = check_health(app)
        return jsonify(body), (200 if healthy else 503)

    @app.get("/media/<path:key>")
    def media(key: str):
        """Uploaded files of the local storage backend (an S3 bucket serves its own)."""
        from flask import abort, send_from_directory

        from ecom.media.storage import LocalStorage, check_key, storage

        backend = storage(app)
        try:
            check_key(key)
        except ValueError:
            abort(404)
        if not isinstance(backend, LocalStorage):
            abort(404)
        response = send_from_directory(backend.root, key, max_age=31536000)
        response.headers["Content-Security-Policy"] = "default-src 'none'; sandbox"
        return response

    csrf.exempt(index)
    csrf.exempt(health)
    csrf.exempt(media)
