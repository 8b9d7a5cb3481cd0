"""The storefront JSON API under /api/v1, and the Stripe webhook."""

from flask import Blueprint, Flask

api = Blueprint("api", __name__, url_prefix="/api/v1")


def init_api(app: Flask) -> None:
    from ecom.extensions import csrf

    csrf.exempt(api)  # token-authenticated JSON API; no cookies, no CSRF
    app.register_blueprint(api)
