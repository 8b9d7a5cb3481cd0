"""The pricing rules (tax classes and rates, shipping zones and methods, pickup stores,
active promotions), held in process under a version so that a quote reads no rule table
in the common case.

What is kept is a ``Rules`` snapshot, read in four statements. It is trusted while

- Redis's ``ecom:pricing:version`` is the one read *before* the snapshot was loaded (a
  snapshot is never labelled newer than the data it was read from), and
- it is younger than ``PRICING_CACHE_SECONDS`` (which bounds how long a change made
  outside the app's sessions, say SQL in psql, stays unseen), and
- the session asking has not itself written a rule row it has not committed yet (it
  reads its own writes from the database).

A commit that wrote a rule row, from whichever process (the back office, ``seed-demo``,
an API or a job), bumps the version right after it committed, and forgets this process's
snapshot at once (``ecom.cache_versions``, as for the catalog's pages). A promotion's use
counter (``times_used``) is not a rule: taking or giving back a use bumps nothing
(``COUNTER_ONLY``), and whatever depends on it (a voucher used up, a limited sale run
out) is read from the database at quote time, the claim itself under the row lock.

Without REDIS_URL (a single-process shop on SQLite, the tests), or with
PRICING_CACHE_SECONDS = 0, or while Redis is away, every quote loads the rules afresh.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from flask import Flask, current_app, has_app_context
from sqlalchemy import select
from sqlalchemy.orm import selectinload

from ecom import runtime
from ecom.cache_versions import TableVersion
from ecom.db import as_utc
from ecom.extensions import db
from ecom.pricing.models import Promotion, ShippingMethod, ShippingZone, TaxClass, TaxRate, VoucherCode

VERSION_KEY = "ecom:pricing:version"
# Every table a snapshot is read from (stores: a pickup method's store, its address and name).
RULE_TABLES = frozenset({"tax_classes", "tax_rates", "shipping_zones", "shipping_methods", "promotions",
                         "voucher_codes", "stores"})
# Columns that change without changing a rule: use counters, and the timestamps they touch.
COUNTER_COLUMNS = frozenset({"times_used", "updated_at"})
# Execution option of an UPDATE that only moves a use counter (``ecom.pricing.uses``).
COUNTER_ONLY = "pricing_counter_only"
_SNAPSHOT = "ecom_pricing_rules_snapshot"


@dataclass(frozen=True)
class StoreData:
    id: int
    name: str
    country: str
    state: str | None
    is_active: bool


@dataclass(frozen=True)
class MethodData:
    """An active shipping method, as ``ShippingMethod`` holds it."""

    id: int
    zone_id: int | None
    code: str
    name: str
    kind: str
    price: Decimal
    free_over: Decimal | None
    weight_brackets: tuple[tuple[Decimal, Decimal], ...]
    min_days: int | None
    max_days: int | None
    store: StoreData | None


@dataclass(frozen=True)
class TaxRow:
    region: str | None
    tax_class_id: int
    class_code: str
    rate: Decimal
    name: str


@dataclass(frozen=True)
class PromotionData:
    """An active promotion without its use counter (read fresh where it matters)."""

    id: int
    name: str
    code: str | None
    kind: str
    value: Decimal
    scope: str
    category_ids: frozenset[int]
    product_ids: frozenset[int]
    min_subtotal: Decimal | None
    starts_at: datetime | None
    ends_at: datetime | None
    usage_limit: int | None
    per_customer_limit: int | None
    has_codes: bool  # generated codes: a voucher even without a code of its own

    @property
    def is_automatic(self) -> bool:
        return self.code is None and not self.has_codes

    def in_window(self, now: datetime) -> bool:
        return ((self.starts_at is None or self.starts_at <= now)
                and (self.ends_at is None or self.ends_at > now))

    @classmethod
    def of(cls, promotion: Promotion, *, has_codes: bool) -> PromotionData:
        return cls(
            id=promotion.id, name=promotion.name, code=promotion.code, kind=promotion.kind,
            value=promotion.value, scope=promotion.scope,
            category_ids=frozenset(int(i) for i in promotion.category_ids or ()),
            product_ids=frozenset(int(i) for i in promotion.product_ids or ()),
            min_subtotal=promotion.min_subtotal,
            starts_at=as_utc(promotion.starts_at) if promotion.starts_at is not None else None,
            ends_at=as_utc(promotion.ends_at) if promotion.ends_at is not None else None,
            usage_limit=promotion.usage_limit, per_customer_limit=promotion.per_customer_limit,
            has_codes=has_codes)


@dataclass(frozen=True)
class Rules:
    """Every pricing rule a quote reads, at one moment."""

    # (zone id, countries upper case, tax_shipping), by id: a country's zone is the first.
    zones: tuple[tuple[int, frozenset[str], bool], ...]
    methods: tuple[MethodData, ...]  # active ones, by id
    tax_rates: dict[str, tuple[TaxRow, ...]]  # by country, each country's by id
    any_tax_rate: bool
    promotions: tuple[PromotionData, ...]  # active ones, by id
    by_code: dict[str, PromotionData]  # active promotions' own codes


def load_rules() -> Rules:
    """Read every rule from the database (four statements)."""
    zones = tuple(
        (zone_id, frozenset(str(c).upper() for c in countries or ()), bool(tax_shipping))
        for zone_id, countries, tax_shipping in db.session.execute(
            select(ShippingZone.id, ShippingZone.countries, ShippingZone.tax_shipping)
            .order_by(ShippingZone.id)))
    methods = tuple(_method_data(m) for m in db.session.scalars(
        select(ShippingMethod).where(ShippingMethod.is_active.is_(True))
        .options(selectinload(ShippingMethod.store)).order_by(ShippingMethod.id)))
    rates: dict[str, list[TaxRow]] = {}
    for country, region, class_id, code, rate, name in db.session.execute(
            select(TaxRate.country, TaxRate.region, TaxRate.tax_class_id, TaxClass.code, TaxRate.rate,
                   TaxRate.name)
            .join(TaxClass, TaxClass.id == TaxRate.tax_class_id).order_by(TaxRate.id)):
        rates.setdefault(country, []).append(TaxRow(region, class_id, code, rate, name))
    has_codes = select(VoucherCode.id).where(VoucherCode.promotion_id == Promotion.id).exists()
    promotions = tuple(PromotionData.of(p, has_codes=bool(codes)) for p, codes in db.session.execute(
        select(Promotion, has_codes.label("has_codes")).where(Promotion.is_active.is_(True))
        .order_by(Promotion.id)))
    return Rules(zones=zones, methods=methods, tax_rates={k: tuple(v) for k, v in rates.items()},
                 any_tax_rate=bool(rates), promotions=promotions,
                 by_code={p.code: p for p in promotions if p.code is not None})


def _method_data(method: ShippingMethod) -> MethodData:
    store = method.store
    brackets = tuple(sorted((Decimal(str(b["up_to"])), Decimal(str(b["price"])))
                            for b in method.weight_brackets or ()))
    return MethodData(
        id=method.id, zone_id=method.zone_id, code=method.code, name=method.name, kind=method.kind,
        price=method.price, free_over=method.free_over, weight_brackets=brackets,
        min_days=method.min_days, max_days=method.max_days,
        store=StoreData(store.id, store.name, store.country, store.state, store.is_active)
        if store is not None else None)


def current_rules() -> Rules:
    """The rules now: this process's snapshot when it is still good, else read afresh (and
    kept, when a version could be read)."""
    if not has_app_context() or RULES_VERSION.written(db.session()):
        return load_rules()
    app = current_app._get_current_object()
    seconds = float(runtime.settings(app)["PRICING_CACHE_SECONDS"])
    version = RULES_VERSION.current(app) if seconds > 0 else None
    if version is None:
        return load_rules()
    kept = app.extensions.get(_SNAPSHOT)
    now = time.monotonic()
    if kept is not None and kept[0] == version and now - kept[1] < seconds:
        return kept[2]
    rules = load_rules()
    if not RULES_VERSION.written(db.session()):
        app.extensions[_SNAPSHOT] = (version, now, rules)
    return rules


def forget_rules(app: Flask) -> None:
    """Drop this process's snapshot (the next quote reads the rules again)."""
    app.extensions.pop(_SNAPSHOT, None)


# A bump forgets this process's snapshot at once, other processes' through Redis.
RULES_VERSION = TableVersion(
    "pricing rules", VERSION_KEY, RULE_TABLES, falls_back="rules read from the database",
    counter_columns=COUNTER_COLUMNS, counter_option=COUNTER_ONLY, on_bump=forget_rules)
init_app = RULES_VERSION.init_app
