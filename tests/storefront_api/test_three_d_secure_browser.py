"""3-D Secure in a real browser: a guest pays with a card that needs authentication, and the
customer answers on the simulated gateway's page in Chromium (both outcomes), under its CSP.
Screenshots go to test-artifacts/."""

from __future__ import annotations

import pytest

from tests.browser_support import ARTIFACTS, call, pytestmark, refusals, served  # noqa: F401 - the marks

ADDRESS = {"full_name": "Grace Guest", "street": "1 Main St", "city": "Springfield", "state": "IL",
           "postal_code": "62701", "country": "US"}


@pytest.fixture(scope="module")
def live_shop(tmp_path_factory):
    """The app on a fresh SQLite file with one product in stock, served on 127.0.0.1."""
    from ecom.extensions import db
    from tests.conftest import _fresh_schema, make_test_app
    from tests.factories import stocked_variant

    path = tmp_path_factory.mktemp("e2e-3ds") / "shop.sqlite3"
    app = make_test_app(f"sqlite:///{path}", RATELIMIT_ENABLED=False)
    _fresh_schema(app)
    with app.app_context():
        sku = stocked_variant(quantity=20, price="30.00").sku
        db.session.commit()
    with served(app) as base:
        yield base, sku


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


def test_the_customer_authenticates_in_the_browser_and_the_order_is_paid(live_shop, page):
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


def test_the_customer_fails_authentication_in_the_browser_and_confirm_is_402(live_shop, page):
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
