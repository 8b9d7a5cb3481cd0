"""What in_stock=true and attr.<name>= select, case by case: stock reserved at one location and
free at another, stock only where nothing ships or at an inactive location, an inactive variant's
stock; attribute values in another case, numbers and true/false, a name in another case. The
list's in_stock flag says the same as the filter. (Migration 0015's jsonb column and partial
index serve these; their answers must be what the json column and the full scan gave.)"""

from __future__ import annotations

from decimal import Decimal

import pytest
from sqlalchemy import text

from ecom.catalog import navigation, queries
from tests.factories import InventoryFactory, ProductFactory, StockLocationFactory, VariantFactory


@pytest.fixture
def stocked(db):
    """Products named by their stock situation and their variants' attributes."""
    main = StockLocationFactory(code="WH1", priority=1)
    second = StockLocationFactory(code="WH2", priority=2)
    shop_floor = StockLocationFactory(code="SHOP", ships_orders=False)
    closed = StockLocationFactory(code="OLD", is_active=False)

    def product(slug, *variants):
        made = ProductFactory(name=slug.replace("-", " ").title(), slug=slug, base_price=Decimal("10.00"))
        for attributes, stock, active in variants:
            variant = VariantFactory(product=made, attributes=attributes, is_active=active)
            for location, quantity, reserved in stock:
                InventoryFactory(variant=variant, location=location, quantity=quantity, reserved=reserved)

    product("reserved-here-free-there", ({"size": "Small"}, [(main, 3, 3), (second, 2, 1)], True))
    product("all-reserved", ({"size": "SMALL"}, [(main, 3, 3), (second, 1, 1)], True))
    product("only-on-the-shop-floor", ({"size": "small"}, [(shop_floor, 5, 0)], True))
    product("only-at-a-closed-warehouse", ({"Size": "small"}, [(closed, 5, 0)], True))
    product("stock-on-an-inactive-variant",
            ({"size": "Large"}, [(main, 0, 0)], True), ({"size": "Small"}, [(main, 9, 0)], False))
    product("numbered", ({"size": 42, "waterproof": True}, [(main, 1, 0)], True))
    product("no-inventory-row", ({"size": "Medium"}, [], True))
    db.session.commit()


def listed(client, query: str) -> dict[str, bool]:
    response = client.get(f"/api/v1/products?per_page=100&{query}")
    assert response.status_code == 200
    return {item["slug"]: item["in_stock"] for item in response.json["items"]}


def test_in_stock_means_a_unit_free_at_an_active_location_that_ships(client, stocked):
    everything = listed(client, "")

    assert listed(client, "in_stock=true") == {"reserved-here-free-there": True, "numbered": True}
    assert listed(client, "in_stock=false") == {
        "all-reserved": False, "only-on-the-shop-floor": False, "only-at-a-closed-warehouse": False,
        "stock-on-an-inactive-variant": False, "no-inventory-row": False}
    # the flag of the plain list agrees with the filter
    assert everything == {**listed(client, "in_stock=true"), **listed(client, "in_stock=false")}


@pytest.mark.parametrize(("query", "expected"), [
    # values compare case-insensitively; the name exactly
    ("attr.size=small", ["all-reserved", "only-on-the-shop-floor", "reserved-here-free-there"]),
    ("attr.size=SMALL,medium", ["all-reserved", "no-inventory-row", "only-on-the-shop-floor",
                                "reserved-here-free-there"]),
    ("attr.Size=Small", ["only-at-a-closed-warehouse"]),
    # a number matches its JSON text
    ("attr.size=42", ["numbered"]),
    # only active variants count
    ("attr.size=large", ["stock-on-an-inactive-variant"]),
    ("attr.size=small&in_stock=true", ["reserved-here-free-there"]),
    ("attr.size=small&attr.waterproof=true", []),
])
def test_attribute_filters(client, stocked, query, expected):
    assert sorted(listed(client, query)) == expected


def postgres_only(db):
    if db.session.get_bind().dialect.name != "postgresql":
        pytest.skip("SQLite's JSON functions read true as 1 (the development database only)")


@pytest.mark.parametrize(("query", "expected"), [
    ("attr.waterproof=TRUE", ["numbered"]),
    ("attr.waterproof=1", []),
])
def test_attribute_filters_read_true_as_its_json_text(client, db, stocked, query, expected):
    postgres_only(db)
    assert sorted(listed(client, query)) == expected


def test_attribute_facet_values_keep_their_stored_text(client, db, stocked):
    postgres_only(db)
    facets = client.get("/api/v1/products?facets=true").json["facets"]["attributes"]

    assert facets["size"] == [{"value": "42", "count": 1}, {"value": "Large", "count": 1},
                              {"value": "Medium", "count": 1}, {"value": "SMALL", "count": 1},
                              {"value": "Small", "count": 1}, {"value": "small", "count": 1}]
    assert facets["waterproof"] == [{"value": "true", "count": 1}]
    assert facets["Size"] == [{"value": "small", "count": 1}]


def test_the_typo_search_is_planned_to_read_the_trigram_index(db, stocked):
    # Given PostgreSQL (SQLite compares the names in Python: queries._names_alike)
    postgres_only(db)
    filters = queries.ProductFilters(q="numberd", search=queries.FUZZY)
    statement, _ = queries.summaries_statement(filters, page=1, per_page=24)
    setting = "SELECT current_setting('enable_seqscan')"

    # when the typo search lists its page, then lists facets in the same transaction
    listed, total = queries.list_summaries(filters, page=1, per_page=24)
    during_the_list = db.session.scalar(text(setting))
    navigation.product_facets(filters)
    during_the_facets = db.session.scalar(text(setting))

    # then it found the product by its name's trigrams, each operator with the column first (an
    # index serves only that form), with sequential scans priced out for the list only
    assert [product.slug for product in listed] == ["numbered"] and total == 1
    sql = str(statement.compile(dialect=db.session.get_bind().dialect)).replace("%%", "%")  # pyformat
    assert "products.name % " in sql and "products.name %> " in sql and "<%" not in sql
    assert (during_the_list, during_the_facets) == ("off", "on")
