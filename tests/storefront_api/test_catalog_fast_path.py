"""The product list's fast path (Core rows rendered straight to JSON data) answers exactly what
the ORM + pydantic rendering it replaced answers, for a varied catalog and every kind of list."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta
from decimal import Decimal

import pytest
from sqlalchemy import event

from ecom.catalog import queries
from ecom.db import utcnow
from storefront_api.catalog import ProductPage, ProductQuery, product_summary
from storefront_api.pagination import page_of
from tests.factories import (
    CategoryFactory,
    InventoryFactory,
    ProductFactory,
    ProductImageFactory,
    StockLocationFactory,
    VariantFactory,
)


@pytest.fixture
def varied_catalog(db):
    """Products with and without category, images (by URL, uploaded with thumbnails, several with
    the primary not first, none), compare-at prices, ratings, featured, stock at several
    locations (shipping, not shipping, inactive), sold out, reserved, inactive variants."""
    outdoor = CategoryFactory(name="Outdoor", slug="outdoor")
    boots = CategoryFactory(name="Boots", slug="boots", parent=outdoor)
    CategoryFactory(name="Empty", slug="empty")
    # Every location named: the default one is whichever ships first, which after a test that
    # emptied the tables can be any of these.
    main = StockLocationFactory(code="WH1", priority=1)
    second = StockLocationFactory(code="WH2")
    shop_floor = StockLocationFactory(code="SHOP", ships_orders=False)
    closed = StockLocationFactory(code="OLD", is_active=False)

    def make(n, name, *, category=outdoor, price="20.00", featured=False, rating=None, days=0,
             description="Sturdy gear", variants=(("M", "20.00", None, {"size": "M"}),), active=True):
        product = ProductFactory(name=name, slug=f"p{n}-{name.lower().replace(' ', '-')}", category=category,
                                 base_price=Decimal(price), featured=featured, description=description,
                                 created_at=utcnow() - timedelta(days=days), is_active=active,
                                 min_price=min(Decimal(v[1]) for v in variants) if variants else None,
                                 max_price=max(Decimal(v[1]) for v in variants) if variants else None,
                                 rating_average=Decimal(rating[0]) if rating else None,
                                 rating_count=rating[1] if rating else 0)
        made = []
        for sku_name, variant_price, compare_at, attributes in variants:
            made.append(VariantFactory(product=product, name=sku_name, price=Decimal(variant_price),
                                       compare_at_price=Decimal(compare_at) if compare_at else None,
                                       attributes=attributes))
        return product, made

    hiking, (h1, h2) = make(1, "Hiking Boot", category=boots, price="89.00", rating=("4.50", 2),
                            description="Waterproof leather boot for hiking",
                            variants=(("42", "89.00", "119.00", {"size": "42", "colour": "brown"}),
                                      ("43", "95.50", None, {"size": "43", "colour": "black"})))
    InventoryFactory(variant=h1, location=main, quantity=0)
    InventoryFactory(variant=h1, location=second, quantity=4, reserved=1)
    InventoryFactory(variant=h2, location=main, quantity=2, reserved=2)
    ProductImageFactory(product=hiking, url="https://img.example.com/boot-side.jpg", alt_text="",
                        is_primary=False, display_order=0)
    ProductImageFactory(product=hiking, url="https://img.example.com/boot.jpg", alt_text="A boot",
                        is_primary=True, display_order=1)

    tent, (t1,) = make(2, "Trail Tent", price="150.00", featured=True, rating=("3.33", 3), days=2,
                       variants=(("Two person", "150.00", "199.99", {"capacity": 2}),))
    InventoryFactory(variant=t1, location=shop_floor, quantity=9)  # not for shipping
    InventoryFactory(variant=t1, location=closed, quantity=9)  # inactive location
    ProductImageFactory(product=tent, url="/media/products/2/original.jpg",
                        storage_key="products/2/original.jpg",
                        thumbnails={"200": "products/2/thumb-200.webp", "800": "products/2/thumb-800.webp"},
                        alt_text="Tent")

    stove, (s1, s2) = make(3, "Camp Stove", category=None, price="30.00", days=1,
                           variants=(("Gas", "30.00", None, {}), ("Old", "25.00", None, {"fuel": "wood"})))
    s2.is_active = False
    InventoryFactory(variant=s1, location=main, quantity=3)
    InventoryFactory(variant=s2, location=main, quantity=50)
    ProductImageFactory(product=stove, url="https://img.example.com/stove.jpg", is_primary=False,
                        display_order=2)  # no primary: the first in display order is shown
    ProductImageFactory(product=stove, url="https://img.example.com/stove-2.jpg", is_primary=False,
                        display_order=1, thumbnails={"800": "only-large.webp"})

    lamp, (l1,) = make(4, "Head Lamp", price="19.99", rating=("5.00", 1), days=3,
                       variants=(("One", "19.99", "24.99", {"colour": "Red"}),))
    InventoryFactory(variant=l1, location=main, quantity=7)
    InventoryFactory(variant=l1, location=second, quantity=1)  # no image at all

    make(5, "Bare Product", category=boots, price="5.00", days=4, variants=())  # no variants, no image

    for n in range(6, 14):  # enough for several pages, some ties on created_at
        product, (variant,) = make(n, f"Filler {n}", price=str(10 + n), days=5,
                                   variants=((f"F{n}", str(10 + n), None, {"size": "M" if n % 2 else "L"}),))
        InventoryFactory(variant=variant, location=main, quantity=n % 3)
        ProductImageFactory(product=product, url=f"https://img.example.com/filler-{n}.jpg",
                            alt_text=f"Filler {n}")

    make(14, "Hidden Boot", category=boots, active=False)
    db.session.commit()


LISTS = [
    "",
    "per_page=5",
    "per_page=5&page=2",
    "per_page=5&page=3",
    "per_page=5&page=99",  # past the end: no items, the total still counted
    "sort=price_asc",
    "sort=price_desc&per_page=4&page=2",
    "sort=newest",
    "sort=name",
    "sort=rating",
    "category=outdoor",
    "category=boots",
    "category=empty",
    "category=nowhere",
    "min_price=19.99&max_price=89",
    "featured=true",
    "featured=false&sort=name",
    "in_stock=true",
    "in_stock=false",
    "attr.colour=red,brown",
    "attr.size=M&in_stock=true",
    "q=boot",
    "q=waterproof&sort=relevance",
    "q=hikng",  # fuzzy
    "q=tent&category=outdoor&in_stock=false",
]


def _orm_answer(client, url: str) -> dict:
    """What the list answered before the fast path: ORM objects rendered through pydantic."""
    with client.application.test_request_context(url):
        from flask import request

        query = ProductQuery.model_validate(request.args.to_dict(flat=True))
        filters = queries.ProductFilters(
            category=query.category, q=query.q,
            min_price=Decimal(query.min_price) if query.min_price is not None else None,
            max_price=Decimal(query.max_price) if query.max_price is not None else None,
            featured=query.featured, in_stock=query.in_stock, sort=query.sort, attributes=query.attributes)
        mode = queries.search_mode(filters)
        filters = replace(filters, search=mode)
        products, total = queries.list_products(filters, page=query.page, per_page=query.per_page)
        page = page_of(products, page=query.page, per_page=query.per_page, total=total,
                       render=product_summary)
        return ProductPage(**page, facets=None, search=mode).model_dump(mode="json")


@pytest.mark.parametrize("query", LISTS)
def test_fast_list_answers_what_the_orm_rendering_answered(client, varied_catalog, query):
    url = f"/api/v1/products?{query}"

    response = client.get(url)

    assert response.status_code == 200
    assert response.json == _orm_answer(client, url)


def test_the_varied_catalog_shows_every_case(client, varied_catalog):
    # a guard that the comparison above covers what it claims
    items = {item["name"]: item for item in client.get("/api/v1/products?per_page=100").json["items"]}
    assert items["Hiking Boot"]["primary_image"]["url"] == "https://img.example.com/boot.jpg"
    assert items["Hiking Boot"]["in_stock"] is True  # only at the second warehouse
    assert items["Hiking Boot"]["price_range"] == {"min": "89.00", "max": "95.50"}
    assert items["Trail Tent"]["in_stock"] is False  # stock only where nothing ships
    assert items["Trail Tent"]["primary_image"]["thumbnail_url"] == \
        "http://localhost/media/products/2/thumb-200.webp"
    assert items["Camp Stove"]["category"] is None
    assert items["Camp Stove"]["primary_image"]["url"] == "https://img.example.com/stove-2.jpg"
    assert items["Head Lamp"]["primary_image"] is None
    assert items["Head Lamp"]["rating"] == {"average": 5.0, "count": 1}
    assert items["Bare Product"]["price_range"] == {"min": "5.00", "max": "5.00"}
    assert "Hidden Boot" not in items


def test_a_list_page_is_one_statement(client, varied_catalog, db):
    # given the statement built once already (it is reused for the same filters)
    client.get("/api/v1/products?per_page=5&page=1")
    statements = []

    def count(_conn, _cursor, statement, *_args):
        if statement.lstrip().upper().startswith("SELECT"):
            statements.append(statement)

    engine = db.session.get_bind().engine
    event.listen(engine, "before_cursor_execute", count)
    try:
        # when another page is listed
        response = client.get("/api/v1/products?per_page=5&page=2")
    finally:
        event.remove(engine, "before_cursor_execute", count)

    # then products, categories, images, stock and the total came in one SELECT
    assert response.status_code == 200 and len(response.json["items"]) == 5
    assert len(statements) == 1
