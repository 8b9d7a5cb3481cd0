"""Finding one's way: the category tree, facets (checked against SQL written separately),
attribute filters, typo-tolerant search, suggestions, and parameters that are refused."""

from __future__ import annotations

from decimal import Decimal

import pytest
from sqlalchemy import event, text

from ecom.catalog.models import Product
from tests.factories import CategoryFactory, InventoryFactory, ProductFactory, VariantFactory
from tests.storefront_api.test_catalog_cache import cache  # noqa: F401


def product(name, price, category, *variants, active=True, **fields):
    """An active product with a variant (and 5 units) per attribute dict in ``variants``."""
    made = ProductFactory(name=name, slug=name.lower().replace(" ", "-"), base_price=Decimal(price),
                          min_price=Decimal(price), max_price=Decimal(price), category=category,
                          is_active=active, **fields)
    for attributes in variants or ({},):
        attributes = dict(attributes)
        variant_active = attributes.pop("_active", True)
        variant = VariantFactory(product=made, price=Decimal(price), attributes=attributes,
                                 is_active=variant_active)
        InventoryFactory(variant=variant, quantity=5)
    return made


@pytest.fixture
def outdoor(db):
    """Outdoor > Footwear > Boots, Outdoor > Tents, and Kitchen; products with colours and sizes."""
    outdoor = CategoryFactory(name="Outdoor", slug="outdoor", display_order=1)
    footwear = CategoryFactory(name="Footwear", slug="footwear", parent=outdoor, display_order=1)
    boots = CategoryFactory(name="Boots", slug="boots", parent=footwear)
    tents = CategoryFactory(name="Tents", slug="tents", parent=outdoor, display_order=2)
    kitchen = CategoryFactory(name="Kitchen", slug="kitchen", display_order=2)
    made = {
        "hiking": product("Hiking Boots", "120.00", boots, {"colour": "Brown", "size": "42"},
                          {"colour": "Black", "size": "43"},
                          description="Waterproof leather boots for long walks"),
        "trail": product("Trail Boots", "95.00", boots, {"colour": "Black", "size": "42"},
                         {"colour": "Red", "size": "44", "_active": False}),
        "socks": product("Hiking Socks", "12.00", footwear, {"colour": "Red", "size": "M"}),
        "tent": product("Dome Tent", "240.00", tents, {"colour": "Green"}),
        "knife": product("Chef Knife", "45.00", kitchen),
        "old": product("Old Boots", "30.00", boots, {"colour": "Red", "size": "42"}, active=False),
    }
    db.session.commit()
    return made


def slugs(response) -> list[str]:
    return sorted(item["slug"] for item in response.json["items"])


# --- the tree -------------------------------------------------------------------------------


def test_the_tree_nests_subcategories_with_counts_that_include_them(client, outdoor):
    response = client.get("/api/v1/categories?tree=true")

    assert response.status_code == 200
    roots = response.json["items"]
    assert [root["slug"] for root in roots] == ["outdoor", "kitchen"]
    outdoor_node = roots[0]
    assert outdoor_node["parent"] is None and outdoor_node["product_count"] == 4
    assert [child["slug"] for child in outdoor_node["children"]] == ["footwear", "tents"]
    footwear = outdoor_node["children"][0]
    assert footwear["parent"]["slug"] == "outdoor" and footwear["product_count"] == 3
    boots = footwear["children"][0]
    assert (boots["slug"], boots["product_count"], boots["children"]) == ("boots", 2, [])
    assert boots["parent"] == {"id": footwear["id"], "slug": "footwear", "name": "Footwear"}


def test_the_flat_list_and_one_category_carry_parent_and_children(client, outdoor):
    items = {item["slug"]: item for item in client.get("/api/v1/categories").json["items"]}
    assert len(items) == 5
    assert [child["slug"] for child in items["outdoor"]["children"]] == ["footwear", "tents"]
    assert items["boots"]["parent"]["slug"] == "footwear" and items["kitchen"]["parent"] is None
    assert set(items["footwear"]["children"][0]) == {"id", "slug", "name"}  # links, not nested

    one = client.get("/api/v1/categories/footwear").json
    assert one["parent"]["slug"] == "outdoor"
    assert [child["slug"] for child in one["children"]] == ["boots"]


def test_the_tree_survives_a_parent_cycle_written_behind_the_services_back(client, db, outdoor):
    # the services refuse it (tests/ecom/catalog/test_category_tree.py); a hand-written UPDATE can't be
    boots = db.session.execute(text("SELECT id FROM categories WHERE slug = 'boots'")).scalar()
    db.session.execute(text("UPDATE categories SET parent_id = :boots WHERE slug = 'outdoor'"),
                       {"boots": boots})
    db.session.commit()

    response = client.get("/api/v1/categories?tree=true")

    assert response.status_code == 200
    seen = []

    def walk(nodes):
        for node in nodes:
            seen.append(node["slug"])
            walk(node["children"])

    walk(response.json["items"])
    assert sorted(seen) == ["boots", "footwear", "kitchen", "outdoor", "tents"]  # each once


# --- attribute filters ----------------------------------------------------------------------


@pytest.mark.parametrize(("query", "expected"), [
    ("attr.colour=Black", ["hiking-boots", "trail-boots"]),
    ("attr.colour=black", ["hiking-boots", "trail-boots"]),  # case-insensitive values
    ("attr.colour=black,green", ["dome-tent", "hiking-boots", "trail-boots"]),  # either
    ("attr.colour=red", ["hiking-socks"]),  # not the inactive variant, not the inactive product
    ("attr.colour=black&attr.size=43", ["hiking-boots"]),  # every attribute
    ("attr.size=42&category=boots", ["hiking-boots", "trail-boots"]),
    ("attr.colour=purple", []),
    ("attr.flavour=mint", []),
])
def test_filter_by_attribute(client, outdoor, query, expected):
    response = client.get(f"/api/v1/products?{query}")

    assert response.status_code == 200
    assert slugs(response) == expected
    assert response.json["total"] == len(expected)


# --- facets, against SQL of their own -------------------------------------------------------


def _is_postgres(db) -> bool:
    return db.engine.dialect.name == "postgresql"


def sql_category_counts(db, where: str = "TRUE", **params) -> list[dict]:
    rows = db.session.execute(text(f"""
        SELECT c.slug, c.name, COUNT(*) FROM products p JOIN categories c ON c.id = p.category_id
        WHERE p.is_active AND {where} GROUP BY c.slug, c.name"""), params)
    return sorted(({"slug": s, "name": n, "count": k} for s, n, k in rows),
                  key=lambda r: (-r["count"], r["name"]))


def sql_attribute_counts(db, key: str, where: str = "TRUE", **params) -> dict[str, int]:
    value = f"v.attributes ->> '{key}'" if _is_postgres(db) else f"json_extract(v.attributes, '$.{key}')"
    rows = db.session.execute(text(f"""
        SELECT {value}, COUNT(DISTINCT p.id) FROM products p JOIN variants v ON v.product_id = p.id
        WHERE p.is_active AND v.is_active AND {value} IS NOT NULL AND {where} GROUP BY {value}"""), params)
    return dict(rows.all())


def sql_has_colour(db, colour: str) -> str:
    value = "w.attributes ->> 'colour'" if _is_postgres(db) else "json_extract(w.attributes, '$.colour')"
    return (f"EXISTS (SELECT 1 FROM variants w WHERE w.product_id = p.id AND w.is_active "
            f"AND lower({value}) = '{colour}')")


def facet_values(facets, name) -> dict[str, int]:
    return {item["value"]: item["count"] for item in facets["attributes"].get(name, [])}


def test_facets_of_the_whole_catalog_match_sql(client, db, outdoor):
    facets = client.get("/api/v1/products?facets=true").json["facets"]

    assert facets["category"] == sql_category_counts(db)
    assert facet_values(facets, "colour") == sql_attribute_counts(db, "colour") == {
        "Black": 2, "Brown": 1, "Red": 1, "Green": 1}
    assert facet_values(facets, "size") == sql_attribute_counts(db, "size")
    # price buckets by lowest price: 12 | 45 | 95 | 120 | 240
    assert facets["price"] == [
        {"min": "0.00", "max": "25.00", "count": 1},
        {"min": "25.00", "max": "50.00", "count": 1},
        {"min": "50.00", "max": "100.00", "count": 1},
        {"min": "100.00", "max": "200.00", "count": 1},
        {"min": "200.00", "max": "500.00", "count": 1},
    ]


def test_facets_count_each_dimension_under_the_other_filters(client, db, outdoor):
    response = client.get("/api/v1/products?attr.colour=black&min_price=50&facets=true")
    facets = response.json["facets"]
    black = sql_has_colour(db, "black")

    assert slugs(response) == ["hiking-boots", "trail-boots"]
    # categories and sizes: under both filters
    assert facets["category"] == sql_category_counts(db, f"{black} AND p.min_price >= 50")
    assert facet_values(facets, "size") == sql_attribute_counts(db, "size", f"{black} AND p.min_price >= 50")
    # colours: under the price filter only, so the other colours can still be chosen
    assert facet_values(facets, "colour") == sql_attribute_counts(db, "colour", "p.min_price >= 50") == {
        "Black": 2, "Brown": 1, "Green": 1}
    # prices: under the colour filter only
    assert facets["price"] == [{"min": "50.00", "max": "100.00", "count": 1},
                               {"min": "100.00", "max": "200.00", "count": 1}]


def test_facets_follow_category_and_search(client, db, outdoor):
    facets = client.get("/api/v1/products?category=footwear&q=boots&facets=true").json["facets"]

    assert facet_values(facets, "colour") == {"Black": 2, "Brown": 1}
    assert facets["category"] == [{"slug": "boots", "name": "Boots", "count": 2}]


def test_the_category_facet_counts_every_category_under_a_category_filter(client, db, outdoor):
    response = client.get("/api/v1/products?category=tents&in_stock=true&facets=true")
    facets = response.json["facets"]

    assert slugs(response) == ["dome-tent"]
    # categories: under every filter but the category's own
    assert facets["category"] == sql_category_counts(db) == [
        {"slug": "boots", "name": "Boots", "count": 2}, {"slug": "footwear", "name": "Footwear", "count": 1},
        {"slug": "kitchen", "name": "Kitchen", "count": 1}, {"slug": "tents", "name": "Tents", "count": 1}]
    # prices and attributes: in the category
    assert facets["price"] == [{"min": "200.00", "max": "500.00", "count": 1}]
    assert facets["attributes"] == {"colour": [{"value": "Green", "count": 1}]}


def test_facets_come_on_request(client, outdoor):
    for path in ("/api/v1/products", "/api/v1/products?facets=false"):
        response = client.get(path)
        assert response.status_code == 200 and response.json["facets"] is None
        assert response.json["total"] == 5


# --- search that forgives typos, and suggestions --------------------------------------------


@pytest.mark.parametrize("q", ["hikng boots", "hiking boosts", "Hikin"])
def test_search_forgives_typos(client, outdoor, q):
    response = client.get("/api/v1/products", query_string={"q": q})

    assert response.status_code == 200
    assert "hiking-boots" in slugs(response)
    assert response.json["search"] == "fuzzy"
    assert "chef-knife" not in slugs(response) and "old-boots" not in slugs(response)


def test_a_search_that_finds_enough_stays_full_text(client, db, outdoor):
    for index in range(3):
        product(f"Camp Stove {index}", "40.00", None)
    db.session.commit()

    response = client.get("/api/v1/products", query_string={"q": "stove"})

    assert response.json["search"] == "fulltext"
    assert response.json["total"] == 3
    assert client.get("/api/v1/products").json["search"] is None


def _selects_during(db, request):
    statements = []

    def count(_conn, _cursor, statement, *_args):
        if statement.lstrip().upper().startswith("SELECT") and "set_config" not in statement:
            statements.append(statement)

    engine = db.session.get_bind().engine
    event.listen(engine, "before_cursor_execute", count)
    try:
        return request(), statements
    finally:
        event.remove(engine, "before_cursor_execute", count)


def test_a_search_that_finds_enough_is_one_select_and_a_typo_lists_again(client, db, outdoor):
    for index in range(3):
        product(f"Camp Stove {index}", "40.00", None)
    db.session.commit()
    client.get("/api/v1/products?q=stove")  # the statements built once already

    found, selects = _selects_during(db, lambda: client.get("/api/v1/products?q=stove"))
    typo, typo_selects = _selects_during(db, lambda: client.get("/api/v1/products?q=hikng+boots"))

    assert found.json["search"] == "fulltext" and found.json["total"] == 3
    assert len(selects) == 1  # the full-text page is its own probe
    assert typo.json["search"] == "fuzzy" and "hiking-boots" in slugs(typo)
    # The full-text page found too few: listed again, fuzzy (SQLite reads the names first).
    assert len(typo_selects) == (2 if db.session.get_bind().dialect.name == "postgresql" else 3)


def test_a_page_past_the_end_of_a_full_text_search_stays_full_text(client, db, outdoor):
    for index in range(3):
        product(f"Camp Stove {index}", "40.00", None)
    db.session.commit()

    response = client.get("/api/v1/products", query_string={"q": "stove", "page": 5})

    assert response.status_code == 200
    assert response.json["search"] == "fulltext"
    assert response.json["total"] == 3 and response.json["items"] == []


def test_a_search_finding_fewer_than_the_fallback_mark_is_fuzzy_on_any_page(client, db, outdoor):
    # one full-text match ("Camp Stove 0"): the same answer as search_mode's probe gives
    product("Camp Stove 0", "40.00", None)
    db.session.commit()

    first = client.get("/api/v1/products", query_string={"q": "stove"})
    beyond = client.get("/api/v1/products", query_string={"q": "stove", "page": 3})

    assert first.json["search"] == beyond.json["search"] == "fuzzy"
    assert "camp-stove-0" in slugs(first) and beyond.json["items"] == []
    assert beyond.json["total"] == first.json["total"]


def test_a_typo_search_ranks_the_closest_name_first(client, outdoor):
    response = client.get("/api/v1/products", query_string={"q": "hikng boots"})

    assert response.json["items"][0]["slug"] == "hiking-boots"


def test_suggest_completes_categories_then_products(client, outdoor):
    response = client.get("/api/v1/search/suggest?q=hik")

    assert response.status_code == 200
    assert response.json["items"] == [
        {"text": "Hiking Boots", "kind": "product", "slug": "hiking-boots"},
        {"text": "Hiking Socks", "kind": "product", "slug": "hiking-socks"},
    ]
    boots = client.get("/api/v1/search/suggest?q=BOO").json["items"]
    assert boots[0] == {"text": "Boots", "kind": "category", "slug": "boots"}
    assert [s["slug"] for s in boots[1:]] == ["trail-boots", "hiking-boots"]  # a word's start; not Old Boots
    assert client.get("/api/v1/search/suggest?q=boo&limit=1").json["items"] == boots[:1]


def test_suggest_takes_wildcards_literally(client, outdoor):
    for q in ("%", "_", "%%", "\\"):
        response = client.get("/api/v1/search/suggest", query_string={"q": q})
        assert response.status_code == 200 and response.json["items"] == [], q


def test_suggest_forgives_a_typo_on_postgresql(client, outdoor, postgres):
    items = client.get("/api/v1/search/suggest?q=hikng").json["items"]

    assert items and items[0]["kind"] == "product" and items[0]["slug"].startswith("hiking-")


# --- refused parameters: 400 with errors, never a 500 ---------------------------------------


@pytest.mark.parametrize("path", [
    "/api/v1/categories?tree=maybe",
    "/api/v1/products?facets=perhaps",
    "/api/v1/products?attr.=red",
    "/api/v1/products?attr.col%20our=red",
    "/api/v1/products?attr.colour=",
    "/api/v1/products?attr.colour=,,",
    "/api/v1/products?attr.colour=" + "x" * 101,
    "/api/v1/products?" + "&".join(f"attr.a{i}=1" for i in range(11)),
    "/api/v1/products?attr.colour=" + ",".join(str(i) for i in range(21)),
    "/api/v1/search/suggest",
    "/api/v1/search/suggest?q=",
    "/api/v1/search/suggest?q=" + "h" * 101,
    "/api/v1/search/suggest?q=hik&limit=0",
    "/api/v1/search/suggest?q=hik&limit=21",
    "/api/v1/search/suggest?q=hik%00",
])
def test_malformed_navigation_parameters_are_400(client, outdoor, path):
    response = client.get(path)

    assert response.status_code == 400, response.json
    assert response.json["detail"] and response.json.get("errors")


def test_unknown_parameters_that_merely_look_alike_are_ignored(client, outdoor):
    response = client.get("/api/v1/products?attribute=red&attr=red")

    assert response.status_code == 200 and response.json["total"] == 5


# --- the cache keeps the new parameters apart -----------------------------------------------


def test_cached_pages_differ_by_attribute_filter_and_tree(client, outdoor, cache):  # noqa: F811
    black = client.get("/api/v1/products?attr.colour=black")
    green = client.get("/api/v1/products?attr.colour=green")
    again = client.get("/api/v1/products?attr.colour=black")

    assert [r.headers["X-Cache"] for r in (black, green, again)] == ["miss", "miss", "hit"]
    assert slugs(green) == ["dome-tent"] and slugs(again) == slugs(black) == ["hiking-boots", "trail-boots"]
    flat = client.get("/api/v1/categories")
    tree = client.get("/api/v1/categories?tree=true")
    assert tree.headers["X-Cache"] == "miss" and len(flat.json["items"]) == 5 and len(tree.json["items"]) == 2
    assert client.get("/api/v1/search/suggest?q=hik").headers["X-Cache"] == "miss"
    assert client.get("/api/v1/search/suggest?q=hik&limit=1").json["items"] == [
        {"text": "Hiking Boots", "kind": "product", "slug": "hiking-boots"}]


def test_a_catalog_write_refreshes_the_facets(client, db, outdoor, cache):  # noqa: F811
    before = client.get("/api/v1/products?facets=true").json["facets"]
    db.session.get(Product, outdoor["tent"].id).is_active = False
    db.session.commit()

    after = client.get("/api/v1/products?facets=true")

    assert after.headers["X-Cache"] == "miss"
    assert "Green" in facet_values(before, "colour")
    assert "Green" not in facet_values(after.json["facets"], "colour")
