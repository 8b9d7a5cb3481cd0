"""A return as people make it, on `make run`'s demo data, in Debian's Chromium: the shopper asks
(the storefront API) for two units of a delivered demo order back; the admin approves in the back
office; the warehouse clerk receives them, one restocked into the east warehouse and one written
off; the admin refunds by line. The order and payment end where they should and the restocked
unit can be bought again. Screenshots of each step go to test-artifacts/returns_*.png.
"""

from __future__ import annotations

import re
from decimal import Decimal

import pytest
from sqlalchemy import select

from tests import browser_support
from tests.admin.test_e2e_backoffice2 import no_errors, sign_in
from tests.browser_support import ARTIFACTS, pytestmark, refusals, served  # noqa: F401 - the marks

DEMO_PASSWORD = "demo-password-123"


@pytest.fixture(scope="module")
def demo_shop(tmp_path_factory):
    """The app on a fresh SQLite file with `make run`'s demo data (seed-demo), served on 127.0.0.1."""
    from ecom.demo import seed_demo
    from ecom.extensions import db
    from tests.conftest import _fresh_schema, make_test_app

    path = tmp_path_factory.mktemp("e2e-returns") / "demo.sqlite3"
    app = make_test_app(f"sqlite:///{path}", RATELIMIT_ENABLED=False)
    _fresh_schema(app)
    with app.app_context():
        summary = seed_demo()
        db.session.commit()
    with served(app) as base:
        yield app, base, summary


def call(base: str, method: str, path: str, body: dict | None = None, **headers) -> tuple[int, dict]:
    """(status, JSON answer) of the storefront API's ``path``."""
    return browser_support.call(base, method, f"/api/v1{path}", body, **headers)


def amount_in(text: str) -> Decimal:
    """The amount in a money cell ("$39.61", "£1,039.61")."""
    return Decimal(re.sub(r"[^0-9.]", "", text))


def shot(browser_page, name: str) -> None:
    browser_page.screenshot(path=str(ARTIFACTS / f"returns_{name}.png"), full_page=True)


def stock(app, sku: str, location_code: str) -> tuple[int, int, int]:
    """(on hand, available, the ledger's sum) of ``sku`` at the location."""
    from ecom.catalog.models import Variant
    from ecom.extensions import db
    from ecom.inventory.models import Inventory, StockLocation
    from ecom.inventory.services import ledger_total

    with app.app_context():
        variant = db.session.scalar(select(Variant).where(Variant.sku == sku))
        location = db.session.scalar(select(StockLocation).where(StockLocation.code == location_code))
        row = db.session.scalar(select(Inventory).where(Inventory.variant_id == variant.id,
                                                        Inventory.location_id == location.id))
        on_hand, available = (row.quantity, row.available) if row is not None else (0, 0)
        return on_hand, available, ledger_total(variant.id, location.id)


def shipping_available(app, base: str, sku: str) -> int:
    """What the storefront API offers shoppers of ``sku`` for shipping."""
    from ecom.catalog.models import Variant
    from ecom.extensions import db

    with app.app_context():
        slug = db.session.scalar(select(Variant).where(Variant.sku == sku)).product.slug
    status, product = call(base, "GET", f"/products/{slug}")
    assert status == 200, product
    return next(v["available"] for v in product["variants"] if v["sku"] == sku)


def test_a_return_from_request_to_refund_on_the_demo_data(demo_shop, page):
    app, base, summary = demo_shop
    refused = refusals(page)
    number = summary["returnable_order"]
    assert number, summary

    # Given the demo customer's delivered order, signed in through the API
    status, login = call(base, "POST", "/auth/login", {"email": "customer@example.com",
                                                       "password": DEMO_PASSWORD})
    assert status == 200, login
    shopper = {"Authorization": f"Bearer {login['access_token']}"}
    status, order = call(base, "GET", f"/orders/{number}", **shopper)
    assert status == 200 and order["status"] == "delivered", order
    kept, damaged = order["items"][0]["sku"], order["items"][1]["sku"]
    before = {"kept_east": stock(app, kept, "EAST"), "kept_api": shipping_available(app, base, kept),
              "damaged_east": stock(app, damaged, "EAST"),
              "damaged_api": shipping_available(app, base, damaged)}

    # When the shopper asks for one unit of each line back
    status, asked = call(base, "POST", f"/orders/{number}/returns",
                         {"lines": [{"sku": kept, "quantity": 1, "reason": "too small"},
                                    {"sku": damaged, "quantity": 1, "reason": "arrived broken"}]}, **shopper)
    assert status == 201, asked
    rma = asked["rma_number"]
    assert asked["status"] == "requested"
    # (asking for the same units again is refused, nothing written)
    status, again = call(base, "POST", f"/orders/{number}/returns",
                         {"lines": [{"sku": damaged, "quantity": 1}]}, **shopper)
    assert status == 422 and "0 of 1 left" in again["detail"], again

    # Then the admin finds it in the queue, beside the demo's returns, and approves it
    sign_in(page, base, "admin@example.com", DEMO_PASSWORD)
    page.goto(f"{base}/admin/return/")
    no_errors(page)
    queue = page.inner_text("table.model-list")
    assert rma in queue and "approved" in queue and "received" in queue
    shot(page, "queue")
    page.click(f"text={rma}")
    page.wait_for_selector("#approve-return")
    assert page.inner_text("#return-status") == "requested"
    shot(page, "requested")
    page.click("#approve-return")
    page.wait_for_selector(".alert-success")
    no_errors(page)
    assert page.inner_text("#return-status") == "approved"
    assert page.locator("#receive-return").count() == 1  # an admin may receive too (§6)
    return_url = page.url
    shot(page, "approved")

    # When the warehouse clerk receives it: one unit back on the east warehouse's shelf, one written off
    page.context.clear_cookies()
    sign_in(page, base, "warehouse@example.com", DEMO_PASSWORD)
    page.goto(return_url)
    page.wait_for_selector("#receive-return")
    assert page.locator("#approve-return").count() == 0 and page.locator("#refund-return").count() == 0
    page.select_option(f"#condition-{kept}", "restock")
    page.select_option(f"#location-{kept}", label="East warehouse")
    page.select_option(f"#condition-{damaged}", "damaged")
    page.select_option(f"#location-{damaged}", label="East warehouse")
    shot(page, "receive")
    page.click("#receive-return")
    page.wait_for_selector(".alert-success")
    no_errors(page)
    assert page.inner_text("#return-status") == "received"
    lines = page.inner_text("#return-lines")
    assert "restock" in lines and "damaged" in lines and "East warehouse" in lines
    shot(page, "received")

    # Then the restocked unit is available at the east warehouse (and to shoppers), the damaged one never
    kept_on_hand, kept_available, kept_ledger = stock(app, kept, "EAST")
    assert (kept_on_hand, kept_available) == (before["kept_east"][0] + 1, before["kept_east"][1] + 1)
    assert kept_ledger == kept_on_hand
    assert shipping_available(app, base, kept) == before["kept_api"] + 1
    assert stock(app, damaged, "EAST") == before["damaged_east"]  # a return and a damage movement
    assert shipping_available(app, base, damaged) == before["damaged_api"]

    # When the admin refunds the lines (the refund screen shows each line's refundable amount)
    page.context.clear_cookies()
    sign_in(page, base, "admin@example.com", DEMO_PASSWORD)
    page.goto(return_url)
    page.wait_for_selector("#refund-return")
    amounts = [amount_in(text) for text in page.locator("#return-lines .refundable").all_inner_texts()]
    assert len(amounts) == 2 and all(amount > 0 for amount in amounts), amounts
    shot(page, "refund")
    page.click("#refund-return")  # the confirm() is accepted by the page fixture
    page.wait_for_selector(".alert-success")
    no_errors(page)
    assert page.inner_text("#return-status") == "refunded"
    assert amount_in(page.inner_text("#return-refunded")) == sum(amounts)
    shot(page, "refunded")

    # Then the payment is partially refunded by exactly the lines' shares; the order stays delivered
    # (units of it were not returned), and the shopper sees the refunded return
    status, order = call(base, "GET", f"/orders/{number}", **shopper)
    assert order["status"] == "delivered"
    assert order["payment"]["status"] == "partially_refunded"
    status, listed = call(base, "GET", f"/orders/{number}/returns", **shopper)
    mine = next(r for r in listed["items"] if r["rma_number"] == rma)
    assert mine["status"] == "refunded" and Decimal(mine["refund_amount"]) == sum(amounts)
    assert {line["sku"]: line["condition"] for line in mine["lines"]} == {kept: "restock", damaged: "damaged"}
    page.click("#return-order")
    page.wait_for_selector("#order-refunds")
    no_errors(page)
    assert "partially_refunded" in page.content()
    assert rma in page.inner_text("#order-returns") and "refunded" in page.inner_text("#order-returns")
    shot(page, "order")
    assert refused == [], refused


def test_withdrawn_closed_and_filtered_by_location_on_the_demo_data(demo_shop, page):
    app, base, _ = demo_shop
    refused = refusals(page)
    status, login = call(base, "POST", "/auth/login", {"email": "customer@example.com",
                                                       "password": DEMO_PASSWORD})
    shopper = {"Authorization": f"Bearer {login['access_token']}"}
    demo = demo_returns(app)

    # The shopper withdraws the demo's requested return; the approved one is staff's to close
    order, rma = demo["requested"]
    status, withdrawn = call(base, "POST", f"/orders/{order}/returns/{rma}/cancel", **shopper)
    assert status == 200 and withdrawn["status"] == "closed", withdrawn
    order, approved = demo["approved"]
    status, too_late = call(base, "POST", f"/orders/{order}/returns/{approved}/cancel", **shopper)
    assert status == 409 and "contact us" in too_late["detail"], too_late

    # The admin closes the approved return (never sent back) with the button
    sign_in(page, base, "admin@example.com", DEMO_PASSWORD)
    page.goto(f"{base}/admin/return/")
    page.click(f"text={approved}")
    page.wait_for_selector("#close-return")
    page.fill("#close-note", "never sent back")
    shot(page, "close")
    page.click("#close-return")  # its confirm() accepted by the page fixture
    page.wait_for_selector(".alert-success")
    no_errors(page)
    assert page.inner_text("#return-status") == "closed" and "never sent back" in page.content()
    assert page.locator("#close-return").count() == 0
    assert page.locator("#return-lines .refundable").all_inner_texts() == [""]  # refunds nothing now
    shot(page, "closed")

    # The warehouse clerk filters the queue by the main warehouse: what it shipped or received
    page.context.clear_cookies()
    sign_in(page, base, "warehouse@example.com", DEMO_PASSWORD)
    # (the address Flask-Admin's filter form makes: the view's first filter, Location, "is" <id>)
    page.goto(f"{base}/admin/return/?flt0_0={location_id(app, 'MAIN')}")
    page.wait_for_selector("table.model-list")
    no_errors(page)
    assert "Main warehouse" in page.inner_text(".filters")  # a choice of locations, not an id typed in
    listed = page.inner_text("table.model-list")
    received_order, received = demo["received"]
    assert received in listed and "Main warehouse" in listed
    assert approved in listed and "from Main warehouse" in listed  # closed: still where it shipped from
    shot(page, "queue_by_location")
    page.goto(f"{base}/admin/return/?flt0_0={location_id(app, 'EAST')}")
    no_errors(page)
    assert received not in page.content() and approved not in page.content()
    assert refused == [], refused


def location_id(app, code: str) -> int:
    from ecom.extensions import db
    from ecom.inventory.models import StockLocation

    with app.app_context():
        return db.session.scalar(select(StockLocation.id).where(StockLocation.code == code))


def demo_returns(app) -> dict[str, tuple[str, str]]:
    """status -> (order number, RMA number) of the demo's returns."""
    from ecom.commerce.models import Return
    from ecom.extensions import db

    with app.app_context():
        demo = db.session.scalars(select(Return).where(Return.requested_by == "customer@example.com"))
        return {ret.status: (ret.order.order_number, ret.rma_number) for ret in demo
                if ret.status in ("requested", "approved", "received")}
