"""Categories, product listing/filters/sorts/search, product detail and reviews."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
from sqlalchemy import event

from ecom.catalog.models import Product
from ecom.commerce.models import Order, OrderItem
from ecom.db import utcnow
from tests.factories import (
    CategoryFactory,
    InventoryFactory,
    ProductFactory,
    ProductImageFactory,
    UserFactory,
    VariantFactory,
)


def product(name, price="20.00", *, category=None, stock=5, created_days_ago=0, **fields):
    """An active product with one variant, ``stock`` units and a primary image."""
    kwargs = {"category": category} if category is not None else {}
    made = ProductFactory(
        name=name,
        slug=name.lower().replace(" ", "-"),
        base_price=Decimal(price),
        min_price=Decimal(price),
        max_price=Decimal(price),
        created_at=utcnow() - timedelta(days=created_days_ago),
        **kwargs,
        **fields,
    )
    variant = VariantFactory(product=made, price=Decimal(price))
    InventoryFactory(variant=variant, quantity=stock)
    ProductImageFactory(product=made, url=f"https://img.example.com/{made.slug}.jpg", alt_text=name)
    return made


def slugs(response) -> list[str]:
    return [item["slug"] for item in response.json["items"]]


@pytest.fixture
def shop(db):
    """Clothing > Shirts, and Garden; a few products across them."""
    clothing = CategoryFactory(name="Clothing", slug="clothing")
    shirts = CategoryFactory(name="Shirts", slug="shirts", parent=clothing)
    garden = CategoryFactory(name="Garden", slug="garden")
    made = {
        "jacket": product("Rain Jacket", "89.00", category=clothing, created_days_ago=3,
                          description="Waterproof shell for wet hiking days"),
        "tee": product("Cotton Tee", "15.00", category=shirts, created_days_ago=1, featured=True,
                       description="Soft cotton t-shirt"),
        "oxford": product("Oxford Shirt", "45.00", category=shirts, stock=0, created_days_ago=2,
                          description="Button-down cotton shirt"),
        "hose": product("Garden Hose", "30.00", category=garden, created_days_ago=5,
                        description="Twenty metres of rubber hose"),
    }
    hidden = product("Retired Shirt", "10.00", category=shirts)
    hidden.is_active = False
    made["tee"].rating_average, made["tee"].rating_count = Decimal("4.50"), 2
    made["hose"].rating_average, made["hose"].rating_count = Decimal("4.90"), 7
    db.session.commit()
    return made


# --- categories ------------------------------------------------------------------------


def test_categories_count_active_products_including_subcategories(client, shop):
    response = client.get("/api/v1/categories")

    assert response.status_code == 200
    counts = {item["slug"]: item["product_count"] for item in response.json["items"]}
    assert counts == {"clothing": 3, "shirts": 2, "garden": 1}
    item = response.json["items"][0]
    assert set(item) == {"id", "name", "slug", "description", "image_url", "product_count",
                         "parent", "children"}


def test_one_category_by_slug(client, shop):
    response = client.get("/api/v1/categories/shirts")

    assert response.status_code == 200
    assert response.json["name"] == "Shirts"
    assert response.json["product_count"] == 2


def test_unknown_category_is_404(client, db):
    assert client.get("/api/v1/categories/nope").status_code == 404


# --- product list ------------------------------------------------------------------------


def test_list_shows_only_active_products_with_the_summary_shape(client, shop):
    response = client.get("/api/v1/products")

    assert response.status_code == 200
    assert response.json["total"] == 4
    assert "retired-shirt" not in slugs(response)
    tee = next(item for item in response.json["items"] if item["slug"] == "cotton-tee")
    assert tee == {
        "id": shop["tee"].id,
        "slug": "cotton-tee",
        "name": "Cotton Tee",
        "base_price": "15.00",
        "currency": "usd",
        "category": {"slug": "shirts", "name": "Shirts"},
        "primary_image": {"url": "https://img.example.com/cotton-tee.jpg", "alt_text": "Cotton Tee",
                          "thumbnail_url": "https://img.example.com/cotton-tee.jpg"},
        "price_range": {"min": "15.00", "max": "15.00"},
        "in_stock": True,
        "rating": {"average": 4.5, "count": 2},
        "featured": True,
    }


def test_pagination_envelope(client, shop):
    response = client.get("/api/v1/products?per_page=3&page=2&sort=name")

    assert response.json["page"] == 2
    assert response.json["per_page"] == 3
    assert response.json["total"] == 4
    assert response.json["pages"] == 2
    assert slugs(response) == ["rain-jacket"]


def test_category_filter_includes_subcategories(client, shop):
    clothing = client.get("/api/v1/products?category=clothing&sort=name")
    shirts = client.get("/api/v1/products?category=shirts&sort=name")
    unknown = client.get("/api/v1/products?category=nope")

    assert slugs(clothing) == ["cotton-tee", "oxford-shirt", "rain-jacket"]
    assert slugs(shirts) == ["cotton-tee", "oxford-shirt"]
    assert unknown.json["total"] == 0


def test_price_featured_and_stock_filters(client, shop):
    priced = client.get("/api/v1/products?min_price=20&max_price=50&sort=price_asc")
    featured = client.get("/api/v1/products?featured=true")
    in_stock = client.get("/api/v1/products?in_stock=true&sort=name")

    assert slugs(priced) == ["garden-hose", "oxford-shirt"]
    assert slugs(featured) == ["cotton-tee"]
    assert slugs(in_stock) == ["cotton-tee", "garden-hose", "rain-jacket"]


def test_an_empty_price_range_finds_nothing(client, shop):
    response = client.get("/api/v1/products?min_price=50&max_price=10")

    assert response.status_code == 200
    assert response.json["total"] == 0


def test_reserved_units_do_not_count_as_in_stock(client, db, shop):
    shop["hose"].variants[0].inventory.reserved = 5
    db.session.commit()

    response = client.get("/api/v1/products?in_stock=true&sort=name")

    assert "garden-hose" not in slugs(response)


@pytest.mark.parametrize(
    ("sort", "expected"),
    [
        ("price_asc", ["cotton-tee", "garden-hose", "oxford-shirt", "rain-jacket"]),
        ("price_desc", ["rain-jacket", "oxford-shirt", "garden-hose", "cotton-tee"]),
        ("newest", ["cotton-tee", "oxford-shirt", "rain-jacket", "garden-hose"]),
        ("name", ["cotton-tee", "garden-hose", "oxford-shirt", "rain-jacket"]),
        ("rating", ["garden-hose", "cotton-tee"]),
    ],
)
def test_sorts(client, shop, sort, expected):
    response = client.get(f"/api/v1/products?sort={sort}")

    assert slugs(response)[: len(expected)] == expected


def test_search_finds_words_in_name_and_description(client, shop):
    by_name = client.get("/api/v1/products?q=jacket")
    by_description = client.get("/api/v1/products?q=rubber")
    nothing = client.get("/api/v1/products?q=submarine")

    assert slugs(by_name) == ["rain-jacket"]
    assert slugs(by_description) == ["garden-hose"]
    assert nothing.json["total"] == 0


def test_search_ranks_name_matches_first(client, shop):
    response = client.get("/api/v1/products?q=shirt")

    # "Oxford Shirt" has it in the name; "Cotton Tee" only in its description.
    assert slugs(response)[0] == "oxford-shirt"
    assert "cotton-tee" in slugs(response)


def test_full_text_search_ranks_and_stems_on_postgres(client, db, postgres):
    product("Hiking Boots", description="Boots for hiking, hiking and more hiking")
    product("Trail Socks", description="Good for a hike")
    product("Kettle", description="Boils water")
    db.session.commit()

    response = client.get("/api/v1/products?q=hikes")

    # Stemming matches "hike"/"hiking"; the name match (weight A) ranks first.
    assert slugs(response) == ["hiking-boots", "trail-socks"]
    websearch = client.get('/api/v1/products?q="hiking boots" -socks')
    assert slugs(websearch) == ["hiking-boots"]


def test_search_text_of_odd_characters_is_not_an_error(client, shop):
    for q in ["'", "!!!", "a & b | c", "(", "\\", "%_"]:
        response = client.get("/api/v1/products", query_string={"q": q})
        assert response.status_code == 200, q


def test_listing_runs_the_same_few_statements_for_any_page_size(client, app, db):
    for index in range(30):
        product(f"Bulk {index:02d}", price=f"{10 + index}.00")
    db.session.commit()

    counts = {}
    for per_page, facets in ((5, "false"), (100, "false"), (5, "true"), (100, "true")):
        statements = []

        def count(*_args, into=statements):
            into.append(1)

        event.listen(db.engine, "before_cursor_execute", count)
        try:
            response = client.get(f"/api/v1/products?per_page={per_page}&facets={facets}")
        finally:
            event.remove(db.engine, "before_cursor_execute", count)
        assert response.status_code == 200
        assert len(response.json["items"]) == min(per_page, 30)
        counts[per_page, facets] = len(statements)

    assert counts[5, "false"] == counts[100, "false"]
    assert counts[5, "false"] <= 8
    # the facets: one statement for categories, prices and attributes (and, on PostgreSQL, one
    # turning JIT off for it: ecom.catalog.navigation.product_facets)
    facets = 1 + (db.engine.dialect.name == "postgresql")
    assert counts[5, "true"] == counts[100, "true"] == counts[5, "false"] + facets


# --- product detail ------------------------------------------------------------------------


def test_product_detail_adds_description_images_and_variants(client, db, shop):
    jacket = shop["jacket"]
    extra = VariantFactory(product=jacket, sku="JACKET-L", name="Large", price=Decimal("95.00"),
                           attributes={"size": "L"})
    InventoryFactory(variant=extra, quantity=3, reserved=3)
    gone = VariantFactory(product=jacket, sku="JACKET-XXL", is_active=False)
    InventoryFactory(variant=gone, quantity=9)
    db.session.commit()

    response = client.get("/api/v1/products/rain-jacket")

    assert response.status_code == 200
    body = response.json
    assert body["description"].startswith("Waterproof")
    assert body["images"] == [
        {"url": "https://img.example.com/rain-jacket.jpg", "alt_text": "Rain Jacket",
         "thumbnail_url": "https://img.example.com/rain-jacket.jpg",
         "large_url": "https://img.example.com/rain-jacket.jpg", "is_primary": True, "display_order": 0}
    ]
    variants = {v["sku"]: v for v in body["variants"]}
    assert set(variants) == {jacket.variants[0].sku, "JACKET-L"}
    assert variants["JACKET-L"] == {
        "id": extra.id, "sku": "JACKET-L", "name": "Large", "price": "95.00",
        "attributes": {"size": "L"}, "available": 0, "in_stock": False,
    }


def test_inactive_or_unknown_product_detail_is_404(client, shop):
    assert client.get("/api/v1/products/retired-shirt").status_code == 404
    assert client.get("/api/v1/products/nope").status_code == 404


# --- reviews ------------------------------------------------------------------------------


def test_post_a_review_updates_the_rating(client, db, shop, auth, customer):
    response = client.post("/api/v1/products/garden-hose/reviews", headers=auth,
                           json={"rating": 1, "title": "Leaks", "comment": "Split after a week"})

    assert response.status_code == 201
    assert response.json["author_name"] == "Casey Customer"
    assert response.json["verified_purchase"] is False
    db.session.expire_all()
    hose = db.session.get(Product, shop["hose"].id)
    assert hose.rating_count == 1
    assert hose.rating_average == Decimal("1.00")


def test_a_second_review_by_the_same_user_is_409(client, shop, auth):
    first = client.post("/api/v1/products/cotton-tee/reviews", headers=auth, json={"rating": 5})
    second = client.post("/api/v1/products/cotton-tee/reviews", headers=auth, json={"rating": 1})

    assert first.status_code == 201
    assert second.status_code == 409


@pytest.mark.parametrize("rating", [0, 6, "5", None])
def test_review_rating_must_be_1_to_5(client, shop, auth, rating):
    response = client.post("/api/v1/products/cotton-tee/reviews", headers=auth, json={"rating": rating})

    assert response.status_code == 422
    assert "rating" in response.json["errors"]


def test_reviewing_needs_authentication_and_a_visible_product(client, shop, auth):
    assert client.post("/api/v1/products/cotton-tee/reviews", json={"rating": 5}).status_code == 401
    assert client.post("/api/v1/products/retired-shirt/reviews", headers=auth,
                       json={"rating": 5}).status_code == 404


@pytest.mark.parametrize(("status", "verified"), [("created", False), ("cancelled", False), ("paid", True),
                                                  ("delivered", True)])
def test_verified_purchase_needs_a_paid_or_later_order(client, db, shop, auth, customer, status, verified):
    order = Order(user_id=customer.id, order_number=f"ORD-TEST-{status}", status=status,
                  subtotal=Decimal("15.00"), tax=Decimal("1.20"), shipping_cost=Decimal("5.99"),
                  total=Decimal("22.19"), shipping_address={}, billing_address={})
    order.items.append(OrderItem(product_id=shop["tee"].id, sku="X", product_name="Cotton Tee", quantity=1,
                                 price=Decimal("15.00"), line_total=Decimal("15.00")))
    db.session.add(order)
    db.session.commit()

    response = client.post("/api/v1/products/cotton-tee/reviews", headers=auth, json={"rating": 4})

    assert response.json["verified_purchase"] is verified


def test_reviews_list_newest_first_without_hidden_ones(client, db, shop):
    from ecom.actor import SYSTEM
    from ecom.catalog.reviews import create_review, set_review_hidden

    tee = shop["tee"]
    old = create_review(tee, UserFactory(full_name="Old"), rating=3)
    old.created_at = utcnow() - timedelta(days=2)
    new = create_review(tee, UserFactory(full_name="New"), rating=5)
    hidden = create_review(tee, UserFactory(full_name="Troll"), rating=1)
    set_review_hidden(hidden, True, actor=SYSTEM)
    db.session.commit()

    response = client.get("/api/v1/products/cotton-tee/reviews?per_page=10")

    assert response.status_code == 200
    assert [r["id"] for r in response.json["items"]] == [new.id, old.id]
    assert response.json["total"] == 2
    assert set(response.json["items"][0]) == {"id", "rating", "title", "comment", "author_name",
                                              "verified_purchase", "created_at"}


def test_reviews_of_an_unknown_product_are_404(client, db):
    assert client.get("/api/v1/products/nope/reviews").status_code == 404
