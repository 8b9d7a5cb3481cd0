"""The arithmetic of a quote, free of the database: lines and rules in, a quote out.

``ecom.pricing.quote`` loads the rules that apply (a handful of queries) and calls
``compute_quote``; the property tests call it directly with generated rules.

The rules, in the order they are applied:

1. Each line's amount is ``unit_price * quantity`` (exact: prices are cents).
2. Automatic promotions (sales): every sale whose scope takes the line and whose
   ``min_subtotal`` the cart's subtotal reaches is a candidate; the line gets the best
   one. Percent: ``amount * value / 100``, half up; fixed: ``value`` off each unit, at
   most the unit price.
3. The voucher (at most one), on its eligible lines after the sales: percent is worked
   out per line (half up, never below zero); fixed is capped by the eligible amount and
   spread over the eligible lines in proportion to their amount, each share rounded
   down to the cent and the cents left over going to the largest line (then the next
   largest, never beyond a line's own amount), so the shares add up exactly and each
   line later refunds exactly its share.
   ``min_subtotal`` is compared with the subtotal after the sales.
4. Shipping: every method offered to the destination is priced for the cart (free at
   ``free_over`` of the merchandise after discounts; weight methods by bracket); the one
   asked for, else the cheapest that is not a pickup. A free-shipping promotion makes it 0.
5. Tax per line on its amount after discounts at its class's rate (the most specific
   rate of the destination); shipping taxed at the standard rate where the zone says so.
   Net prices: tax is added, half up. Prices including tax: the tax is the amount less
   the amount divided by (1 + rate), half up, and nothing is added.
6. ``total = subtotal - discount_total + shipping_cost + tax_total`` (net), or
   ``subtotal - discount_total + shipping_cost`` when prices include tax.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from decimal import ROUND_DOWN, Decimal

from ecom.db import CENT, money
from ecom.errors import ValidationFailed
from ecom.pricing.models import MethodKind, PromotionKind, PromotionScope

ZERO = Decimal("0.00")
HUNDRED = Decimal(100)


class VoucherRefused(ValidationFailed):
    """A voucher code that cannot be used on this cart; ``reason`` names why (one of REASONS)."""

    def __init__(self, reason: str, message: str):
        super().__init__(message, {"voucher_code": [message]})
        self.reason = reason


# Why a voucher is refused: every reason is a 422 with errors.voucher_code.
UNKNOWN, NOT_STARTED, EXPIRED, USED_UP, CUSTOMER_LIMIT, BELOW_MINIMUM, NOT_APPLICABLE = (
    "unknown", "not_started", "expired", "used_up", "customer_limit", "below_minimum", "not_applicable")


class NotDeliverable(ValidationFailed):
    """No shipping for this destination (or the method asked for is not offered to it)."""


# --- inputs ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class LineInput:
    """One line to price: a cart line or an order line."""

    sku: str
    quantity: int
    unit_price: Decimal
    product_id: int | None = None
    category_id: int | None = None
    tax_class_id: int | None = None  # None: the standard class
    compare_at_price: Decimal | None = None
    weight: Decimal | None = None  # kg per unit


@dataclass(frozen=True)
class TaxRule:
    rate: Decimal
    name: str


NO_TAX = TaxRule(Decimal("0"), "No tax")


@dataclass(frozen=True)
class TaxTable:
    """The rates of one destination by tax class id (already the most specific ones)."""

    by_class: Mapping[int, TaxRule] = field(default_factory=dict)
    # The standard class, which products without a class of their own belong to.
    standard_class_id: int | None = None
    # For a class the destination has no rate for: no tax, except in a shop without any rate
    # set up, where the legacy flat TAX_RATE applies to everything.
    fallback: TaxRule = NO_TAX

    def rule_for(self, tax_class_id: int | None) -> TaxRule:
        key = tax_class_id if tax_class_id is not None else self.standard_class_id
        return self.by_class.get(key, self.fallback) if key is not None else self.fallback


@dataclass(frozen=True)
class MethodRule:
    code: str
    name: str
    kind: str
    price: Decimal
    free_over: Decimal | None = None
    # ((up_to_kg, price), ...) ascending
    weight_brackets: tuple[tuple[Decimal, Decimal], ...] = ()
    min_days: int | None = None
    max_days: int | None = None
    store_id: int | None = None
    store_name: str | None = None
    tax_shipping: bool = False  # the zone's setting

    @property
    def is_pickup(self) -> bool:
        return self.kind == MethodKind.PICKUP


@dataclass(frozen=True)
class PromotionRule:
    id: int
    name: str
    kind: str
    value: Decimal
    scope: str = PromotionScope.ALL
    category_ids: frozenset[int] = frozenset()
    product_ids: frozenset[int] = frozenset()
    min_subtotal: Decimal | None = None
    code: str | None = None  # the code the shopper entered (a voucher), as stored
    generated_code: bool = False  # the code is one of the voucher's generated codes
    limited: bool = False  # it has a usage_limit or a per_customer_limit: its uses are counted

    def takes(self, line: LineInput) -> bool:
        if self.scope == PromotionScope.CATEGORIES:
            return line.category_id in self.category_ids
        if self.scope == PromotionScope.PRODUCTS:
            return line.product_id in self.product_ids
        return True


# --- outputs ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class QuoteLine:
    sku: str
    quantity: int
    unit_price: Decimal
    compare_at_price: Decimal | None
    line_total: Decimal  # unit_price * quantity, before the discount
    discount: Decimal
    tax: Decimal
    tax_rate: Decimal
    tax_name: str

    def payable(self, prices_include_tax: bool) -> Decimal:
        """What the customer pays for this line: after the discount, with its tax."""
        return self.line_total - self.discount + (ZERO if prices_include_tax else self.tax)


@dataclass(frozen=True)
class ShippingOption:
    code: str
    name: str
    kind: str
    price: Decimal  # for this cart (free_over and weight applied; before a free-shipping promotion)
    min_days: int | None
    max_days: int | None
    store_id: int | None
    store_name: str | None


@dataclass(frozen=True)
class AppliedPromotion:
    promotion_id: int
    name: str
    code: str | None
    discount: Decimal  # off the lines, plus the shipping it waived
    generated_code: bool = False  # ``code`` is a generated code (voucher_codes), with a limit of its own
    limited: bool = False  # the promotion has a limit: taking a use updates (and locks) its counter


@dataclass(frozen=True)
class Quote:
    lines: tuple[QuoteLine, ...]
    subtotal: Decimal
    discount_total: Decimal
    shipping_method: ShippingOption | None
    shipping_cost: Decimal
    shipping_tax: Decimal
    tax_total: Decimal
    total: Decimal
    currency: str
    prices_include_tax: bool
    voucher: AppliedPromotion | None
    promotions: tuple[AppliedPromotion, ...]  # every promotion used (sales and the voucher)
    shipping_methods: tuple[ShippingOption, ...]

    @property
    def item_count(self) -> int:
        return sum(line.quantity for line in self.lines)


# --- the computation -------------------------------------------------------------------------


def _percent_of(amount: Decimal, percent: Decimal) -> Decimal:
    return min(money(amount * percent / HUNDRED), amount)


def _sale_discount(rule: PromotionRule, line: LineInput, amount: Decimal) -> Decimal:
    if rule.kind == PromotionKind.PERCENT:
        return _percent_of(amount, rule.value)
    if rule.kind == PromotionKind.FIXED:
        return min(money(rule.value), line.unit_price) * line.quantity
    return ZERO  # free shipping: no line discount


def spread(amount: Decimal, weights: Sequence[Decimal]) -> list[Decimal]:
    """``amount`` split over ``weights`` in proportion: each share rounded down to the cent,
    the cents left over to the largest weight first (never beyond a weight). The shares add
    up to ``amount`` exactly when ``0 <= amount <= sum(weights)``."""
    total = sum(weights, ZERO)
    if amount <= 0 or total <= 0:
        return [ZERO for _ in weights]
    shares = [(amount * w / total).quantize(CENT, rounding=ROUND_DOWN) for w in weights]
    left = amount - sum(shares, ZERO)
    for index in sorted(range(len(weights)), key=lambda i: (-weights[i], i)):
        if left <= 0:
            break
        extra = min(left, weights[index] - shares[index])
        shares[index] += extra
        left -= extra
    return shares


def _extract_tax(gross: Decimal, rate: Decimal) -> Decimal:
    return gross - money(gross / (1 + rate))


def _tax_of(amount: Decimal, rate: Decimal, include_tax: bool) -> Decimal:
    if rate == 0 or amount == 0:
        return ZERO
    return _extract_tax(amount, rate) if include_tax else money(amount * rate)


def price_method(method: MethodRule, *, merchandise: Decimal, weight: Decimal) -> Decimal | None:
    """The method's price for a cart of ``merchandise`` (after discounts) weighing ``weight``;
    None when the method cannot carry it (heavier than its last bracket)."""
    if method.kind == MethodKind.PICKUP:
        return ZERO
    if method.kind == MethodKind.WEIGHT:
        price = next((p for up_to, p in method.weight_brackets if weight <= up_to), None)
        if price is None:
            return None
    else:
        price = method.price
    if method.free_over is not None and merchandise >= method.free_over:
        return ZERO
    return money(price)


def compute_quote(
    lines: Sequence[LineInput],
    *,
    taxes: TaxTable,
    methods: Sequence[MethodRule],
    sales: Sequence[PromotionRule] = (),
    voucher: PromotionRule | None = None,
    shipping_method: str | None = None,
    prices_include_tax: bool = False,
    currency: str = "usd",
    pickup_taxes: Mapping[str, TaxTable] | None = None,
    deliverable: bool = True,
    estimate: bool = False,
) -> Quote:
    """The quote of ``lines`` (see the module docstring for the rules).

    ``methods`` are those offered to the destination (its zone's active ones, and the
    pickups); ``deliverable`` is False when the destination is in no zone. ``pickup_taxes``
    maps a pickup method's code to the rates of its store, where the goods are handed over.
    An ``estimate`` (the cart's view) prices no shipping where none is offered instead of
    refusing. Raises VoucherRefused (below minimum, not applicable) and NotDeliverable.
    """
    amounts = [money(line.unit_price) * line.quantity for line in lines]
    subtotal = sum(amounts, ZERO)

    # 2. sales: the best per line
    sale_discounts = [ZERO] * len(lines)
    used: dict[int, tuple[PromotionRule, Decimal]] = {}
    free_shipping = False
    for i, line in enumerate(lines):
        best: tuple[Decimal, PromotionRule] | None = None
        for rule in sales:
            if not rule.takes(line) or (rule.min_subtotal is not None and subtotal < rule.min_subtotal):
                continue
            if rule.kind == PromotionKind.FREE_SHIPPING:
                free_shipping = True
                used.setdefault(rule.id, (rule, ZERO))
                continue
            amount = _sale_discount(rule, line, amounts[i])
            if amount > 0 and (best is None or amount > best[0]):
                best = (amount, rule)
        if best is not None:
            sale_discounts[i] = best[0]
            rule = best[1]
            used[rule.id] = (rule, used.get(rule.id, (rule, ZERO))[1] + best[0])

    after_sales = [a - d for a, d in zip(amounts, sale_discounts, strict=True)]

    # 3. the voucher
    voucher_discounts = [ZERO] * len(lines)
    voucher_free_shipping = False
    if voucher is not None:
        eligible = [i for i, line in enumerate(lines) if voucher.takes(line)]
        if not eligible:
            raise VoucherRefused(NOT_APPLICABLE, "This code does not apply to anything in the cart.")
        if voucher.min_subtotal is not None and sum(after_sales, ZERO) < voucher.min_subtotal:
            raise VoucherRefused(BELOW_MINIMUM, f"This code needs a subtotal of at least "
                                                f"{money(voucher.min_subtotal)}.")
        if voucher.kind == PromotionKind.PERCENT:
            for i in eligible:
                voucher_discounts[i] = _percent_of(after_sales[i], voucher.value)
        elif voucher.kind == PromotionKind.FIXED:
            base = sum((after_sales[i] for i in eligible), ZERO)
            shares = spread(min(money(voucher.value), base), [after_sales[i] for i in eligible])
            for i, share in zip(eligible, shares, strict=True):
                voucher_discounts[i] = share
        else:
            voucher_free_shipping = True

    discounts = [s + v for s, v in zip(sale_discounts, voucher_discounts, strict=True)]
    merchandise = subtotal - sum(discounts, ZERO)

    # 4. shipping
    weight = sum(((line.weight or Decimal(0)) * line.quantity for line in lines), Decimal(0))
    options = []
    for method in methods:
        if not deliverable and not method.is_pickup:
            continue
        price = price_method(method, merchandise=merchandise, weight=weight)
        if price is not None:
            options.append((method, ShippingOption(
                code=method.code, name=method.name, kind=method.kind, price=price, min_days=method.min_days,
                max_days=method.max_days, store_id=method.store_id, store_name=method.store_name)))
    chosen: tuple[MethodRule, ShippingOption] | None = None
    if lines:
        try:
            chosen = _choose_method(options, shipping_method, deliverable=deliverable)
        except NotDeliverable:
            if not estimate:
                raise
    shipping_cost = ZERO
    if chosen is not None and not (free_shipping or voucher_free_shipping):
        shipping_cost = chosen[1].price
    waived = chosen[1].price - shipping_cost if chosen is not None else ZERO

    # 5. tax
    if chosen is not None and chosen[0].is_pickup and pickup_taxes and chosen[0].code in pickup_taxes:
        taxes = pickup_taxes[chosen[0].code]
    quote_lines = []
    for line, amount, discount in zip(lines, amounts, discounts, strict=True):
        rule = taxes.rule_for(line.tax_class_id)
        quote_lines.append(QuoteLine(
            sku=line.sku, quantity=line.quantity, unit_price=money(line.unit_price),
            compare_at_price=money(line.compare_at_price) if line.compare_at_price is not None else None,
            line_total=amount, discount=discount,
            tax=_tax_of(amount - discount, rule.rate, prices_include_tax),
            tax_rate=rule.rate, tax_name=rule.name))
    shipping_tax = ZERO
    if chosen is not None and chosen[0].tax_shipping:
        shipping_tax = _tax_of(shipping_cost, taxes.rule_for(None).rate, prices_include_tax)
    discount_total = sum(discounts, ZERO)
    tax_total = sum((line.tax for line in quote_lines), ZERO) + shipping_tax
    total = subtotal - discount_total + shipping_cost + (ZERO if prices_include_tax else tax_total)

    applied = [AppliedPromotion(rule.id, rule.name, None, amount, limited=rule.limited)
               for rule, amount in used.values()]
    voucher_applied = None
    if voucher is not None:
        voucher_applied = AppliedPromotion(
            voucher.id, voucher.name, voucher.code,
            sum(voucher_discounts, ZERO) + (waived if voucher_free_shipping else ZERO),
            generated_code=voucher.generated_code, limited=voucher.limited)
        applied.append(voucher_applied)
    return Quote(
        lines=tuple(quote_lines), subtotal=subtotal, discount_total=discount_total,
        shipping_method=chosen[1] if chosen else None, shipping_cost=shipping_cost,
        shipping_tax=shipping_tax, tax_total=tax_total, total=total, currency=currency,
        prices_include_tax=prices_include_tax, voucher=voucher_applied, promotions=tuple(applied),
        shipping_methods=tuple(option for _, option in options))


def _choose_method(options, code: str | None, *, deliverable: bool):
    if code is not None:
        for pair in options:
            if pair[1].code == code:
                return pair
        raise NotDeliverable(f"The shipping method '{code}' is not offered for this cart and destination.",
                             {"shipping_method": ["Not offered for this cart and destination."]})
    if not deliverable:
        raise NotDeliverable("We do not ship to this destination.",
                             {"country": ["We do not ship to this country."]})
    shipping = [pair for pair in options if not pair[0].is_pickup]
    if not shipping:
        raise NotDeliverable("No shipping method can carry this cart to this destination.",
                             {"shipping_method": ["No shipping method can carry this cart."]})
    # The cheapest; on a tie, the first the shop lists (by id).
    return min(shipping, key=lambda pair: pair[1].price)
