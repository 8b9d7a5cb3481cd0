"""Back office 2 as people use it, in Debian's Chromium: images uploaded and ordered, a product
created with its stock, a delete refused with its way out, a staff member invited who sets
their password from the emailed link, an order shipped from the queue. Screenshots of each step
go to test-artifacts/backoffice2-*.png.
"""

from __future__ import annotations

import json
import re
import urllib.request
from pathlib import Path

import pytest
from sqlalchemy import select

from tests.browser_support import ARTIFACTS, pytestmark, served  # noqa: F401 - the marks
from tests.media_support import image_bytes

PASSWORD = "correct-horse-battery"


def shot(page, name: str) -> Path:
    path = ARTIFACTS / f"backoffice2-{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path


@pytest.fixture(scope="module")
def live(tmp_path_factory):
    """The app on a fresh SQLite file with staff of each role, an ordered product, a packed
    order and a product without images; uploads under a temporary media root."""
    from tests.conftest import _fresh_schema, make_test_app

    root = tmp_path_factory.mktemp("e2e-bo2")
    app = make_test_app(f"sqlite:///{root / 'e2e.sqlite3'}", RATELIMIT_ENABLED=False,
                        MEDIA_ROOT=str(root / "media"), MEDIA_S3_BUCKET=None)
    _fresh_schema(app)
    with app.app_context():
        seeded = _seed()
    with served(app) as base:
        yield app, base, seeded, root


def _seed() -> dict:
    from ecom.commerce.demo import create_demo_order
    from ecom.extensions import db
    from ecom.identity.models import User
    from ecom.identity.passwords import hash_password
    from tests.factories import ProductFactory, VariantFactory, stocked_variant

    hashed = hash_password(PASSWORD)
    for email, role in (("admin@e2e.example.com", "admin"), ("merch@e2e.example.com", "merchandiser"),
                        ("clerk@e2e.example.com", "warehouse"), ("shopper@e2e.example.com", "customer")):
        db.session.add(User(email=email, role=role, hashed_password=hashed, full_name=role.title()))
    db.session.flush()
    shopper = db.session.scalar(select(User).where(User.email == "shopper@e2e.example.com"))
    ordered = stocked_variant(quantity=10, price="30.00")
    ordered.product.name = "E2E Ordered Lamp"
    paid = create_demo_order(shopper, [(ordered, 1)], status="paid")
    shipping = create_demo_order(shopper, [(stocked_variant(quantity=5, price="12.00"), 2)], status="packed")
    gallery = ProductFactory(name="E2E Gallery Vase", slug="e2e-gallery-vase", is_active=True)
    VariantFactory(product=gallery, sku="VASE-1")
    db.session.commit()
    return {"ordered_product": ordered.product_id, "paid_order": paid.id, "packed_order": shipping.id,
            "gallery": gallery.id}


def sign_in(page, base: str, email: str, password: str = PASSWORD) -> None:
    page.goto(f"{base}/admin/login")
    page.fill("#email", email)
    page.fill("#password", password)
    page.click("#sign-in")
    page.wait_for_selector("#signed-in-as")


def no_errors(page) -> None:
    assert page.locator(".alert-danger").count() == 0, page.locator(".alert-danger").all_inner_texts()


def api(base: str, path: str) -> dict:
    with urllib.request.urlopen(f"{base}/api/v1{path}") as response:
        return json.load(response)


def test_upload_three_images_and_make_the_second_primary(live, page, tmp_path):
    app, base, seeded, root = live
    files = []
    for n, colour in enumerate([(200, 30, 30), (30, 200, 30), (30, 30, 200)], start=1):
        path = tmp_path / f"vase-{n}.jpg"
        path.write_bytes(image_bytes("JPEG", colour=colour))
        files.append(str(path))
    sign_in(page, base, "merch@e2e.example.com")

    # When three images are chosen at once and uploaded on the product page
    page.goto(f"{base}/admin/product/edit/?id={seeded['gallery']}")
    page.set_input_files("#image-files", files)
    shot(page, "1-images-chosen")
    page.click("#upload-images")
    page.wait_for_selector(".alert-success")
    no_errors(page)
    assert "3 image(s) uploaded." in page.inner_text(".alert-success")
    rows = page.locator("tr.image-row")
    assert rows.count() == 3
    ids = [rows.nth(i).get_attribute("data-image-id") for i in range(3)]
    shot(page, "2-images-uploaded")

    # And the second is made primary, with its alt text
    page.check(f"#primary-{ids[1]}")
    page.fill(f"#alt-{ids[1]}", "Green vase, front")
    page.click("#save-images")
    page.wait_for_selector(".alert-success")
    no_errors(page)
    row = page.locator(f"tr.image-row[data-image-id='{ids[1]}']")
    assert "primary" in row.inner_text()
    shot(page, "3-second-image-primary")

    # Then the shop's API shows it as the primary image, with absolute URLs that serve it
    detail = api(base, "/products/e2e-gallery-vase")
    assert detail["primary_image"]["alt_text"] == "Green vase, front"
    assert detail["primary_image"]["url"].startswith(f"{base}/media/products/")
    with urllib.request.urlopen(detail["primary_image"]["thumbnail_url"]) as thumb:
        assert thumb.headers["Content-Type"] == "image/webp"


def test_create_a_product_with_stock_from_its_own_form(live, page, tmp_path):
    app, base, seeded, root = live
    picture = tmp_path / "kettle.png"
    picture.write_bytes(image_bytes("PNG"))
    sign_in(page, base, "merch@e2e.example.com")

    page.goto(f"{base}/admin/product/new/")
    page.fill("#name", "E2E Kettle")
    page.fill("#base_price", "39.00")
    page.click("#variants-button")
    page.fill("#variants-0-sku", "E2E-KETTLE-1")
    page.fill("#variants-0-name", "Steel")
    page.fill("#variants-0-price", "39.00")
    page.fill("#variants-0-attributes", '{"finish": "steel"}')
    page.fill("#variants-0-receive_stock", "7")
    page.set_input_files("#upload_images", [str(picture)])
    shot(page, "4-new-product-with-stock")
    page.click("input[type=submit][value='Save']")
    page.wait_for_selector(".alert-success")
    no_errors(page)
    shot(page, "5-product-saved")

    detail = api(base, "/products/e2e-kettle")
    assert detail["variants"][0]["available"] == 7 and detail["in_stock"] is True
    assert detail["primary_image"]["url"].endswith(".png")


def test_delete_a_product_with_orders_and_follow_the_way_out(live, page):
    app, base, seeded, root = live
    sign_in(page, base, "merch@e2e.example.com")

    page.goto(f"{base}/admin/product/?search=E2E+Ordered+Lamp")
    page.locator("form.icon button[title='Delete Record']").first.click()
    page.wait_for_selector("#cannot-delete")
    assert "cannot be deleted: 1 order(s) include it" in page.inner_text("#refusal-message")
    assert "SQL" not in page.content() and "IntegrityError" not in page.content()
    shot(page, "6-delete-refused")

    page.click("#deactivate-instead")
    page.wait_for_selector(".alert-success")
    no_errors(page)
    shot(page, "7-deactivated-instead")
    with app.app_context():
        from ecom.catalog.models import Product
        from ecom.extensions import db

        assert db.session.get(Product, seeded["ordered_product"]).is_active is False


def test_create_a_staff_user_who_sets_the_password_from_the_emailed_link(live, page, browser):
    app, base, seeded, root = live
    sign_in(page, base, "admin@e2e.example.com")

    page.goto(f"{base}/admin/user/")
    page.click("#invite-staff")
    page.fill("#invite-email", "new.clerk@e2e.example.com")
    page.fill("#invite-name", "New Clerk")
    page.select_option("#invite-role", "warehouse")
    shot(page, "8-invite-staff")
    page.click("#send-invite")
    page.wait_for_selector(".alert-success")
    no_errors(page)
    shot(page, "9-staff-invited")

    # The email (console backend): its link, as the notification that was sent holds it
    with app.app_context():
        from ecom.extensions import db
        from ecom.notifications.models import Notification

        body = db.session.scalar(select(Notification.body).where(
            Notification.recipient == "new.clerk@e2e.example.com",
            Notification.event_type == "STAFF_INVITED"))
    link = re.search(r"https?://\S+/admin/password/invite/\S+", body).group(0)
    assert link.startswith(base)

    visitor = browser.new_context(viewport={"width": 1200, "height": 800}).new_page()
    visitor.goto(link)
    assert visitor.inner_text("#set-password-email") == "new.clerk@e2e.example.com"
    visitor.fill("#new-password", "lantern-harbour-velvet")
    visitor.fill("#confirm-password", "lantern-harbour-velvet")
    shot(visitor, "10-set-password")
    visitor.click("#set-password")
    visitor.wait_for_selector("#sign-in")
    sign_in(visitor, base, "new.clerk@e2e.example.com", "lantern-harbour-velvet")
    assert "warehouse" in visitor.inner_text("#signed-in-as")
    shot(visitor, "11-new-staff-signed-in")
    visitor.goto(link)  # single use
    assert "expired or was used already" in visitor.inner_text("#link-error")
    visitor.context.close()


def test_ship_from_the_queue(live, page):
    app, base, seeded, root = live
    with app.app_context():
        from ecom.extensions import db
        from ecom.fulfillment.models import Fulfillment

        fulfillment_id = db.session.scalar(select(Fulfillment.id).where(
            Fulfillment.order_id == seeded["packed_order"]))
    sign_in(page, base, "clerk@e2e.example.com")

    page.goto(f"{base}/admin/fulfillment/")
    shot(page, "12-queue")
    page.click(f"#ship-{fulfillment_id}")
    page.wait_for_selector("#carrier")
    page.fill("#carrier", "DHL Express")
    page.fill(f"#tracking_{fulfillment_id}", "JD014600006281230704")
    page.click("#ship-submit")
    page.wait_for_selector(".alert-success")
    no_errors(page)
    shot(page, "13-shipped")

    page.goto(f"{base}/admin/order/details/?id={seeded['packed_order']}")
    assert page.inner_text("#order-status") == "shipped"
    assert page.inner_text("#tracking-number") == "JD014600006281230704"
    assert page.inner_text("#order-total").startswith("$")
    shot(page, "14-order-shipped")
