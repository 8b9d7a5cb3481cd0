"""The one pricing function: ``quote_lines`` prices lines for a destination, a shipping method
and a voucher code. The cart's view, the checkout quote, the payment intent and the back
office all call it; nothing else adds money up.

It takes the rules from ``ecom.pricing.rules`` (held in process under a version: no
statement in the common case), reads from the database only what a use counter decides
(a limited sale still running, a voucher used up, the customer's uses of a voucher that
limits them, a generated code), then leaves the arithmetic to
``ecom.pricing.engine.compute_quote``.

A shop that has set up no shipping zone prices shipping with the flat settings
(SHIPPING_FLAT_RATE, free from FREE_SHIPPING_THRESHOLD) for every destination, and one
with no tax rate at all taxes everything at TAX_RATE: the first version's behaviour, until
the back office (or ``seed-demo``) sets up zones and rates.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from sqlalchemy import func, select
from sqlalchemy.orm import selectinload

from ecom.db import utcnow
from ecom.errors import ValidationFailed
from ecom.extensions import db
from ecom.pricing.countries import is_country
from ecom.pricing.engine import (
    CUSTOMER_LIMIT,
    EXPIRED,
    NOT_STARTED,
    UNKNOWN,
    USED_UP,
    LineInput,
    MethodRule,
    PromotionRule,
    Quote,
    TaxRule,
    TaxTable,
    VoucherRefused,
    compute_quote,
)
from ecom.pricing.models import (
    STANDARD_TAX_CLASS,
    MethodKind,
    Promotion,
    PromotionUse,
    VoucherCode,
)
from ecom.pricing.rules import MethodData, PromotionData, Rules, current_rules
from ecom.runtime import settings

LEGACY_METHOD_CODE = "standard"


@dataclass(frozen=True)
class Destination:
    country: str
    region: str | None = None

    @classmethod
    def of_address(cls, address: dict | None) -> Destination:
        """The destination of a shipping address (its country and state)."""
        address = address or {}
        return cls(country=(address.get("country") or "").upper(), region=(address.get("state") or None))


@dataclass(frozen=True)
class Customer:
    """Who uses a voucher, for its per-customer limit: the user, or a guest's email."""

    user_id: int | None = None
    email: str = ""
    # Orders this checkout replaces (cancelling them gives their uses back): not counted.
    replacing: frozenset[int] = frozenset()


@dataclass(frozen=True)
class VoucherMatch:
    promotion: PromotionData
    voucher_code: VoucherCode | None  # a generated code, when the code is one of those
    code: str
    times_used: int  # the promotion's uses now, read from the database


def normalise_code(code: str) -> str:
    return code.strip().upper()


def quote_lines(
    lines: Sequence[LineInput],
    destination: Destination,
    *,
    shipping_method: str | None = None,
    voucher_code: str | None = None,
    customer: Customer | None = None,
    now: datetime | None = None,
    estimate: bool = False,
) -> Quote:
    """The quote for ``lines`` sent to ``destination``.

    Raises ValidationFailed (an unknown country: errors.country), NotDeliverable (a
    destination in no zone, or a method not offered), VoucherRefused (errors.voucher_code,
    naming why: unknown, not started, expired, used up, the customer's limit, below the
    minimum, not applicable). An ``estimate`` (the cart's view) refuses no destination
    for having no shipping: it shows none.
    """
    config = settings()
    now = now or utcnow()
    if not is_country(destination.country):
        raise ValidationFailed(f"Unknown country '{destination.country}'.",
                               {"country": ["Not an ISO 3166-1 alpha-2 country code."]})
    rules = current_rules()
    methods, deliverable, stores = _methods_for(rules, destination, config)
    pickup = next((m for m in methods if m.code == shipping_method and m.is_pickup), None)
    tax_places = [destination]
    if pickup is not None and pickup.store_id in stores:
        tax_places.append(stores[pickup.store_id])
    tables = _tax_tables(rules, tax_places, config)
    sales, match = _promotions(rules, voucher_code, now)
    voucher = None
    if match is not None:
        _check_voucher(match, now=now, customer=customer)
        voucher = _rule(match.promotion, code=match.code, generated=match.voucher_code is not None)
    return compute_quote(
        lines, taxes=tables[0], methods=methods, sales=[_rule(p) for p in sales], voucher=voucher,
        shipping_method=shipping_method, prices_include_tax=config["PRICES_INCLUDE_TAX"],
        currency=config["CURRENCY"], deliverable=deliverable, estimate=estimate,
        pickup_taxes={pickup.code: tables[1]} if pickup is not None and len(tables) > 1 else None)


# --- shipping --------------------------------------------------------------------------------


def _methods_for(rules: Rules, destination: Destination,
                 config) -> tuple[list[MethodRule], bool, dict[int, Destination]]:
    """The methods offered to ``destination`` (its zone's, then every pickup), whether it is
    in a zone, and the pickup stores' own destinations."""
    zone = next(((zone_id, tax_shipping) for zone_id, countries, tax_shipping in rules.zones
                 if destination.country in countries), None)
    methods: list[MethodRule] = []
    stores: dict[int, Destination] = {}
    if not rules.zones:
        methods.append(MethodRule(code=LEGACY_METHOD_CODE, name="Standard", kind=MethodKind.FLAT,
                                  price=Decimal(config["SHIPPING_FLAT_RATE"]),
                                  free_over=Decimal(config["FREE_SHIPPING_THRESHOLD"])))
    for method in rules.methods:
        if method.kind == MethodKind.PICKUP:
            store = method.store
            if store is None or not store.is_active:
                continue
            stores[store.id] = Destination(store.country.upper(), store.state or None)
            methods.append(_method_rule(method, tax_shipping=False, store_name=store.name))
        elif zone is not None and method.zone_id == zone[0]:
            methods.append(_method_rule(method, tax_shipping=zone[1]))
    # Shipping methods first (the default is the cheapest of them), pickups after.
    methods.sort(key=lambda m: m.is_pickup)
    return methods, zone is not None or not rules.zones, stores


def _method_rule(method: MethodData, *, tax_shipping: bool, store_name: str | None = None) -> MethodRule:
    return MethodRule(code=method.code, name=method.name, kind=method.kind, price=method.price,
                      free_over=method.free_over, weight_brackets=method.weight_brackets,
                      min_days=method.min_days, max_days=method.max_days,
                      store_id=method.store.id if method.store is not None else None,
                      store_name=store_name, tax_shipping=tax_shipping)


# --- tax -------------------------------------------------------------------------------------


def _tax_tables(rules: Rules, places: list[Destination], config) -> list[TaxTable]:
    """Each destination's rates by tax class: a region's rate wins over its country's."""
    if not rules.any_tax_rate:
        legacy = TaxTable(fallback=TaxRule(Decimal(config["TAX_RATE"]), "Tax"))
        return [legacy for _ in places]
    tables = []
    for place in places:
        region = (place.region or "").upper()
        by_class: dict[int, TaxRule] = {}
        specific: set[int] = set()
        standard_id = None
        for row in rules.tax_rates.get(place.country, ()):
            if row.class_code == STANDARD_TAX_CLASS:
                standard_id = row.tax_class_id
            if row.region is None:
                if row.tax_class_id not in specific:
                    by_class[row.tax_class_id] = TaxRule(row.rate, row.name)
            elif row.region.upper() == region:
                by_class[row.tax_class_id] = TaxRule(row.rate, row.name)
                specific.add(row.tax_class_id)
        tables.append(TaxTable(by_class=by_class, standard_class_id=standard_id))
    return tables


# --- promotions ------------------------------------------------------------------------------


def _promotions(rules: Rules, voucher_code: str | None,
                now: datetime) -> tuple[list[PromotionData], VoucherMatch | None]:
    """The sales running now (not used up), and the voucher ``voucher_code`` names, if any.
    Raises VoucherRefused for a code nobody knows.

    The rules say which promotions exist; how many uses a limited one has left is read
    from the database here (one statement, only when such a sale runs or such a voucher
    is named), never from the rules."""
    code = normalise_code(voucher_code) if voucher_code else None
    sales = [p for p in rules.promotions if p.is_automatic and p.in_window(now)]
    limited = [p.id for p in sales if p.usage_limit is not None]
    voucher = rules.by_code.get(code) if code else None
    counted = limited + ([voucher.id] if voucher is not None and voucher.usage_limit is not None else [])
    used = dict(db.session.execute(
        select(Promotion.id, Promotion.times_used).where(Promotion.id.in_(counted)))
        .all()) if counted else {}
    sales = [p for p in sales if p.usage_limit is None or used.get(p.id, p.usage_limit) < p.usage_limit]
    if not code:
        return sales, None
    if voucher is not None:
        return sales, VoucherMatch(voucher, None, code, used.get(voucher.id, 0))
    generated = db.session.scalar(select(VoucherCode).where(VoucherCode.code == code)
                                  .options(selectinload(VoucherCode.promotion)))
    if generated is None or not generated.promotion.is_active:
        raise VoucherRefused(UNKNOWN, "This code is not known.")
    promotion = generated.promotion
    return sales, VoucherMatch(PromotionData.of(promotion, has_codes=True), generated, code,
                               promotion.times_used)


def _check_voucher(match: VoucherMatch, *, now: datetime, customer: Customer | None) -> None:
    """Raises VoucherRefused unless the voucher may be used now by ``customer``."""
    promotion = match.promotion
    if promotion.starts_at is not None and promotion.starts_at > now:
        raise VoucherRefused(NOT_STARTED, "This code is not valid yet.")
    if promotion.ends_at is not None and promotion.ends_at <= now:
        raise VoucherRefused(EXPIRED, "This code has expired.")
    code = match.voucher_code
    if (promotion.usage_limit is not None and match.times_used >= promotion.usage_limit) or (
            code is not None and code.usage_limit is not None and code.times_used >= code.usage_limit):
        raise VoucherRefused(USED_UP, "This code has been used up.")
    if (promotion.per_customer_limit is not None and customer is not None
            and customer_uses(promotion.id, customer) >= promotion.per_customer_limit):
        raise VoucherRefused(CUSTOMER_LIMIT, "You have already used this code as often as it allows.")


def customer_uses(promotion_id: int, customer: Customer) -> int:
    """The uses ``customer`` holds of the promotion (given-back ones not counted)."""
    who = (PromotionUse.user_id == customer.user_id if customer.user_id is not None
           else PromotionUse.email == customer.email)
    conditions = [PromotionUse.promotion_id == promotion_id, who, PromotionUse.released_at.is_(None)]
    if customer.replacing:
        conditions.append(PromotionUse.order_id.not_in(customer.replacing))
    return db.session.scalar(select(func.count(PromotionUse.id)).where(*conditions))


def _rule(promotion: PromotionData, *, code: str | None = None, generated: bool = False) -> PromotionRule:
    return PromotionRule(
        id=promotion.id, name=promotion.name, kind=promotion.kind, value=promotion.value,
        scope=promotion.scope, category_ids=promotion.category_ids, product_ids=promotion.product_ids,
        min_subtotal=promotion.min_subtotal, code=code, generated_code=generated,
        limited=promotion.usage_limit is not None or promotion.per_customer_limit is not None)
