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
snapshot at once; writes are seen through the ORM unit of work (``after_flush``) and
through ``Session.execute`` of insert/update/delete constructs (``do_orm_execute``), as
the catalog's version does (``ecom.catalog.cache_version``). A promotion's use counter
(``times_used``) is not a rule: taking or giving back a use bumps nothing
(``COUNTER_ONLY``), and whatever depends on it (a voucher used up, a limited sale run
out) is read from the database at quote time, the claim itself under the row lock.

Without REDIS_URL (a single-process shop on SQLite, the tests), or with
PRICING_CACHE_SECONDS = 0, or while Redis is away, every quote loads the rules afresh.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from itertools import chain

import redis
from flask import Flask, current_app, has_app_context
from sqlalchemy import select
from sqlalchemy.orm import ORMExecuteState, Session, selectinload

from ecom import runtime
from ecom.db import as_utc, listen_on_sessions
from ecom.extensions import db
from ecom.pricing.models import Promotion, ShippingMethod, ShippingZone, TaxClass, TaxRate, VoucherCode

log = logging.getLogger("ecom.pricing.rules")

VERSION_KEY = "ecom:pricing:version"
# Every table a snapshot is read from (stores: a pickup method's store, its address and name).
RULE_TABLES = frozenset({"tax_classes", "tax_rates", "shipping_zones", "shipping_methods", "promotions",
                         "voucher_codes", "stores"})
# Columns that change without changing a rule: use counters, and the timestamps they touch.
COUNTER_COLUMNS = frozenset({"times_used", "updated_at"})
# Execution option of an UPDATE that only moves a use counter (``ecom.pricing.uses``).
COUNTER_ONLY = "pricing_counter_only"
_DIRTY = "ecom_pricing_rules_written"  # session.info: a rule row written, not yet committed
_CLIENT = "ecom_pricing_rules_redis"
_DOWN_UNTIL = "ecom_pricing_rules_redis_down_until"
_SNAPSHOT = "ecom_pricing_rules_snapshot"
REDIS_BACKOFF_SECONDS = 2.0


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
    if not has_app_context() or db.session().info.get(_DIRTY):
        return load_rules()
    app = current_app._get_current_object()
    seconds = float(runtime.settings(app)["PRICING_CACHE_SECONDS"])
    version = _version(app) if seconds > 0 else None
    if version is None:
        return load_rules()
    kept = app.extensions.get(_SNAPSHOT)
    now = time.monotonic()
    if kept is not None and kept[0] == version and now - kept[1] < seconds:
        return kept[2]
    rules = load_rules()
    if not db.session().info.get(_DIRTY):
        app.extensions[_SNAPSHOT] = (version, now, rules)
    return rules


def forget_rules(app: Flask) -> None:
    """Drop this process's snapshot (the next quote reads the rules again)."""
    app.extensions.pop(_SNAPSHOT, None)


# --- the version in Redis -------------------------------------------------------------------

_client_lock = threading.Lock()


def _redis(app: Flask) -> redis.Redis | None:
    """The Redis client holding the version (made on first use); None without REDIS_URL."""
    client = app.extensions.get(_CLIENT)
    if client is not None:
        return client
    url = runtime.settings(app)["REDIS_URL"]
    if not url:
        return None
    with _client_lock:
        client = app.extensions.get(_CLIENT)
        if client is None:
            # Short timeouts: a quote falls back to the database rather than wait for Redis.
            client = redis.Redis.from_url(url, socket_connect_timeout=0.5, socket_timeout=0.5)
            app.extensions[_CLIENT] = client
    return client


def _failed(app: Flask, exc: redis.RedisError) -> None:
    app.extensions[_DOWN_UNTIL] = time.monotonic() + REDIS_BACKOFF_SECONDS
    log.warning("pricing rules: Redis unavailable, rules read from the database for %.0fs: %s",
                REDIS_BACKOFF_SECONDS, exc)


def _version(app: Flask) -> bytes | None:
    if time.monotonic() < app.extensions.get(_DOWN_UNTIL, 0.0):
        return None
    client = _redis(app)
    if client is None:
        return None
    try:
        version = client.get(VERSION_KEY)
        if version is None:
            # Redis came back empty: start from the clock, a value no snapshot can carry.
            client.set(VERSION_KEY, time.time_ns(), nx=True)
            version = client.get(VERSION_KEY)
        return version
    except redis.RedisError as exc:
        _failed(app, exc)
        return None


# INCR alone would restart a missing version at 1, a number snapshots may still carry.
BUMP = """
if redis.call('EXISTS', KEYS[1]) == 1 then return redis.call('INCR', KEYS[1]) end
redis.call('SET', KEYS[1], ARGV[1])
return ARGV[1]
"""


def bump_version(app: Flask) -> None:
    """Retire every process's snapshot. Tried even during a read back-off; when it fails,
    other processes keep theirs for up to PRICING_CACHE_SECONDS."""
    forget_rules(app)
    client = _redis(app)
    if client is None:
        return
    try:
        client.eval(BUMP, 1, VERSION_KEY, time.time_ns())
    except redis.RedisError as exc:
        _failed(app, exc)


# --- the session hooks ----------------------------------------------------------------------

def init_app(app: Flask) -> None:
    listen_on_sessions(after_flush=_note_flushed_rows, do_orm_execute=_note_bulk_statement,
                       after_commit=_bump_if_written, after_rollback=_forget)


def _rule_changed(session: Session, obj, *, dirty: bool) -> bool:
    table = getattr(obj, "__table__", None)
    if table is None or table.name not in RULE_TABLES:
        return False
    if not dirty:
        return True
    from sqlalchemy import inspect

    state = inspect(obj)
    return any(attr.key not in COUNTER_COLUMNS and attr.history.has_changes() for attr in state.attrs)


def _note_flushed_rows(session: Session, flush_context) -> None:
    if session.info.get(_DIRTY):
        return
    if any(_rule_changed(session, obj, dirty=False) for obj in chain(session.new, session.deleted)) or any(
            _rule_changed(session, obj, dirty=True) for obj in session.dirty):
        session.info[_DIRTY] = True


def _note_bulk_statement(state: ORMExecuteState) -> None:
    if not (state.is_insert or state.is_update or state.is_delete):
        return
    table = getattr(state.statement, "table", None)
    if getattr(table, "name", None) in RULE_TABLES and not state.execution_options.get(COUNTER_ONLY):
        state.session.info[_DIRTY] = True


def _bump_if_written(session: Session) -> None:
    if session.in_nested_transaction():
        return  # a savepoint: the outermost commit makes the writes visible
    if session.info.pop(_DIRTY, False) and has_app_context():
        bump_version(current_app._get_current_object())


def _forget(session: Session) -> None:
    if not session.in_nested_transaction():  # writes before a rolled-back savepoint still count
        session.info.pop(_DIRTY, None)
