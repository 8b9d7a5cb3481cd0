"""Back-office messages never show the database's SQL; URLs and redirects stay safe."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from ecom.catalog import services
from ecom.catalog.models import Category, Product
from tests.factories import CategoryFactory, ProductFactory, stocked_variant


def test_a_database_refusal_is_a_clear_message_without_sql(as_role, db, monkeypatch):
    # Given a taken slug and the service's check out of the way (a race it could not see)
    CategoryFactory(name="A", slug="taken")
    db.session.commit()
    monkeypatch.setattr(services, "prepare_category", lambda category: category)
    # When a second category is saved with that slug
    response = as_role("admin").post("/admin/category/new/", data={"name": "B", "slug": "taken"},
                                     follow_redirects=True)
    # Then the page says what went wrong in words, shows no SQL, and nothing was created
    page = response.get_data(as_text=True)
    assert response.status_code == 200
    assert "conflicts with existing data" in page
    for leak in ("INSERT", "categories.slug", "psycopg", "sqlite3", "[SQL"):
        assert leak not in page
    assert db.session.scalar(select(Category).where(Category.name == "B")) is None


@pytest.mark.parametrize("url", ["javascript:alert(document.cookie)", "data:text/html;base64,PHNjcmlwdD4=",
                                 "JAVASCRIPT:alert(1)", " javascript:alert(1)", "//evil.example/x.png"])
def test_a_category_image_url_that_is_not_http_is_refused_with_a_message(as_role, db, url):
    # When a category is saved with a script or data URL as its image
    response = as_role("admin").post("/admin/category/new/", data={"name": "Scripted", "image_url": url},
                                     follow_redirects=True)
    # Then it is refused with a message and not saved
    assert "must be an http(s)://" in response.get_data(as_text=True)
    assert db.session.scalar(select(Category).where(Category.name == "Scripted")) is None


def test_the_product_form_takes_no_pasted_image_url(as_role, db):
    # When a product is saved with a javascript: image URL posted as the old inline field
    as_role("admin").post("/admin/product/new/", data={
        "name": "Scripted", "base_price": "1.00", "images-0-url": "javascript:alert(1)",
        "images-0-alt_text": "x", "images-0-display_order": "0"}, follow_redirects=True)
    # Then no image is stored from it: images are uploaded files now
    product = db.session.scalar(select(Product).where(Product.name == "Scripted"))
    assert product is not None and product.images == []


def test_http_and_local_image_urls_are_kept(db):
    product = ProductFactory()
    services.set_product_images(product, ["https://img.example.com/a.jpg", "/media/b.jpg"])
    category = services.create_category(name="Shown", image_url="http://img.example.com/c.jpg")
    assert [i.url for i in product.images] == ["https://img.example.com/a.jpg", "/media/b.jpg"]
    assert category.image_url == "http://img.example.com/c.jpg"


@pytest.mark.parametrize("target", ["https://evil.example/", "//evil.example/", "/\\evil.example",
                                    "javascript:alert(1)", "http:/evil.example", "/shop/elsewhere"])
def test_after_a_stock_adjustment_only_a_back_office_path_is_followed(as_role, db, target):
    # Given a variant, when its stock is adjusted with ?url= pointing elsewhere
    variant = stocked_variant(quantity=5)
    db.session.commit()
    response = as_role("admin").post(f"/admin/inventory/adjust/{variant.id}", query_string={"url": target},
                                     data={"delta": "1", "reason": "correction"})
    # Then the change is made and the redirect stays on the inventory list
    assert response.status_code == 302
    assert response.headers["Location"].endswith("/admin/inventory/")


def test_after_a_stock_adjustment_a_back_office_path_is_followed(as_role, db):
    variant = stocked_variant(quantity=5)
    db.session.commit()
    response = as_role("admin").post(f"/admin/inventory/adjust/{variant.id}",
                                     query_string={"url": "/admin/variant/?search=x"},
                                     data={"delta": "1", "reason": "correction"})
    assert response.headers["Location"] == "/admin/variant/?search=x"
