"""Catalog write services: slugs, SKUs, attributes, price range, inventory rows, bulk flags."""

from __future__ import annotations

from decimal import Decimal

import pytest
from sqlalchemy import select

from ecom.actor import Actor
from ecom.audit.models import AuditLog
from ecom.catalog import services
from ecom.errors import DuplicateError, ValidationFailed
from ecom.inventory.models import Inventory
from tests.factories import ProductFactory, VariantFactory

ACTOR = Actor("merch@shop.test")


@pytest.mark.parametrize(("name", "slug"), [
    ("Crème Brûlée!", "creme-brulee"), ("  Two  Words ", "two-words"), ("ÄÖÜ 42", "aou-42"), ("!!!", ""),
])
def test_slugify(name, slug):
    assert services.slugify(name) == slug


def test_slugs_are_generated_unique(db):
    first = services.create_category(name="Garden")
    second = services.create_category(name="Garden")
    third = services.create_category(name="Garden!")
    assert [first.slug, second.slug, third.slug] == ["garden", "garden-2", "garden-3"]


def test_a_name_without_letters_still_gets_a_slug(db):
    assert services.create_product(name="!!!", base_price="1.00").slug == "item"


def test_an_explicit_slug_must_be_well_formed_and_free(db):
    services.create_product(name="A", slug="taken", base_price="1")
    with pytest.raises(DuplicateError):
        services.create_product(name="B", slug="taken", base_price="1")
    with pytest.raises(ValidationFailed, match="slug"):
        services.create_product(name="C", slug="Not A Slug", base_price="1")


def test_name_and_price_are_checked(db):
    with pytest.raises(ValidationFailed, match="name is required"):
        services.create_category(name="  ")
    with pytest.raises(ValidationFailed, match="must not be negative"):
        services.create_product(name="X", base_price="-1")


@pytest.mark.parametrize("attributes", ['{"size": "M"}', {"size": "M"}, {"n": 1, "flag": True}, "", None])
def test_valid_attributes(attributes):
    assert isinstance(services.validate_attributes(attributes), dict)


@pytest.mark.parametrize("attributes", ["[1]", "{bad json", '"text"', {"nested": {"a": 1}}, {"list": [1]}])
def test_invalid_attributes(attributes):
    with pytest.raises(ValidationFailed):
        services.validate_attributes(attributes)


def test_variants_get_inventory_and_keep_the_price_range(db):
    product = services.create_product(name="Lamp", base_price="10")
    assert (product.min_price, product.max_price) == (None, None)
    cheap = services.add_variant(product, sku="LAMP-S", price="10.00", actor=ACTOR)
    services.add_variant(product, sku="LAMP-L", price="25.50", attributes='{"size": "L"}')
    assert (product.min_price, product.max_price) == (Decimal("10.00"), Decimal("25.50"))
    assert db.session.scalar(select(Inventory).where(Inventory.variant_id == cheap.id)).quantity == 0

    services.update_variant(cheap, price="12.00", actor=ACTOR)
    assert product.min_price == Decimal("12.00")
    services.update_variant(cheap, is_active=False)
    assert (product.min_price, product.max_price) == (Decimal("25.50"), Decimal("25.50"))
    services.delete_variant(product.variants[-1], actor=ACTOR)
    assert (product.min_price, product.max_price) == (None, None)
    actions = db.session.scalars(select(AuditLog.action).where(AuditLog.entity == "variants")
                                 .order_by(AuditLog.id)).all()
    assert actions == ["create", "update", "delete"]


def test_skus_are_unique(db):
    VariantFactory(sku="SKU-1")
    product = ProductFactory()
    with pytest.raises(DuplicateError, match="SKU-1"):
        services.add_variant(product, sku=" SKU-1 ", price="1")
    with pytest.raises(ValidationFailed, match="SKU is required"):
        services.add_variant(product, sku="  ", price="1")


def test_two_new_variants_of_one_product_may_not_share_a_sku(db):
    from ecom.catalog.models import Product, Variant

    product = Product(name="Twin", base_price=Decimal("1"))
    product.variants = [Variant(sku="TWIN", name="a", price=Decimal("1")),
                        Variant(sku="TWIN", name="b", price=Decimal("1"))]
    with pytest.raises(DuplicateError, match="appears twice"):
        services.prepare_product(product)


def test_bulk_flags_change_only_what_differs_and_audit_it(db):
    on, off = ProductFactory(is_active=True), ProductFactory(is_active=False)
    assert services.set_products_active([on.id, off.id], True, actor=ACTOR) == 1
    db.session.refresh(off)
    assert off.is_active is True
    assert services.set_products_featured([on.id], True, actor=ACTOR) == 1
    entries = db.session.scalars(select(AuditLog).where(AuditLog.entity == "products")
                                 .order_by(AuditLog.id)).all()
    assert [(e.entity_id, list(e.changes)) for e in entries] == [(str(off.id), ["is_active"]),
                                                                 (str(on.id), ["featured"])]


def test_images_replace_with_the_first_primary(db):
    product = ProductFactory()
    images = services.set_product_images(product, ["https://a/1.jpg", " ", "/static/2.jpg"])
    assert [(i.url, i.is_primary) for i in images] == [("https://a/1.jpg", True), ("/static/2.jpg", False)]
    with pytest.raises(ValidationFailed):
        services.set_product_images(product, ["javascript:alert(1)"])
