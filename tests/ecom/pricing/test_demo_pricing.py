"""The demo shop prices like a real one: US and EU rules, express and pickup, a sale, a voucher."""

from __future__ import annotations

from decimal import Decimal

import pytest
from sqlalchemy import select

from ecom.catalog.models import Category, Product
from ecom.commerce.cart import variant_line
from ecom.demo import seed_demo
from ecom.pricing.demo import DEMO_VOUCHER
from ecom.pricing.models import Promotion, ShippingMethod
from ecom.pricing.quote import Destination, quote_lines

pytestmark = pytest.mark.slow


def _first_variant(db, slug: str):
    category = db.session.scalar(select(Category).where(Category.slug == slug))
    product = db.session.scalar(
        select(Product).where(Product.category_id == category.id).order_by(Product.id)
    )
    return product.variants[0]


def test_the_demo_shop_prices_us_and_eu_carts_with_a_sale_and_a_voucher(db):
    seed_demo()
    seed_demo()  # idempotent: nothing twice
    shoes, jacket, book = (_first_variant(db, slug) for slug in ("shoes", "jackets", "books"))

    us = quote_lines([variant_line(shoes, 2)], Destination("US"))
    assert [m.code for m in us.shipping_methods][:2] == ["standard", "express"]
    assert sum(1 for m in us.shipping_methods if m.kind == "pickup") == 5  # one per store
    assert us.lines[0].tax_rate == Decimal("0.08")

    germany = quote_lines([variant_line(book, 1), variant_line(shoes, 1)], Destination("DE"))
    assert [line.tax_rate for line in germany.lines] == [Decimal("0.07"), Decimal("0.19")]
    assert germany.shipping_tax > 0  # the European zone taxes shipping

    sale = quote_lines([variant_line(jacket, 1)], Destination("US"))
    assert sale.discount_total == (jacket.price * Decimal("0.20")).quantize(Decimal("0.01"))

    voucher = quote_lines([variant_line(shoes, 3)], Destination("US"), voucher_code=DEMO_VOUCHER.lower())
    assert voucher.voucher.code == DEMO_VOUCHER and voucher.discount_total > 0
    assert db.session.scalar(select(Promotion.id).where(Promotion.code == DEMO_VOUCHER)) is not None
    assert db.session.query(ShippingMethod).filter_by(code="express").count() == 1
