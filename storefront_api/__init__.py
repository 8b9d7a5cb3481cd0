"""The storefront JSON API under /api/v1, and the Stripe webhook.

Endpoint modules register their routes on ``api`` when imported here; see
``storefront_api.openapi`` for how to declare an endpoint.
"""

from flask import Blueprint, Flask

from storefront_api.errors import register_app_handlers, register_blueprint_handlers

api = Blueprint("api", __name__, url_prefix="/api/v1")
register_blueprint_handlers(api)

EXPOSED_HEADERS = ["X-Request-ID", "X-Cart-Token", "Retry-After"]
CORS_EXTENSION = "ecom_cors_resources"


def init_api(app: Flask) -> None:
    from ecom.extensions import csrf
    from storefront_api import (  # noqa: F401  - routes
        account,
        auth,
        cart,
        catalog,
        checkout,
        docs,
        orders,
        pricing,
        returns,
        stores,
    )
    from storefront_api.simulated_gateway import init_simulated_gateway
    from storefront_api.webhooks import webhooks

    csrf.exempt(api)  # token-authenticated JSON API; no cookies, no CSRF
    csrf.exempt(webhooks)  # authenticated by Stripe's signature instead
    register_app_handlers(app)
    _init_cors(app)
    app.register_blueprint(api)
    app.register_blueprint(webhooks)
    init_simulated_gateway(app)


def _init_cors(app: Flask) -> None:
    origins = app.config.get("CORS_ORIGINS") or []
    if not origins:
        return  # no origin listed: no cross-origin access at all
    from flask_cors import CORS
    from flask_cors.core import get_cors_options, parse_resources

    settings = {
        "resources": {r"/api/*": {"origins": list(origins)}},
        "expose_headers": EXPOSED_HEADERS,
        "allow_headers": ["Authorization", "Content-Type", "X-Cart-Token", "X-Order-Token", "X-Request-ID",
                          "Idempotency-Key"],
        "supports_credentials": False,
    }
    CORS(app, **settings)
    # The same resolved options, for the page layer that answers cached pages before Flask
    # (shop.page_layer): it asks flask-cors's own get_cors_headers with them.
    app.extensions[CORS_EXTENSION] = [(pattern, get_cors_options(app, settings, settings, resource))
                                      for pattern, resource in parse_resources(settings["resources"])]
