"""The back office as a person uses it, in a real headless Chromium.

Runs the app under a werkzeug server in a background thread on 127.0.0.1
with its own SQLite file, and drives Debian's chromium through Playwright.
Screenshots of the key pages go to test-artifacts/.
"""

from __future__ import annotations

import json
import urllib.request

import pytest
from sqlalchemy import select

from tests.browser_support import ARTIFACTS, pytestmark, served  # noqa: F401 - the marks

PASSWORD = "correct-horse-battery"


@pytest.fixture(scope="module")
def live_app(tmp_path_factory):
    """The app on a fresh SQLite file, with a merchandiser, a warehouse clerk and a packed order."""
    from tests.conftest import _fresh_schema, make_test_app

    path = tmp_path_factory.mktemp("e2e") / "e2e.sqlite3"
    app = make_test_app(f"sqlite:///{path}", RATELIMIT_ENABLED=False)
    _fresh_schema(app)
    with app.app_context():
        order_id = _seed(app)
    with served(app) as base:
        yield app, base, order_id


def _seed(app) -> int:
    from ecom.commerce.demo import create_demo_order
    from ecom.extensions import db
    from ecom.identity.models import User
    from ecom.identity.passwords import hash_password
    from tests.factories import stocked_variant

    hashed = hash_password(PASSWORD)
    for email, role in (("merch@e2e.test", "merchandiser"), ("clerk@e2e.test", "warehouse"),
                        ("shopper@e2e.test", "customer")):
        db.session.add(User(email=email, role=role, hashed_password=hashed, full_name=role.title()))
    db.session.flush()
    shopper = db.session.scalar(select(User).where(User.email == "shopper@e2e.test"))
    variant = stocked_variant(quantity=10, price="30.00")
    order = create_demo_order(shopper, [(variant, 2)], status="packed")
    db.session.commit()
    return order.id


def sign_in(page, base: str, email: str) -> None:
    page.goto(f"{base}/admin/")
    assert "/admin/login" in page.url  # anonymous visitors land on the sign-in page
    page.fill("#email", email)
    page.fill("#password", PASSWORD)
    page.click("#sign-in")
    page.wait_for_selector("#signed-in-as")


def test_merchandiser_creates_a_product_with_a_variant_and_stock(live_app, page):
    app, base, _ = live_app
    sign_in(page, base, "merch@e2e.test")
    page.screenshot(path=str(ARTIFACTS / "dashboard.png"), full_page=True)
    assert page.locator("#revenue-chart rect").count() == 30

    # Given a new product with one variant
    page.goto(f"{base}/admin/product/new/")
    page.fill("#name", "E2E Lantern")
    page.fill("#base_price", "24.00")
    page.fill("#description", "Made in a browser test.")
    page.click("#variants-button")
    page.fill("#variants-0-sku", "E2E-LANTERN-1")
    page.fill("#variants-0-name", "Brass")
    page.fill("#variants-0-price", "26.50")
    page.fill("#variants-0-attributes", '{"finish": "brass"}')
    page.screenshot(path=str(ARTIFACTS / "product_form.png"), full_page=True)
    page.click("input[type=submit][value='Save']")
    page.wait_for_load_state()
    assert page.locator(".alert-danger").count() == 0, page.locator(".alert-danger").all_inner_texts()
    assert page.locator(".is-invalid").count() == 0, page.locator(".invalid-feedback").all_inner_texts()
    page.wait_for_selector(".alert-success")
    assert "E2E Lantern" in page.content()

    # When stock is received for its variant
    page.goto(f"{base}/admin/inventory/?search=E2E-LANTERN-1")
    page.click("text=Adjust stock")
    page.fill("#delta", "7")
    page.select_option("#reason", "received")
    page.click("#adjust-submit")
    page.wait_for_selector(".alert-success")

    # Then the storefront API lists it, priced and in stock
    with urllib.request.urlopen(f"{base}/api/v1/products?q=lantern") as response:
        body = json.load(response)
    items = body.get("items", body.get("data", []))
    lantern = next(p for p in items if p["slug"] == "e2e-lantern")
    assert lantern["name"] == "E2E Lantern"
    assert json.dumps(lantern).count("26.50") >= 1
    with urllib.request.urlopen(f"{base}/api/v1/products/e2e-lantern") as response:
        detail = json.load(response)
    assert json.dumps(detail).find("E2E-LANTERN-1") >= 0


def test_warehouse_ships_a_packed_order_with_a_tracking_number(live_app, page):
    app, base, order_id = live_app
    sign_in(page, base, "clerk@e2e.test")
    assert page.locator("a[href='/admin/user/']").count() == 0  # not theirs to see

    page.goto(f"{base}/admin/fulfillment/")
    page.screenshot(path=str(ARTIFACTS / "fulfillment_queue.png"), full_page=True)
    with app.app_context():
        from ecom.extensions import db
        from ecom.fulfillment.models import Fulfillment

        fulfillment_id = db.session.scalar(select(Fulfillment.id).where(Fulfillment.order_id == order_id))
    page.check(f"input[name=rowid][value='{fulfillment_id}']")
    page.click("text=With selected")
    page.click("text=Mark shipped…")
    page.wait_for_selector("#carrier")
    page.fill("#carrier", "DHL Express")
    page.fill(f"#tracking_{fulfillment_id}", "JD014600006281230704")
    page.click("#ship-submit")
    page.wait_for_selector(".alert-success")

    page.goto(f"{base}/admin/order/details/?id={order_id}")
    assert page.inner_text("#order-status") == "shipped"
    assert page.inner_text("#tracking-number") == "JD014600006281230704"
    page.screenshot(path=str(ARTIFACTS / "order_detail.png"), full_page=True)
