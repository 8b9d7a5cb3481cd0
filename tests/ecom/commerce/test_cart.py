"""Cart services: lines, stock limits, totals, guest carts and merging."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

import pytest

from ecom.commerce import cart as carts
from ecom.commerce.models import Cart
from ecom.errors import Conflict, NotFound, OutOfStock
from ecom.pricing.engine import LineInput, MethodRule, TaxRule, TaxTable, compute_quote
from ecom.pricing.quote import Destination, quote_lines
from tests.factories import UserFactory, stocked_variant

LEGACY = TaxTable(fallback=TaxRule(Decimal("0.08"), "Tax"))
FLAT = [MethodRule(code="standard", name="Standard", kind="flat", price=Decimal("5.99"),
                   free_over=Decimal("50.00"))]


@dataclass
class Line:
    price: Decimal
    quantity: int


def flat_quote(lines, taxes=LEGACY):
    """A shop's prices before it sets up zones and rates: the flat settings."""
    return compute_quote([LineInput(sku=f"S{i}", quantity=line.quantity, unit_price=line.price)
                          for i, line in enumerate(lines)], taxes=taxes, methods=FLAT)


@pytest.mark.parametrize(
    ("lines", "subtotal", "tax", "shipping", "total"),
    [
        ([], "0.00", "0.00", "0.00", "0.00"),
        ([Line(Decimal("10.00"), 1)], "10.00", "0.80", "5.99", "16.79"),
        ([Line(Decimal("0.06"), 10)], "0.60", "0.05", "5.99", "6.64"),  # 0.048 rounds half up
        ([Line(Decimal("49.99"), 1)], "49.99", "4.00", "5.99", "59.98"),
        ([Line(Decimal("25.00"), 2)], "50.00", "4.00", "0.00", "54.00"),
        ([Line(Decimal("6.25"), 1)], "6.25", "0.50", "5.99", "12.74"),  # 0.5 exactly
        ([Line(Decimal("0.06"), 1)], "0.06", "0.00", "5.99", "6.05"),
    ],
)
def test_flat_settings_price_a_shop_without_rules(lines, subtotal, tax, shipping, total):
    quote = flat_quote(lines)

    assert (quote.subtotal, quote.tax_total, quote.shipping_cost, quote.total) == (
        Decimal(subtotal), Decimal(tax), Decimal(shipping), Decimal(total)
    )
    assert quote.item_count == sum(line.quantity for line in lines)


def test_tax_rounds_half_up_not_to_even():
    # 0.25 * 0.1 = 0.025 exactly: banker's rounding would give 0.02.
    quote = flat_quote([Line(Decimal("0.25"), 1)], taxes=TaxTable(fallback=TaxRule(Decimal("0.1"), "Tax")))

    assert quote.tax_total == Decimal("0.03")


def test_a_shop_without_rules_prices_with_the_app_config(app, db):
    variant = stocked_variant(price="10.00")
    quote = quote_lines([carts.variant_line(variant, 1)], Destination("GB"))

    assert (quote.tax_total, quote.shipping_cost) == (Decimal("0.80"), Decimal("5.99"))


def test_guest_carts_get_distinct_unguessable_tokens(db):
    first, second = carts.create_guest_cart(), carts.create_guest_cart()

    assert first.token != second.token
    assert len(first.token) >= 40
    assert carts.get_guest_cart(first.token) is first


def test_unknown_token_is_not_found(db):
    with pytest.raises(NotFound):
        carts.get_or_create_cart(guest_token="missing")


def test_a_user_has_one_cart(db):
    user = UserFactory()

    assert carts.get_or_create_user_cart(user) is carts.get_or_create_user_cart(user)


def test_add_item_keeps_the_added_price_but_totals_use_the_current_one(db):
    variant = stocked_variant(quantity=5, price="9.99")
    cart = carts.create_guest_cart()

    line = carts.add_item(cart, variant.sku, 2)
    variant.price = Decimal("19.99")

    assert line.price == Decimal("9.99")
    assert carts.price_changed(line)
    assert carts.price_cart(cart.items, Destination("US")).subtotal == Decimal("39.98")


def test_adding_beyond_available_raises_out_of_stock_with_the_amount(db):
    variant = stocked_variant(quantity=3)
    variant.inventory.reserved = 1
    cart = carts.create_guest_cart()
    carts.add_item(cart, variant.sku, 2)

    with pytest.raises(OutOfStock) as caught:
        carts.add_item(cart, variant.sku, 1)

    assert caught.value.shortages == {variant.sku: 2}
    assert cart.items[0].quantity == 2


def test_line_quantity_is_capped_at_99(db):
    variant = stocked_variant(quantity=500)
    cart = carts.create_guest_cart()
    line = carts.add_item(cart, variant.sku, 99)

    # A valid quantity clashing with what the line holds: 409, not 422.
    with pytest.raises(Conflict, match="at most 99"):
        carts.add_item(cart, variant.sku, 1)
    assert line.quantity == 99


def test_a_variant_without_inventory_is_out_of_stock(db):
    from tests.factories import VariantFactory

    variant = VariantFactory()

    with pytest.raises(OutOfStock):
        carts.add_item(carts.create_guest_cart(), variant.sku, 1)


def test_update_and_remove(db):
    variant = stocked_variant(quantity=5)
    cart = carts.create_guest_cart()
    line = carts.add_item(cart, variant.sku, 1)

    carts.update_item(cart, line.id, 4)
    assert line.quantity == 4
    with pytest.raises(OutOfStock):
        carts.update_item(cart, line.id, 6)
    assert carts.update_item(cart, line.id, 0) is None
    assert cart.items == []


def test_lowering_a_quantity_is_allowed_even_after_stock_fell(db):
    variant = stocked_variant(quantity=5)
    cart = carts.create_guest_cart()
    line = carts.add_item(cart, variant.sku, 5)
    variant.inventory.quantity = 1

    carts.update_item(cart, line.id, 3)

    assert line.quantity == 3


def test_another_carts_line_is_not_found(db):
    variant = stocked_variant()
    theirs = carts.create_guest_cart()
    line = carts.add_item(theirs, variant.sku, 1)

    with pytest.raises(NotFound):
        carts.remove_item(carts.create_guest_cart(), line.id)


def test_merge_adds_quantities_capped_by_stock_and_deletes_the_guest_cart(db):
    user = UserFactory()
    shared = stocked_variant(quantity=5)
    only_guest = stocked_variant(quantity=2)
    sold_out = stocked_variant(quantity=1)
    mine = carts.get_or_create_user_cart(user)
    carts.add_item(mine, shared.sku, 3)
    guest = carts.create_guest_cart()
    carts.add_item(guest, shared.sku, 4)
    carts.add_item(guest, only_guest.sku, 2)
    carts.add_item(guest, sold_out.sku, 1)
    sold_out.inventory.quantity = 0
    token = guest.token

    merged = carts.merge_guest_cart(token, user)

    assert merged is mine
    assert {line.sku: line.quantity for line in merged.items} == {shared.sku: 5, only_guest.sku: 2}
    assert db.session.query(Cart).filter_by(token=token).count() == 0


def test_merge_with_an_unknown_token_changes_nothing(db):
    user = UserFactory()

    cart = carts.merge_guest_cart("nope", user)

    assert cart.items == []


def test_clear_cart(db):
    variant = stocked_variant()
    cart = carts.create_guest_cart()
    carts.add_item(cart, variant.sku, 1)

    carts.clear_cart(cart)

    assert cart.items == []
    assert carts.price_cart(cart.items, Destination("US")).total == Decimal("0.00")
