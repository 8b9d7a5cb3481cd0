"""Money kept: what payments took, less what went back. One definition for the dashboard's
revenue and a customer's lifetime value, so a refund lowers both."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from sqlalchemy import false, func, select

from ecom.commerce.models import Order, Payment
from ecom.commerce.status import MONEY_TAKEN
from ecom.db import money
from ecom.extensions import db

# Per payment: the amount taken less the amount refunded.
NET = Payment.amount - Payment.refunded_amount
MONEY_TAKEN_STATUSES = [str(s) for s in MONEY_TAKEN]


def order_id_range(time_column, start: datetime | None, end: datetime | None) -> tuple[int, int] | None:
    """The lowest and the highest id of the orders whose ``time_column`` (``Order.created_at``,
    ``Order.paid_at``) lies in [start, end), either end open; None when there are none.

    Orders are numbered as they come, so a time range's orders are a narrow band of ids. A
    join of those orders to their payments or lines bounded by the band reads it off the
    order_id index; unbounded, the planner cannot tell that time and id go together and reads
    every payment or line (a million orders: ~1 s per pass instead of ~0.3 s for 30 days).
    An order written after this look-up and outside the band is missed: figures are "as of".
    """
    low, high = db.session.execute(select(func.min(Order.id), func.max(Order.id))
                                   .where(*_within(time_column, start, end))).one()
    return None if low is None else (low, high)


def _within(time_column, start: datetime | None, end: datetime | None) -> list:
    conditions = []
    if start is not None:
        conditions.append(time_column >= start)
    if end is not None:
        conditions.append(time_column < end)
    return conditions


def _paid_in(query, start: datetime | None, end: datetime | None):
    """``query`` of payments joined to their orders, limited to orders paid in [start, end)."""
    if start is None and end is None:
        return query
    bounds = order_id_range(Order.paid_at, start, end)
    if bounds is None:
        return query.where(false())
    return query.where(*_within(Order.paid_at, start, end), Payment.order_id.between(*bounds))


def net_revenue(start: datetime | None = None, end: datetime | None = None) -> Decimal:
    """Money kept from orders paid in [start, end): taken less refunded."""
    query = (select(func.coalesce(func.sum(NET), 0)).join(Order, Order.id == Payment.order_id)
             .where(Payment.status.in_(MONEY_TAKEN_STATUSES)))
    return money(db.session.scalar(_paid_in(query, start, end)) or 0)


def revenue_by_day(start: datetime, end: datetime) -> dict[str, tuple[Decimal, Decimal]]:
    """{"YYYY-MM-DD" (UTC day the order was paid): (money kept, money given back)} for orders
    paid in [start, end). Their sums are ``net_revenue`` and ``refunded_total`` of the range:
    one pass over the range's payments gives a chart and its totals."""
    day = func.date(Order.paid_at)
    query = (select(day, func.sum(NET), func.sum(Payment.refunded_amount))
             .join(Order, Order.id == Payment.order_id)
             .where(Payment.status.in_(MONEY_TAKEN_STATUSES)).group_by(day))
    rows = db.session.execute(_paid_in(query, start, end)).all()
    return {str(d): (money(kept or 0), money(refunded or 0)) for d, kept, refunded in rows}


def refunded_total(start: datetime | None = None, end: datetime | None = None) -> Decimal:
    """Money given back on orders paid in [start, end)."""
    query = (select(func.coalesce(func.sum(Payment.refunded_amount), 0))
             .join(Order, Order.id == Payment.order_id)
             .where(Payment.status.in_(MONEY_TAKEN_STATUSES)))
    return money(db.session.scalar(_paid_in(query, start, end)) or 0)


def customer_lifetime_value(user_id: int) -> Decimal:
    """Everything the customer paid us and kept paid: taken less refunded, all orders."""
    return money(db.session.scalar(
        select(func.coalesce(func.sum(NET), 0)).join(Order, Order.id == Payment.order_id)
        .where(Order.user_id == user_id, Payment.status.in_(MONEY_TAKEN_STATUSES))) or 0)
