"""The rules the one pricing function reads from the database: most specific rate, zones,
pickups, promotions in their window, and the flat settings of a shop with no rules."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest

from ecom.commerce.cart import variant_line
from ecom.db import utcnow
from ecom.errors import ValidationFailed
from ecom.pricing.engine import EXPIRED, NOT_STARTED, UNKNOWN, USED_UP, NotDeliverable, VoucherRefused
from ecom.pricing.quote import Destination, quote_lines
from tests.factories import StoreFactory, stocked_variant
from tests.pricing_support import method, promotion, tax_class, tax_rate, us_shop, zone


@pytest.fixture
def cart(db):
    return [variant_line(stocked_variant(price="100.00"), 1)]


def test_a_shop_without_rules_prices_with_the_flat_settings(cart):
    quote = quote_lines(cart, Destination("FR"))
    assert (quote.tax_total, quote.shipping_cost, quote.shipping_method.code) == (
        Decimal("8.00"),
        Decimal("0.00"),
        "standard",
    )


def test_the_most_specific_rate_wins(cart):
    us_shop()
    tax_rate("US", "0.0725", region="CA", name="California")
    assert quote_lines(cart, Destination("US", "CA")).tax_total == Decimal("7.25")
    assert quote_lines(cart, Destination("US", "ca")).lines[0].tax_rate == Decimal("0.0725")
    assert quote_lines(cart, Destination("US", "NY")).tax_total == Decimal("8.00")
    assert quote_lines(cart, Destination("US")).lines[0].tax_name == "Sales tax"


def test_a_product_of_another_class_takes_its_class_rate(db, cart):
    us_shop()
    variant = stocked_variant(price="100.00")
    variant.product.tax_class = tax_class("zero", "Zero rated")
    tax_rate("US", "0", cls="zero")
    quote = quote_lines([variant_line(variant, 1)], Destination("US"))
    assert quote.tax_total == 0


def test_a_destination_with_no_rate_pays_no_tax_once_rates_exist(cart):
    us_shop()
    method(zone("Canada", ["CA"]), "ca-post", "9.00")
    quote = quote_lines(cart, Destination("CA"))
    assert (quote.tax_total, quote.shipping_cost) == (Decimal("0.00"), Decimal("9.00"))


def test_an_unknown_country_and_one_in_no_zone_are_refused(cart):
    us_shop()
    with pytest.raises(ValidationFailed) as unknown:
        quote_lines(cart, Destination("ZZ"))
    assert "country" in unknown.value.errors
    with pytest.raises(NotDeliverable) as nowhere:
        quote_lines(cart, Destination("FR"))
    assert "country" in nowhere.value.errors
    estimate = quote_lines(cart, Destination("FR"), estimate=True)
    assert estimate.shipping_method is None and estimate.total == Decimal("100.00")


def test_pickups_are_offered_everywhere_and_taxed_at_the_store(db, cart):
    us_shop()
    zone("Europe", ["DE"], tax_shipping=True)
    tax_rate("DE", "0.19")
    berlin = StoreFactory(name="Berlin", country="DE")
    method(None, "pickup-berlin", kind="pickup", store=berlin, name="Pick up in Berlin")
    quote = quote_lines(cart, Destination("US"))
    assert [m.code for m in quote.shipping_methods] == ["standard", "express", "pickup-berlin"]
    assert quote.shipping_method.code == "standard"
    pickup = quote_lines(cart, Destination("US"), shipping_method="pickup-berlin")
    assert (pickup.shipping_cost, pickup.tax_total, pickup.shipping_method.store_name) == (
        Decimal("0.00"),
        Decimal("19.00"),
        "Berlin",
    )


def test_inactive_methods_are_not_offered(cart):
    us = zone("United States", ["US"])
    method(us, "standard", "5.99", is_active=False)
    method(us, "express", "14.99")
    assert [m.code for m in quote_lines(cart, Destination("US")).shipping_methods] == ["express"]


def test_sales_apply_only_within_their_window(cart):
    us_shop()
    now = utcnow()
    promotion("Past", value="50", ends_at=now - timedelta(days=1))
    promotion("Future", value="40", starts_at=now + timedelta(days=1))
    promotion("Inactive", value="30", is_active=False)
    promotion("Running", value="10", starts_at=now - timedelta(days=1), ends_at=now + timedelta(days=1))
    assert quote_lines(cart, Destination("US")).discount_total == Decimal("10.00")


@pytest.mark.parametrize(
    ("fields", "reason"),
    [
        ({"is_active": False}, UNKNOWN),
        ({"starts_at": utcnow() + timedelta(days=1)}, NOT_STARTED),
        ({"ends_at": utcnow() - timedelta(seconds=1)}, EXPIRED),
        ({"usage_limit": 0}, USED_UP),
    ],
)
def test_a_voucher_is_refused_for_its_reason(cart, fields, reason):
    us_shop()
    promotion("Ten", code="TEN", **fields)
    with pytest.raises(VoucherRefused) as refused:
        quote_lines(cart, Destination("US"), voucher_code="ten")
    assert refused.value.reason == reason and "voucher_code" in refused.value.errors


def test_codes_are_case_insensitive(cart):
    us_shop()
    promotion("Ten", code="TEN")
    assert quote_lines(cart, Destination("US"), voucher_code=" tEn ").voucher.code == "TEN"
    with pytest.raises(VoucherRefused):
        quote_lines(cart, Destination("US"), voucher_code="ELEVEN")
