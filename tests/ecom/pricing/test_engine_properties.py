"""Property-based: for random carts, rates, methods and promotions, a quote always adds up."""

from __future__ import annotations

from decimal import Decimal
from types import SimpleNamespace

from hypothesis import assume, given, settings
from hypothesis import strategies as st

from ecom.pricing.engine import (
    LineInput,
    MethodRule,
    NotDeliverable,
    PromotionRule,
    TaxRule,
    TaxTable,
    VoucherRefused,
    compute_quote,
    spread,
)
from ecom.pricing.shares import line_paid, refundable_share, shipping_paid

CENT = Decimal("0.01")
cents = st.integers(min_value=0, max_value=200_000).map(lambda n: Decimal(n) * CENT)
rates = st.integers(min_value=0, max_value=3000).map(lambda n: Decimal(n) / 10_000)

lines = st.lists(
    st.builds(
        LineInput,
        sku=st.text(alphabet="ABC", min_size=1, max_size=3),
        quantity=st.integers(min_value=1, max_value=99),
        unit_price=cents,
        product_id=st.integers(min_value=1, max_value=5),
        category_id=st.integers(min_value=1, max_value=3),
        tax_class_id=st.sampled_from([None, 1, 2, 3]),
        weight=st.integers(min_value=0, max_value=3000).map(lambda g: Decimal(g) / 1000),
    ),
    min_size=1, max_size=6,
)

tables = st.builds(
    lambda standard, reduced, zero: TaxTable(by_class={1: TaxRule(standard, "Standard"),
                                                       2: TaxRule(reduced, "Reduced"),
                                                       3: TaxRule(zero, "Zero")}, standard_class_id=1),
    rates, rates, st.just(Decimal(0)))

methods = st.lists(
    st.builds(
        lambda i, kind, price, free_over, taxed: MethodRule(
            code=f"m{i}", name=f"Method {i}", kind=kind, price=price, free_over=free_over,
            weight_brackets=((Decimal("1"), price), (Decimal("50"), price + Decimal("5.00")),
                             (Decimal("500"), price + Decimal("20.00"))),
            tax_shipping=taxed),
        st.integers(0, 1000), st.sampled_from(["flat", "weight"]), cents,
        st.none() | cents, st.booleans()),
    min_size=1, max_size=3, unique_by=lambda m: m.code)

promotions = st.builds(
    lambda pid, kind, value, scope, ids, minimum: PromotionRule(
        id=pid, name=f"P{pid}", kind=kind,
        value=min(value, Decimal(100)) if kind == "percent" else value,
        scope=scope, category_ids=frozenset(ids), product_ids=frozenset(ids), min_subtotal=minimum),
    st.integers(1, 50), st.sampled_from(["percent", "fixed", "free_shipping"]), cents,
    st.sampled_from(["all", "categories", "products"]), st.sets(st.integers(1, 5), max_size=3),
    st.none() | cents)


def quote_of(cart, taxes, offered, sales, voucher, include_tax):
    try:
        return compute_quote(cart, taxes=taxes, methods=offered, sales=sales, voucher=voucher,
                             prices_include_tax=include_tax)
    except (VoucherRefused, NotDeliverable):  # a refusal is tested elsewhere; here, the sums
        assume(False)


def is_cents(value: Decimal) -> bool:
    return value == value.quantize(CENT)


@settings(max_examples=150, deadline=None)
@given(lines, tables, methods, st.lists(promotions, max_size=3, unique_by=lambda p: p.id),
       st.none() | promotions.map(lambda p: PromotionRule(**{**p.__dict__, "id": 999, "code": "CODE"})),
       st.booleans())
def test_the_parts_add_up_exactly(cart, taxes, offered, sales, voucher, include_tax):
    quote = quote_of(cart, taxes, offered, sales, voucher, include_tax)

    assert quote.subtotal == sum(line.line_total for line in quote.lines)
    assert quote.discount_total == sum(line.discount for line in quote.lines)
    assert quote.tax_total == sum(line.tax for line in quote.lines) + quote.shipping_tax
    taxes_added = Decimal(0) if include_tax else quote.tax_total
    assert quote.total == quote.subtotal - quote.discount_total + quote.shipping_cost + taxes_added
    for line in quote.lines:
        assert Decimal(0) <= line.discount <= line.line_total  # no line below zero
        assert line.tax >= 0
        assert all(is_cents(v) for v in (line.line_total, line.discount, line.tax))
    assert all(is_cents(v) for v in (quote.subtotal, quote.total, quote.shipping_cost, quote.shipping_tax))
    assert quote.total >= 0


@settings(max_examples=100, deadline=None)
@given(lines, tables, methods, st.lists(promotions, max_size=2, unique_by=lambda p: p.id),
       st.booleans(), st.data())
def test_line_refund_shares_add_up_to_the_order_total(cart, taxes, offered, sales, include_tax, data):
    quote = quote_of(cart, taxes, offered, sales, None, include_tax)
    order = SimpleNamespace(prices_include_tax=include_tax, shipping_cost=quote.shipping_cost,
                            shipping_tax=quote.shipping_tax)
    items = [SimpleNamespace(sku=line.sku, quantity=line.quantity, line_total=line.line_total,
                             discount=line.discount, tax=line.tax) for line in quote.lines]

    assert sum(line_paid(order, item) for item in items) + shipping_paid(order) == quote.total
    # Returned a few units at a time, a line refunds exactly what was paid for it.
    for item in items:
        refunded, back = Decimal(0), 0
        while back < item.quantity:
            units = data.draw(st.integers(min_value=1, max_value=item.quantity - back))
            share = refundable_share(order, item, units, already=back)
            assert share >= 0
            refunded += share
            back += units
        assert refunded == line_paid(order, item)


@settings(max_examples=100, deadline=None)
@given(lines, tables, tables, methods, st.lists(promotions, max_size=2, unique_by=lambda p: p.id))
def test_with_prices_including_tax_the_customer_pays_the_shown_price_whatever_the_rate(
        cart, taxes, other_taxes, offered, sales):
    one = quote_of(cart, taxes, offered, sales, None, True)
    other = quote_of(cart, other_taxes, offered, sales, None, True)

    assert one.total == other.total == one.subtotal - one.discount_total + one.shipping_cost


@settings(max_examples=100, deadline=None)
@given(lines, methods, st.lists(promotions, max_size=2, unique_by=lambda p: p.id))
def test_without_tax_both_modes_charge_the_same(cart, offered, sales):
    untaxed = TaxTable()
    net = quote_of(cart, untaxed, offered, sales, None, False)
    gross = quote_of(cart, untaxed, offered, sales, None, True)

    assert net.total == gross.total
    assert net.tax_total == gross.tax_total == 0


@settings(max_examples=150, deadline=None)
@given(cents, st.lists(cents, min_size=1, max_size=8))
def test_a_spread_amount_adds_up_and_never_exceeds_a_line(amount, weights):
    assume(amount <= sum(weights))
    shares = spread(amount, weights)

    assert sum(shares) == amount
    assert all(Decimal(0) <= share <= weight for share, weight in zip(shares, weights, strict=True))


@settings(max_examples=100, deadline=None)
@given(lines, tables, methods, cents)
def test_a_fixed_voucher_takes_its_value_capped_by_the_eligible_subtotal(cart, taxes, offered, value):
    voucher = PromotionRule(id=1, name="Ten off", kind="fixed", value=value, code="TEN")
    quote = quote_of(cart, taxes, offered, [], voucher, False)

    assert quote.discount_total == min(value, quote.subtotal)
    assert quote.voucher.discount == quote.discount_total
