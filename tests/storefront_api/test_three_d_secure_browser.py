"""3-D Secure in a real browser: a guest pays with a card that needs authentication, and the
customer answers on the simulated gateway's page in Chromium (both outcomes), under its CSP.
Screenshots go to test-artifacts/."""

from __future__ import annotations

import json
import threading
import urllib.error
import urllib.request

import pytest

from tests.admin import test_e2e_browser as e2e
from tests.admin.test_e2e_browser import ARTIFACTS, browser, page  # noqa: F401
from tests.shop.test_security_headers_browser import refusals

pytestmark = e2e.pytestmark  # e2e, and skipped without Playwright or Chromium

ADDRESS = {"full_name": "Grace Guest", "street": "1 Main St", "city": "Springfield", "state": "IL",
           "postal_code": "62701", "country": "US"}


@pytest.fixture(scope="module")
def live_shop(tmp_path_factory):
    """The app on a fresh SQLite file with one product in stock, served on 127.0.0.1."""
    from werkzeug.serving import make_server

    from ecom.extensions import db
    from tests.conftest import _fresh_schema, make_test_app
    from tests.factories import stocked_variant

    path = tmp_path_factory.mktemp("e2e-3ds") / "shop.sqlite3"
    app = make_test_app(f"sqlite:///{path}", RATELIMIT_ENABLED=False)
    _fresh_schema(app)
    with app.app_context():
        sku = stocked_variant(quantity=20, price="30.00").sku
        db.session.commit()
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}", sku
    finally:
        server.shutdown()
        thread.join(timeout=10)


def call(base: str, method: str, path: str, body: dict | None = None, **headers) -> tuple[int, dict]:
    request = urllib.request.Request(f"{base}{path}", method=method,
                                     data=json.dumps(body).encode() if body is not None else None,
                                     headers={"Content-Type": "application/json", **headers})
    try:
        with urllib.request.urlopen(request, timeout=15) as response:
            return response.status, json.loads(response.read() or b"{}")
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read() or b"{}")


def guest_order_needing_authentication(base: str, sku: str) -> tuple[dict, dict, str]:
    """A guest's order confirmed with a 3-D Secure card: (checkout answer, headers, page url)."""
    _, cart = call(base, "GET", "/api/v1/cart")
    cart_token = {"X-Cart-Token": cart["token"]}
    assert call(base, "POST", "/api/v1/cart/items", {"sku": sku, "quantity": 1}, **cart_token)[0] == 201
    status, placed = call(base, "POST", "/api/v1/checkout/payment-intent",
                          {"email": "browser.guest@example.com", "shipping_address": ADDRESS}, **cart_token)
    assert status == 201, placed
    headers = {"X-Order-Token": placed["order_token"]}
    status, pending = call(base, "POST", "/api/v1/checkout/confirm",
                           {"payment_intent_id": placed["payment_intent_id"],
                            "payment_method": "pm_card_threeDSecure2Required"}, **headers)
    assert status == 202, pending
    assert pending["next_action"]["type"] == "redirect_to_url"
    return placed, headers, pending["next_action"]["url"]


def test_the_customer_authenticates_in_the_browser_and_the_order_is_paid(live_shop, page):  # noqa: F811
    base, sku = live_shop
    placed, headers, url = guest_order_needing_authentication(base, sku)
    refused = refusals(page)

    # when the customer opens the page and presses Authenticate
    page.goto(url)
    page.wait_for_selector("#authenticate")
    assert page.inner_text("#order-number") == placed["order"]["order_number"]
    assert page.inner_text("#amount").startswith(placed["order"]["total"])
    page.screenshot(path=str(ARTIFACTS / "3ds_authenticate.png"), full_page=True)
    page.click("#authenticate")

    # then the page says it succeeded, and confirm again (or the order) shows it paid
    page.wait_for_selector("#outcome")
    assert "Payment authenticated" in page.inner_text("#outcome")
    page.screenshot(path=str(ARTIFACTS / "3ds_authenticated.png"), full_page=True)
    status, confirmed = call(base, "POST", "/api/v1/checkout/confirm",
                             {"payment_intent_id": placed["payment_intent_id"]}, **headers)
    assert status == 200 and confirmed["order"]["status"] == "paid"
    status, order = call(base, "GET", f"/api/v1/orders/{placed['order']['order_number']}", **headers)
    assert status == 200 and order["payment"]["status"] == "completed"
    # and the browser ran the page under its CSP without refusing anything (its style by nonce)
    assert page.evaluate("() => getComputedStyle(document.querySelector('main')).maxWidth") == "416px"
    assert refused == [], refused


def test_the_customer_fails_authentication_in_the_browser_and_confirm_is_402(live_shop, page):  # noqa: F811
    base, sku = live_shop
    placed, headers, url = guest_order_needing_authentication(base, sku)
    refused = refusals(page)

    page.goto(url)
    page.click("#fail")

    page.wait_for_selector("#outcome")
    assert "Authentication failed" in page.inner_text("#outcome")
    page.screenshot(path=str(ARTIFACTS / "3ds_failed.png"), full_page=True)
    status, declined = call(base, "POST", "/api/v1/checkout/confirm",
                            {"payment_intent_id": placed["payment_intent_id"]}, **headers)
    assert status == 402, declined
    status, order = call(base, "GET", f"/api/v1/orders/{placed['order']['order_number']}", **headers)
    assert order["status"] == "created" and order["payment"]["status"] == "failed"
    assert refused == [], refused
