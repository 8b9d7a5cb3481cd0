"""The in-stock flag of a listing page, answered by one statement over the page's ids."""

from __future__ import annotations

from sqlalchemy import event

from ecom.catalog import queries
from ecom.inventory.models import available_units
from tests.factories import (
    InventoryFactory,
    ProductFactory,
    ProductImageFactory,
    VariantFactory,
    stocked_variant,
)


def _listed(**filters) -> dict[str, bool]:
    products, _ = queries.list_products(queries.ProductFilters(sort="name", **filters), page=1, per_page=50)
    return {product.slug: queries.product_in_stock(product) for product in products}


def test_listing_marks_products_in_stock_only_when_an_active_variant_has_units_available(db):
    # given one product of each kind
    stocked_variant(5, product=ProductFactory(slug="a-stocked"))
    reserved = VariantFactory(product=ProductFactory(slug="b-all-reserved"))
    InventoryFactory(variant=reserved, quantity=3, reserved=3)
    stocked_variant(7, is_active=False, product=ProductFactory(slug="c-inactive-variant"))
    ProductFactory(slug="d-no-variants")
    mixed = ProductFactory(slug="e-one-of-two")
    InventoryFactory(variant=VariantFactory(product=mixed), quantity=0)
    stocked_variant(1, product=mixed)

    # when the catalog is listed
    flags = _listed()

    # then only the products with an active variant that has units left are in stock
    assert flags == {"a-stocked": True, "b-all-reserved": False, "c-inactive-variant": False,
                     "d-no-variants": False, "e-one-of-two": True}


def test_listing_flag_agrees_with_the_in_stock_filter(db):
    stocked_variant(2, product=ProductFactory(slug="in"))
    InventoryFactory(variant=VariantFactory(product=ProductFactory(slug="out")), quantity=0)

    assert set(_listed(in_stock=True)) == {slug for slug, flag in _listed().items() if flag} == {"in"}


def test_product_detail_loads_everything_it_shows_in_three_statements(db):
    # given a product with a category, two images and three variants, one sold out
    product = ProductFactory(slug="detailed")
    ProductImageFactory(product=product)
    ProductImageFactory(product=product)
    for quantity in (4, 0, 9):
        stocked_variant(quantity, product=product)
    db.session.commit()
    db.session.expire_all()
    statements = []

    def count(_conn, _cursor, statement, *_args):
        statements.append(statement.split()[0])

    # when the detail is read and everything it shows is touched
    event.listen(db.engine, "before_cursor_execute", count)
    try:
        found = queries.get_product("detailed")
        shown = (found.category.name, [image.url for image in found.images],
                 [available_units(variant) for variant in queries.active_variants(found)])
    finally:
        event.remove(db.engine, "before_cursor_execute", count)

    # then no relation was loaded lazily afterwards
    assert statements.count("SELECT") == 3, statements
    assert len(shown[1]) == 2 and shown[2] == [4, 0, 9]
