"""The figures on the dashboard: a handful of aggregate queries, no per-row loading."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from decimal import Decimal

from sqlalchemy import func, select

from ecom.catalog.models import Variant
from ecom.commerce.models import Order, OrderItem
from ecom.commerce.status import OrderStatus
from ecom.db import money, utcnow
from ecom.extensions import db
from ecom.fulfillment.models import Fulfillment
from ecom.fulfillment.status import FulfillmentStatus
from ecom.inventory.models import Inventory, StockLocation
from ecom.inventory.services import location_totals

# Orders whose money was taken and kept.
REVENUE_STATUSES = (OrderStatus.PAID, OrderStatus.PACKED, OrderStatus.PARTIALLY_SHIPPED, OrderStatus.SHIPPED,
                    OrderStatus.READY_FOR_PICKUP, OrderStatus.DELIVERED)
BACKLOG_STATUSES = (FulfillmentStatus.PENDING, FulfillmentStatus.PROCESSING, FulfillmentStatus.PACKED,
                    FulfillmentStatus.READY_FOR_PICKUP)


@dataclass
class Bar:
    day: date
    revenue: Decimal
    x: float
    y: float
    height: float


def _start_of_day(day: date) -> datetime:
    return datetime.combine(day, time.min, tzinfo=utcnow().tzinfo)


def today_figures() -> dict:
    start = _start_of_day(utcnow().date())
    count = db.session.scalar(select(func.count(Order.id)).where(Order.created_at >= start)) or 0
    revenue = db.session.scalar(
        select(func.coalesce(func.sum(Order.total), 0)).where(
            Order.paid_at >= start, Order.status.in_(REVENUE_STATUSES)
        )
    )
    return {"orders": count, "revenue": money(revenue or 0)}


def orders_by_status() -> list[tuple[str, int]]:
    rows = dict(db.session.execute(select(Order.status, func.count(Order.id)).group_by(Order.status)).all())
    return [(str(status), rows.get(status, 0)) for status in OrderStatus]


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
    return {"by_status": [(str(s), rows.get(s, 0)) for s in BACKLOG_STATUSES],
            "total": sum(rows.values()), "oldest": oldest}


def low_stock_variants(limit: int = 10) -> list[dict]:
    """Inventory rows (a variant at a location) at or below their threshold."""
    rows = db.session.execute(
        select(Variant.id, Variant.sku, Variant.name, Inventory.available.label("available"),
               Inventory.low_stock_threshold, StockLocation.name.label("location"))
        .join(Inventory, Inventory.variant_id == Variant.id)
        .join(StockLocation, StockLocation.id == Inventory.location_id)
        .where(Inventory.is_low, Variant.is_active.is_(True))
        .order_by(Inventory.available, Variant.sku)
        .limit(limit)
    ).all()
    return [dict(row._mapping) for row in rows]


def revenue_by_day(days: int = 30) -> list[tuple[date, Decimal]]:
    first = utcnow().date() - timedelta(days=days - 1)
    day = func.date(Order.paid_at)
    rows = db.session.execute(
        select(day.label("day"), func.sum(Order.total))
        .where(Order.paid_at >= _start_of_day(first), Order.status.in_(REVENUE_STATUSES))
        .group_by(day)
    ).all()
    totals = {str(d): money(total or 0) for d, total in rows}
    return [(first + timedelta(days=i), totals.get(str(first + timedelta(days=i)), money(0)))
            for i in range(days)]


def chart_bars(series: list[tuple[date, Decimal]], *, width: int = 600, height: int = 160) -> list[Bar]:
    """Bar geometry for the inline SVG chart (no JavaScript, nothing fetched)."""
    peak = max((amount for _, amount in series), default=Decimal(0)) or Decimal(1)
    slot = width / max(len(series), 1)
    bars = []
    for index, (day, amount) in enumerate(series):
        bar_height = float(amount / peak) * (height - 10)
        bars.append(Bar(day, amount, round(index * slot + 1, 1), round(height - bar_height, 1),
                        round(bar_height, 1)))
    return bars


def top_products(days: int = 30, limit: int = 5) -> list[dict]:
    since = utcnow() - timedelta(days=days)
    units = func.sum(OrderItem.quantity)
    rows = db.session.execute(
        select(OrderItem.product_name, units.label("units"), func.sum(OrderItem.line_total).label("revenue"))
        .join(Order, Order.id == OrderItem.order_id)
        .where(Order.created_at >= since, Order.status.in_(REVENUE_STATUSES))
        .group_by(OrderItem.product_name)
        .order_by(units.desc())
        .limit(limit)
    ).all()
    return [{"name": name, "units": int(n or 0), "revenue": money(r or 0)} for name, n, r in rows]


def dashboard_context() -> dict:
    series = revenue_by_day()
    return {
        "today": today_figures(),
        "by_status": orders_by_status(),
        "backlog": fulfillment_backlog(),
        "low_stock": low_stock_variants(),
        "bars": chart_bars(series),
        "revenue_30d": money(sum((a for _, a in series), Decimal(0))),
        "top_products": top_products(),
        "stock_by_location": location_totals(),
    }
