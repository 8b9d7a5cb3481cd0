"""Worked examples, every figure computed by hand (in the comments)."""

from __future__ import annotations

from decimal import Decimal

import pytest

from ecom.pricing.engine import (
    BELOW_MINIMUM,
    NOT_APPLICABLE,
    LineInput,
    MethodRule,
    NotDeliverable,
    PromotionRule,
    TaxRule,
    TaxTable,
    VoucherRefused,
    compute_quote,
)

US = TaxTable(by_class={1: TaxRule(Decimal("0.08"), "Sales tax")}, standard_class_id=1)
DE = TaxTable(
    by_class={1: TaxRule(Decimal("0.19"), "MwSt"), 2: TaxRule(Decimal("0.07"), "MwSt ermäßigt")},
    standard_class_id=1,
)
STANDARD = MethodRule("standard", "Standard", "flat", Decimal("5.99"), free_over=Decimal("50.00"))
EXPRESS = MethodRule("express", "Express", "flat", Decimal("14.99"))
EU_STANDARD = MethodRule("eu-standard", "EU Standard", "flat", Decimal("4.90"), tax_shipping=True)
PARCEL = MethodRule(
    "parcel",
    "Parcel",
    "weight",
    Decimal("0"),
    weight_brackets=((Decimal("1"), Decimal("4.99")), (Decimal("5"), Decimal("9.99"))),
)


def line(
    price: str,
    quantity: int = 1,
    *,
    category: int = 1,
    product: int = 1,
    tax_class=None,
    weight: str | None = None,
) -> LineInput:
    return LineInput(
        sku=f"SKU-{product}-{price}",
        quantity=quantity,
        unit_price=Decimal(price),
        product_id=product,
        category_id=category,
        tax_class_id=tax_class,
        weight=Decimal(weight) if weight else None,
    )


def figures(quote) -> tuple:
    return (quote.subtotal, quote.discount_total, quote.shipping_cost, quote.tax_total, quote.total)


def test_us_eight_percent_net():
    # 25.00 * 0.08 = 2.00; 9.99 * 0.08 = 0.7992 -> 0.80; shipping 5.99 (34.99 < 50)
    quote = compute_quote([line("12.50", 2), line("9.99", product=2)], taxes=US, methods=[STANDARD, EXPRESS])

    assert figures(quote) == (
        Decimal("34.99"),
        Decimal("0"),
        Decimal("5.99"),
        Decimal("2.80"),
        Decimal("43.78"),
    )
    assert [item.tax for item in quote.lines] == [Decimal("2.00"), Decimal("0.80")]
    assert quote.shipping_method.code == "standard"  # the cheapest by default
    assert [m.code for m in quote.shipping_methods] == ["standard", "express"]


def test_express_when_asked():
    quote = compute_quote([line("60.00")], taxes=US, methods=[STANDARD, EXPRESS], shipping_method="express")
    # 60.00 + 14.99 + 4.80 (tax on the goods only: the US zone does not tax shipping)
    assert figures(quote) == (
        Decimal("60.00"),
        Decimal("0"),
        Decimal("14.99"),
        Decimal("4.80"),
        Decimal("79.79"),
    )


def test_a_german_price_includes_19_percent():
    # 119.00 / 1.19 = 100.00: tax 19.00. Shipping 4.90 taxed in the zone: 4.90 / 1.19 = 4.1176
    # -> 4.12, tax 0.78. The customer pays the shown prices: 119.00 + 4.90.
    quote = compute_quote([line("119.00")], taxes=DE, methods=[EU_STANDARD], prices_include_tax=True)

    assert figures(quote) == (
        Decimal("119.00"),
        Decimal("0"),
        Decimal("4.90"),
        Decimal("19.78"),
        Decimal("123.90"),
    )
    assert quote.lines[0].tax == Decimal("19.00") and quote.shipping_tax == Decimal("0.78")


def test_a_reduced_rate_class():
    # A book at 20.00 incl. 7 %: 20 / 1.07 = 18.6916 -> 18.69, tax 1.31; 9.99 incl. 19 %:
    # 9.99 / 1.19 = 8.3950 -> 8.39, tax 1.60. Shipping 4.90 -> tax 0.78.
    quote = compute_quote(
        [line("20.00", tax_class=2), line("9.99", product=2)],
        taxes=DE,
        methods=[EU_STANDARD],
        prices_include_tax=True,
    )

    assert [(item.tax, item.tax_rate) for item in quote.lines] == [
        (Decimal("1.31"), Decimal("0.07")),
        (Decimal("1.60"), Decimal("0.19")),
    ]
    assert figures(quote) == (
        Decimal("29.99"),
        Decimal("0"),
        Decimal("4.90"),
        Decimal("3.69"),
        Decimal("34.89"),
    )


def test_no_rate_for_the_destination_is_no_tax():
    quote = compute_quote([line("10.00")], taxes=TaxTable(), methods=[STANDARD])
    assert quote.tax_total == 0 and quote.lines[0].tax_name == "No tax"


@pytest.mark.parametrize(("price", "shipping"), [("49.99", "5.99"), ("50.00", "0.00"), ("50.01", "0.00")])
def test_free_shipping_over_the_threshold(price, shipping):
    assert compute_quote([line(price)], taxes=US, methods=[STANDARD]).shipping_cost == Decimal(shipping)


def test_the_threshold_counts_the_merchandise_after_discounts():
    # 55.00 - 10 % = 49.50: under 50.00, so shipping is charged
    voucher = PromotionRule(1, "Ten", "percent", Decimal("10"), code="TEN")
    quote = compute_quote([line("55.00")], taxes=US, methods=[STANDARD], voucher=voucher)
    # tax: 49.50 * 0.08 = 3.96; total 55.00 - 5.50 + 5.99 + 3.96
    assert figures(quote) == (
        Decimal("55.00"),
        Decimal("5.50"),
        Decimal("5.99"),
        Decimal("3.96"),
        Decimal("59.45"),
    )


@pytest.mark.parametrize(
    ("weight", "quantity", "price"),
    [
        ("0.500", 2, "4.99"),  # 1.000 kg: the first bracket holds it (up to and including)
        ("0.500", 3, "9.99"),  # 1.500 kg
        ("2.500", 2, "9.99"),  # 5.000 kg
    ],
)
def test_weight_brackets(weight, quantity, price):
    quote = compute_quote([line("10.00", quantity, weight=weight)], taxes=US, methods=[PARCEL])
    assert quote.shipping_cost == Decimal(price)


def test_a_cart_heavier_than_every_bracket_cannot_go_by_weight():
    with pytest.raises(NotDeliverable):
        compute_quote([line("10.00", 3, weight="2.000")], taxes=US, methods=[PARCEL])
    quote = compute_quote([line("10.00", 3, weight="2.000")], taxes=US, methods=[PARCEL, EXPRESS])
    assert quote.shipping_method.code == "express"


def test_a_percent_voucher_is_worked_out_per_line():
    # 10 % of 33.33 = 3.333 -> 3.33; of 10.00 = 1.00
    voucher = PromotionRule(1, "Ten", "percent", Decimal("10"), code="TEN")
    quote = compute_quote(
        [line("33.33"), line("10.00", product=2)], taxes=US, methods=[STANDARD], voucher=voucher
    )
    assert [item.discount for item in quote.lines] == [Decimal("3.33"), Decimal("1.00")]
    assert quote.voucher.discount == quote.discount_total == Decimal("4.33")


def test_a_fixed_voucher_is_spread_in_proportion_with_the_cent_to_the_largest_line():
    fixed = PromotionRule(1, "Ten off", "fixed", Decimal("10.00"), code="TENOFF")
    # 30 : 10 -> 7.50 and 2.50
    quote = compute_quote(
        [line("30.00"), line("10.00", product=2)], taxes=US, methods=[STANDARD], voucher=fixed
    )
    assert [item.discount for item in quote.lines] == [Decimal("7.50"), Decimal("2.50")]
    # 10.00 over three lines of 10.00, 20.00, 10.00: 2.50, 5.00, 2.50
    # 10.00 over 10.00, 10.01, 10.00: 3.3322 -> 3.33, 3.3355 -> 3.33, 3.33; the cent left to 10.01
    quote = compute_quote(
        [line("10.00"), line("10.01", product=2), line("10.00", product=3)],
        taxes=US,
        methods=[STANDARD],
        voucher=fixed,
    )
    assert [item.discount for item in quote.lines] == [Decimal("3.33"), Decimal("3.34"), Decimal("3.33")]


def test_a_fixed_voucher_is_capped_by_the_eligible_subtotal():
    fixed = PromotionRule(1, "Fifty off", "fixed", Decimal("50.00"), code="FIFTY")
    quote = compute_quote([line("20.00")], taxes=US, methods=[STANDARD], voucher=fixed)
    # the goods are free, shipping and its (untaxed) cost remain
    assert figures(quote) == (
        Decimal("20.00"),
        Decimal("20.00"),
        Decimal("5.99"),
        Decimal("0.00"),
        Decimal("5.99"),
    )


def test_a_free_shipping_voucher():
    voucher = PromotionRule(1, "Ship free", "free_shipping", Decimal("0"), code="SHIPFREE")
    quote = compute_quote([line("20.00")], taxes=US, methods=[STANDARD], voucher=voucher)
    assert figures(quote) == (
        Decimal("20.00"),
        Decimal("0"),
        Decimal("0.00"),
        Decimal("1.60"),
        Decimal("21.60"),
    )
    assert quote.voucher.discount == Decimal("5.99")


def test_a_voucher_below_its_minimum_subtotal_is_refused():
    voucher = PromotionRule(1, "Big", "percent", Decimal("10"), code="BIG", min_subtotal=Decimal("50.00"))
    with pytest.raises(VoucherRefused) as refused:
        compute_quote([line("49.99")], taxes=US, methods=[STANDARD], voucher=voucher)
    assert refused.value.reason == BELOW_MINIMUM
    assert compute_quote(
        [line("50.00")], taxes=US, methods=[STANDARD], voucher=voucher
    ).discount_total == Decimal("5.00")


def test_a_category_voucher_takes_only_its_category():
    voucher = PromotionRule(
        1, "Shoes", "percent", Decimal("20"), scope="categories", category_ids=frozenset({1}), code="SHOES"
    )
    quote = compute_quote(
        [line("25.00", category=1), line("10.00", category=2, product=2)],
        taxes=US,
        methods=[STANDARD],
        voucher=voucher,
    )
    assert [item.discount for item in quote.lines] == [Decimal("5.00"), Decimal("0")]
    with pytest.raises(VoucherRefused) as refused:
        compute_quote([line("10.00", category=2)], taxes=US, methods=[STANDARD], voucher=voucher)
    assert refused.value.reason == NOT_APPLICABLE


def test_an_automatic_sale_plus_a_voucher():
    # The sale: 25 % off category 1 -> 40.00 - 10.00 = 30.00. The voucher: 5.00 off everything,
    # spread 30 : 10 -> 3.75 and 1.25. Tax: (40 - 13.75) * 0.08 = 2.10; (10 - 1.25) * 0.08 = 0.70.
    # The merchandise is 35.00 after discounts: shipping 5.99. 50.00 - 15.00 + 5.99 + 2.80 = 43.79
    sale = PromotionRule(
        7, "Shoe sale", "percent", Decimal("25"), scope="categories", category_ids=frozenset({1})
    )
    voucher = PromotionRule(8, "Five off", "fixed", Decimal("5.00"), code="FIVE")
    quote = compute_quote(
        [line("40.00", category=1), line("10.00", category=2, product=2)],
        taxes=US,
        methods=[STANDARD],
        sales=[sale],
        voucher=voucher,
    )
    assert [item.discount for item in quote.lines] == [Decimal("13.75"), Decimal("1.25")]
    assert figures(quote) == (
        Decimal("50.00"),
        Decimal("15.00"),
        Decimal("5.99"),
        Decimal("2.80"),
        Decimal("43.79"),
    )
    assert {(p.promotion_id, p.discount) for p in quote.promotions} == {
        (7, Decimal("10.00")),
        (8, Decimal("5.00")),
    }


def test_the_best_sale_wins_per_line():
    ten = PromotionRule(1, "Ten", "percent", Decimal("10"))
    fifteen = PromotionRule(
        2, "Fifteen", "percent", Decimal("15"), scope="products", product_ids=frozenset({2})
    )
    per_unit = PromotionRule(3, "Two off each", "fixed", Decimal("2.00"))
    quote = compute_quote(
        [line("10.00", 3), line("10.00", 1, product=2)],
        taxes=US,
        methods=[STANDARD],
        sales=[ten, fifteen, per_unit],
    )
    # line 1: 10 % = 3.00, 2.00 x 3 = 6.00 -> 6.00; line 2: 10 % 1.00, 15 % 1.50, 2.00 -> 2.00
    assert [item.discount for item in quote.lines] == [Decimal("6.00"), Decimal("2.00")]


def test_a_fixed_sale_never_takes_a_unit_below_zero():
    sale = PromotionRule(1, "Huge", "fixed", Decimal("99.00"))
    quote = compute_quote([line("5.00", 2)], taxes=US, methods=[STANDARD], sales=[sale])
    assert quote.lines[0].discount == Decimal("10.00") and quote.lines[0].tax == 0


def test_a_pickup_is_free_and_taxed_where_the_goods_are_handed_over():
    pickup = MethodRule(
        "pickup-1", "Pick up in Berlin", "pickup", Decimal("0"), store_id=1, store_name="Berlin"
    )
    quote = compute_quote(
        [line("119.00")],
        taxes=US,
        methods=[STANDARD, pickup],
        shipping_method="pickup-1",
        pickup_taxes={"pickup-1": DE},
    )
    assert (quote.shipping_cost, quote.tax_total) == (
        Decimal("0"),
        Decimal("22.61"),
    )  # 119.00 * 0.19 = 22.61 net


def test_no_zone_no_checkout_but_pickup_still_offered():
    pickup = MethodRule("pickup-1", "Pick up", "pickup", Decimal("0"), store_id=1)
    with pytest.raises(NotDeliverable) as refused:
        compute_quote([line("10.00")], taxes=US, methods=[pickup], deliverable=False)
    assert "country" in refused.value.errors
    quote = compute_quote(
        [line("10.00")], taxes=US, methods=[pickup], deliverable=False, shipping_method="pickup-1"
    )
    assert quote.shipping_method.kind == "pickup"
