"""Security headers: every response says what a browser may load, frame, sniff and keep."""

from __future__ import annotations

import html
import re

import pytest
from sqlalchemy import select

from shop.security_headers import csp_hash
from tests.admin.conftest import new_client, sign_in
from tests.commerce_support import auth
from tests.factories import UserFactory, stocked_variant

EVENT_HANDLER = re.compile(r"""\son[a-z]+="([^"]*)"|\shref="(javascript:[^"]*)\"""")


def directive(csp: str, name: str) -> str:
    """One directive of a Content-Security-Policy, e.g. ``script-src 'self' ...``."""
    return next(part.strip() for part in csp.split(";") if part.strip().startswith(name + " "))


@pytest.fixture
def admin_client(app, db):
    client = new_client(app)
    sign_in(client, UserFactory(role="admin"))
    db.session.commit()
    return client


@pytest.mark.parametrize("path", ["/", "/health", "/api/v1/products", "/api/v1/docs", "/admin/login/",
                                  "/api/v1/nowhere"])
def test_every_response_carries_the_common_headers(client, path):
    response = client.get(path)

    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["X-Frame-Options"] == "DENY"
    assert response.headers["Referrer-Policy"] == "strict-origin-when-cross-origin"
    assert "frame-ancestors 'none'" in response.headers["Content-Security-Policy"]
    assert "Strict-Transport-Security" not in response.headers  # not in development


def test_hsts_in_production_only(client, app, monkeypatch):
    monkeypatch.setitem(app.config, "ENV_NAME", "production")

    response = client.get("/health")

    assert response.headers["Strict-Transport-Security"].startswith("max-age=31536000")


def test_the_api_loads_nothing(client):
    csp = client.get("/api/v1/products").headers["Content-Security-Policy"]

    assert directive(csp, "default-src") == "default-src 'none'"


def test_the_back_office_allows_only_its_own_scripts_and_this_pages_nonce(admin_client):
    response = admin_client.get("/admin/product/new/")
    csp = response.headers["Content-Security-Policy"]
    scripts = directive(csp, "script-src")

    # no inline script runs but the ones carrying this response's nonce
    assert "'unsafe-inline'" not in scripts and "'unsafe-eval'" not in scripts
    nonce = re.search(r"'nonce-([^']+)'", scripts).group(1)
    tags = re.findall(r"<script[^>]*>", response.get_data(as_text=True))
    assert tags and all(f'nonce="{nonce}"' in tag for tag in tags)
    assert "object-src 'none'" in csp and "base-uri 'none'" in csp
    # and the next page gets another nonce
    again = admin_client.get("/admin/product/new/").headers["Content-Security-Policy"]
    assert nonce not in directive(again, "script-src")


def test_every_inline_handler_the_back_office_renders_is_allowed_by_hash(app, admin_client, db):
    """A new onclick in a template (or a new bulk action) fails here, not silently in a browser."""
    from ecom.commerce.demo import create_demo_order
    from ecom.fulfillment.models import Fulfillment

    shopper = UserFactory()
    paid = create_demo_order(shopper, [(stocked_variant(), 1)], status="paid")
    packed = create_demo_order(shopper, [(stocked_variant(), 1)], status="packed")
    db.session.commit()
    slip = db.session.scalar(select(Fulfillment.id).where(Fulfillment.order_id == packed.id))
    pages = [f"/admin/{view.endpoint}/" for view in app.extensions["backoffice"]._views
             if view.endpoint != "admin"]
    pages += ["/admin/", "/admin/product/new/", f"/admin/order/details/?id={paid.id}",
              f"/admin/order/details/?id={packed.id}", "/admin/fulfillment/picklist",
              f"/admin/fulfillment/slip/{slip}"]

    seen: set[str] = set()
    missing: dict[str, set[str]] = {}
    for path in pages:
        response = admin_client.get(path)
        assert response.status_code == 200, path
        csp = response.headers["Content-Security-Policy"]
        for handler, link in EVENT_HANDLER.findall(response.get_data(as_text=True)):
            source = html.unescape(handler or link)
            seen.add(source)
            if csp_hash(source) not in csp:
                missing.setdefault(path, set()).add(source)

    assert missing == {}
    # the walk did meet the handlers that matter: bulk actions, inline rows, confirmations
    assert {"return modelActions.execute('shipped');", "faForm.addInlineField(this, 'variants');",
            "return confirm('Refund this payment?')", "window.print()"} <= seen


def test_personal_responses_are_not_stored(client, db, admin_client):
    shopper = UserFactory(email="headers@example.com")
    db.session.commit()

    token_response = client.post("/api/v1/auth/login", json={"email": "headers@example.com",
                                                              "password": "wrong-password-123"})
    private = [token_response, client.get("/api/v1/me", headers=auth(shopper)),
               client.get("/api/v1/orders", headers=auth(shopper)), client.get("/api/v1/cart"),
               admin_client.get("/admin/"), admin_client.get("/admin/order/"), client.get("/metrics")]

    assert [response.headers.get("Cache-Control") for response in private] == ["no-store"] * len(private)


def test_public_pages_keep_their_caching(client):
    assert "no-store" not in client.get("/api/v1/products").headers.get("Cache-Control", "")
    static = client.get("/admin/static/admin/js/helpers.js")
    assert static.status_code == 200
    assert "no-store" not in static.headers.get("Cache-Control", "")
