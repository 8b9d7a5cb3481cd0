"""Catalog read queries and reviews at the service level."""

from __future__ import annotations

from decimal import Decimal

import pytest

from ecom.actor import SYSTEM
from ecom.catalog import queries, reviews
from ecom.errors import DuplicateError, NotFound, ValidationFailed
from ecom.inventory.models import available_units
from tests.factories import CategoryFactory, InventoryFactory, ProductFactory, UserFactory, VariantFactory


def test_subcategories_at_any_depth_count_towards_their_ancestors(db):
    root = CategoryFactory(slug="root")
    child = CategoryFactory(slug="child", parent=root)
    grandchild = CategoryFactory(slug="grandchild", parent=child)
    ProductFactory(category=grandchild)
    ProductFactory(category=child)
    ProductFactory(category=root, is_active=False)

    counts = {category.slug: count for category, count in queries.list_categories()}

    assert counts["root"] == 2 and counts["child"] == 2 and counts["grandchild"] == 1
    assert queries.category_ids_with_descendants(root) == {root.id, child.id, grandchild.id}


def test_a_parent_cycle_does_not_loop_forever(db):
    first = CategoryFactory()
    second = CategoryFactory(parent=first)
    db.session.flush()
    first.parent_id = second.id
    db.session.flush()

    assert queries.category_ids_with_descendants(first) == {first.id, second.id}


def test_get_category_unknown_is_not_found(db):
    with pytest.raises(NotFound):
        queries.get_category("missing")


def test_available_is_never_negative(db):
    variant = VariantFactory()
    InventoryFactory(variant=variant, quantity=2, reserved=2)

    assert available_units(variant) == 0
    assert not queries.product_in_stock(variant.product)


def test_price_filters_fall_back_to_base_price_when_denormalised_prices_are_missing(db):
    product = ProductFactory(base_price=Decimal("12.00"), min_price=None, max_price=None)

    filters = queries.ProductFilters(min_price=Decimal("11"), max_price=Decimal("13"))

    found, total = queries.list_products(filters, page=1, per_page=10)

    assert total == 1 and found == [product]
    assert queries.price_range(product) == (Decimal("12.00"), Decimal("12.00"))


def test_inactive_products_are_invisible(db):
    product = ProductFactory(is_active=False)

    with pytest.raises(NotFound):
        queries.get_product(product.slug)
    assert queries.list_products(queries.ProductFilters(), page=1, per_page=10) == ([], 0)


def test_create_review_recomputes_the_rating_and_hiding_removes_it(db):
    product = ProductFactory()
    five = reviews.create_review(product, UserFactory(), rating=5)
    reviews.create_review(product, UserFactory(), rating=2)

    assert (product.rating_average, product.rating_count) == (Decimal("3.50"), 2)
    reviews.set_review_hidden(five, True, actor=SYSTEM)
    assert (product.rating_average, product.rating_count) == (Decimal("2.00"), 1)
    reviews.set_review_hidden(five, False, actor=SYSTEM)
    assert (product.rating_average, product.rating_count) == (Decimal("3.50"), 2)


def test_rating_average_rounds_to_two_places(db):
    product = ProductFactory()
    for rating in (5, 4, 4):
        reviews.create_review(product, UserFactory(), rating=rating)

    assert product.rating_average == Decimal("4.33")


def test_one_review_per_user_and_product(db):
    product, user = ProductFactory(), UserFactory()
    reviews.create_review(product, user, rating=4)

    with pytest.raises(DuplicateError):
        reviews.create_review(product, user, rating=5)


@pytest.mark.parametrize("rating", [0, 6])
def test_rating_outside_1_to_5_is_refused(db, rating):
    with pytest.raises(ValidationFailed):
        reviews.create_review(ProductFactory(), UserFactory(), rating=rating)


def test_get_review_unknown_is_not_found(db):
    with pytest.raises(NotFound):
        reviews.get_review(123456)
