"""The figures on the dashboard: a handful of aggregate queries, no per-row loading.

A date range (the last 30 days by default; ``?start=YYYY-MM-DD&end=YYYY-MM-DD``, both days
included, in the user's time zone) drives the range figures, the chart and the top products.
Revenue is money kept: taken less refunded (``ecom.commerce.revenue``). Every figure carries
the link to the list behind it (``admin.links``).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from time import monotonic

from flask import current_app
from sqlalchemy import func, select

from admin.formatting import format_money, user_zone
from admin.links import between, list_url
from ecom.catalog.models import Variant
from ecom.commerce.models import Order, OrderItem
from ecom.commerce.revenue import net_revenue, order_id_range, revenue_by_day
from ecom.commerce.status import OrderStatus
from ecom.db import money, utcnow
from ecom.extensions import db
from ecom.fulfillment.models import Fulfillment
from ecom.fulfillment.status import FulfillmentStatus
from ecom.inventory.models import Inventory, StockLocation
from ecom.inventory.services import location_totals

# Orders whose money was taken and kept.
REVENUE_STATUSES = (OrderStatus.PAID, OrderStatus.PACKED, OrderStatus.PARTIALLY_SHIPPED, OrderStatus.SHIPPED,
                    OrderStatus.READY_FOR_PICKUP, OrderStatus.DELIVERED, OrderStatus.RETURNED)
BACKLOG_STATUSES = (FulfillmentStatus.PENDING, FulfillmentStatus.PROCESSING, FulfillmentStatus.PACKED,
                    FulfillmentStatus.READY_FOR_PICKUP)
DEFAULT_DAYS = 30
MAX_DAYS = 366
# The chart's drawing area inside its SVG viewBox (room on the left and below for the axes).
CHART = {"width": 660, "height": 220, "left": 70, "top": 10, "bottom": 30}


@dataclass
class Bar:
    day: date
    revenue: Decimal
    x: float
    y: float
    height: float
    width: float
    url: str = ""


@dataclass
class DateRange:
    start: date  # first day, included
    end: date  # last day, included

    @property
    def days(self) -> int:
        return (self.end - self.start).days + 1

    def bounds(self) -> tuple[datetime, datetime]:
        """[start, end) as UTC instants: the days' midnights in the user's zone."""
        zone = user_zone()
        first = datetime.combine(self.start, time.min, tzinfo=zone).astimezone(UTC)
        after = datetime.combine(self.end + timedelta(days=1), time.min, tzinfo=zone).astimezone(UTC)
        return first, after


def parse_range(start: str | None, end: str | None) -> tuple[DateRange, str | None]:
    """The range asked for, or the last 30 days; a message when what was asked made no sense."""
    today = utcnow().astimezone(user_zone()).date()
    default = DateRange(today - timedelta(days=DEFAULT_DAYS - 1), today)
    if not start and not end:
        return default, None
    try:
        first = date.fromisoformat(start) if start else default.start
        last = date.fromisoformat(end) if end else today
    except ValueError:
        return default, "Dates are written YYYY-MM-DD; showing the last 30 days."
    if last < first:
        return default, "The range ends before it starts; showing the last 30 days."
    if (last - first).days + 1 > MAX_DAYS:
        return DateRange(last - timedelta(days=MAX_DAYS - 1), last), "A range is at most a year; shortened."
    return DateRange(first, last), None


def _start_of_day(day: date) -> datetime:
    return datetime.combine(day, time.min, tzinfo=UTC)


def today_figures() -> dict:
    today = utcnow().astimezone(user_zone()).date()
    start, end = DateRange(today, today).bounds()
    count = db.session.scalar(select(func.count(Order.id)).where(Order.created_at >= start)) or 0
    return {"orders": count, "revenue": net_revenue(start, end),
            "orders_url": list_url("order", [("created_at", "DateTimeBetweenFilter", between(start, end))]),
            "revenue_url": list_url("order", [("paid_at", "DateTimeBetweenFilter", between(start, end))])}


def range_figures(period: DateRange, days: dict[str, tuple[Decimal, Decimal]]) -> dict:
    """The range's orders, and its money kept and refunded: the sums of ``days``
    (``ecom.commerce.revenue.revenue_by_day`` of the range)."""
    start, end = period.bounds()
    count = db.session.scalar(select(func.count(Order.id))
                              .where(Order.created_at >= start, Order.created_at < end)) or 0
    kept = sum((kept for kept, _ in days.values()), money(0))
    refunded = sum((refunded for _, refunded in days.values()), money(0))
    return {"orders": count, "revenue": kept, "refunded": refunded,
            "orders_url": list_url("order", [("created_at", "DateTimeBetweenFilter", between(start, end))]),
            "revenue_url": list_url("order", [("paid_at", "DateTimeBetweenFilter", between(start, end))])}


def orders_by_status(period: DateRange) -> list[tuple[str, int, str]]:
    start, end = period.bounds()
    rows = dict(db.session.execute(select(Order.status, func.count(Order.id))
                                   .where(Order.created_at >= start, Order.created_at < end)
                                   .group_by(Order.status)).all())
    return [(str(status), rows.get(status, 0),
             list_url("order", [("status", "FilterEqual", str(status)),
                                ("created_at", "DateTimeBetweenFilter", between(start, end))]))
            for status in OrderStatus]


def fulfillment_backlog() -> dict:
    rows = dict(
        db.session.execute(
            select(Fulfillment.status, func.count(Fulfillment.id))
            .where(Fulfillment.status.in_(BACKLOG_STATUSES))
            .group_by(Fulfillment.status)
        ).all()
    )
    oldest = db.session.scalar(
        select(func.min(Fulfillment.created_at)).where(Fulfillment.status.in_(BACKLOG_STATUSES))
    )
    return {"by_status": [(str(s), rows.get(s, 0),
                           list_url("fulfillment", [("status", "FilterEqual", str(s))]))
                          for s in BACKLOG_STATUSES],
            "total": sum(rows.values()), "oldest": oldest,
            "url": list_url("fulfillment", [("status", "FilterInList", ",".join(BACKLOG_STATUSES))])}


def low_stock_variants(limit: int = 10) -> list[dict]:
    """Inventory rows (a variant at a location) at or below their threshold."""
    rows = db.session.execute(
        select(Variant.id, Variant.sku, Variant.name, Inventory.available.label("available"),
               Inventory.low_stock_threshold, Inventory.location_id, StockLocation.name.label("location"))
        .join(Inventory, Inventory.variant_id == Variant.id)
        .join(StockLocation, StockLocation.id == Inventory.location_id)
        .where(Inventory.is_low, Variant.is_active.is_(True))
        .order_by(Inventory.available, Variant.sku)
        .limit(limit)
    ).all()
    return [dict(row._mapping) for row in rows]


def range_days(period: DateRange) -> dict[str, tuple[Decimal, Decimal]]:
    """Money kept and refunded per day paid, over the range (one pass over its payments)."""
    start, end = period.bounds()
    return revenue_by_day(start, end)


def daily_series(period: DateRange, days: dict[str, tuple[Decimal, Decimal]]) -> list[tuple[date, Decimal]]:
    """The chart's money kept per day of the range, 0 on a day without payments."""
    every_day = [period.start + timedelta(days=i) for i in range(period.days)]
    return [(day, days.get(str(day), (money(0), money(0)))[0]) for day in every_day]


def chart(series: list[tuple[date, Decimal]]) -> dict:
    """Bars and axes for the inline SVG chart (no JavaScript, nothing fetched)."""
    width, height = CHART["width"] - CHART["left"], CHART["height"] - CHART["top"] - CHART["bottom"]
    peak = max((amount for _, amount in series), default=Decimal(0))
    scale_top = _nice_ceiling(peak)
    slot = width / max(len(series), 1)
    baseline = CHART["top"] + height
    bars = []
    for index, (day, amount) in enumerate(series):
        bar_height = float(amount / scale_top) * height if scale_top else 0.0
        start = _start_of_day(day)
        bars.append(Bar(day, amount, round(CHART["left"] + index * slot + 1, 1),
                        round(baseline - bar_height, 1), round(bar_height, 1), round(max(slot - 2, 1), 1),
                        list_url("order", [("paid_at", "DateTimeBetweenFilter",
                                            between(start, start + timedelta(days=1)))])))
    ticks = [(round(baseline - height * i / 4, 1), format_money(scale_top * i / 4)) for i in range(5)]
    label_every = max(1, len(series) // 6)
    x_labels = [(bar.x, bar.day.strftime("%b %d")) for i, bar in enumerate(bars) if i % label_every == 0]
    return {"bars": bars, "y_ticks": ticks, "x_labels": x_labels, "baseline": baseline,
            "left": CHART["left"], "right": CHART["width"], "height": CHART["height"]}


def _nice_ceiling(value: Decimal) -> Decimal:
    """A round number at or above ``value`` for the y axis (1, 2, 2.5 or 5 times a power of ten)."""
    if value <= 0:
        return Decimal(100)
    magnitude = Decimal(10) ** (len(str(int(value))) - 1)
    for step in (1, 2, Decimal("2.5"), 5, 10):
        if value <= magnitude * step:
            return magnitude * step
    return magnitude * 10


def top_products(period: DateRange, limit: int = 5) -> list[dict]:
    start, end = period.bounds()
    bounds = order_id_range(Order.created_at, start, end)
    if bounds is None:
        return []
    units = func.sum(OrderItem.quantity)
    rows = db.session.execute(
        select(OrderItem.product_name, units.label("units"), func.sum(OrderItem.line_total).label("revenue"))
        .join(Order, Order.id == OrderItem.order_id)
        .where(Order.created_at >= start, Order.created_at < end, Order.status.in_(REVENUE_STATUSES),
               OrderItem.order_id.between(*bounds))  # the range's lines off the order_id index
        .group_by(OrderItem.product_name)
        .order_by(units.desc())
        .limit(limit)
    ).all()
    return [{"name": name, "units": int(n or 0), "revenue": money(r or 0),
             "url": list_url("product", search=name)} for name, n, r in rows]


def cache_seconds() -> int:
    """How long the figures are kept: ``DASHBOARD_CACHE_SECONDS`` of the app's config, else
    CACHE_SECONDS (0 under tests, which look at figures right after changing them)."""
    configured = current_app.config.get("DASHBOARD_CACHE_SECONDS")
    if configured is None:
        return 0 if current_app.testing else CACHE_SECONDS
    return max(0, int(configured))


def dashboard_context(start: str | None = None, end: str | None = None, *, fresh: bool = False) -> dict:
    """The dashboard's figures for the range asked for, computed at most once a minute.

    At a million orders the figures are aggregates over tens of thousands of orders, order
    lines and payments and every inventory row (seconds of database time, bench/RESULTS.md),
    so they are kept per process for ``cache_seconds()`` per range, time zone and day; the
    page says when they were computed and offers a refresh (``fresh``)."""
    period, problem = parse_range(start, end)
    seconds = cache_seconds()
    zone = user_zone()
    key = (period.start, period.end, str(zone), utcnow().astimezone(zone).date())
    now = monotonic()
    if seconds and not fresh:
        with _cache_lock:
            kept = _cache.get(key)
        if kept is not None and kept[0] > now:
            return {**kept[1], "range_problem": problem}
    context = _figures(period)
    context.update(as_of=utcnow(), cache_seconds=seconds)
    if seconds:
        with _cache_lock:
            for stale in [k for k, (until, _) in _cache.items() if until <= now]:
                del _cache[stale]
            if len(_cache) < MAX_CACHED:
                _cache[key] = (now + seconds, context)
    return {**context, "range_problem": problem}


# (range start, range end, zone, today) -> (monotonic expiry, figures): per process.
_cache: dict[tuple, tuple[float, dict]] = {}
_cache_lock = threading.Lock()
CACHE_SECONDS = 60
MAX_CACHED = 64


def _figures(period: DateRange) -> dict:
    days = range_days(period)
    series = daily_series(period, days)
    return {
        "period": period,
        "today": today_figures(),
        "in_range": range_figures(period, days),
        "by_status": orders_by_status(period),
        "backlog": fulfillment_backlog(),
        "low_stock": low_stock_variants(),
        "low_stock_url": list_url("inventory", [("id", "LowStockFilter", "1")]),
        "chart": chart(series),
        "top_products": top_products(period),
        "stock_by_location": location_totals(),
    }
