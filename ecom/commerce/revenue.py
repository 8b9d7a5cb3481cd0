"""Money kept: what payments took, less what went back. One definition for the dashboard's
revenue and a customer's lifetime value, so a refund lowers both."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from sqlalchemy import func, select

from ecom.commerce.models import Order, Payment
from ecom.commerce.status import MONEY_TAKEN
from ecom.db import money
from ecom.extensions import db

# Per payment: the amount taken less the amount refunded.
NET = Payment.amount - Payment.refunded_amount
MONEY_TAKEN_STATUSES = [str(s) for s in MONEY_TAKEN]


def net_revenue(start: datetime | None = None, end: datetime | None = None) -> Decimal:
    """Money kept from orders paid in [start, end): taken less refunded."""
    query = (select(func.coalesce(func.sum(NET), 0)).join(Order, Order.id == Payment.order_id)
             .where(Payment.status.in_(MONEY_TAKEN_STATUSES)))
    if start is not None:
        query = query.where(Order.paid_at >= start)
    if end is not None:
        query = query.where(Order.paid_at < end)
    return money(db.session.scalar(query) or 0)


def revenue_by_day(start: datetime, end: datetime) -> dict[str, tuple[Decimal, Decimal]]:
    """{"YYYY-MM-DD" (UTC day the order was paid): (money kept, money given back)} for orders
    paid in [start, end). Their sums are ``net_revenue`` and ``refunded_total`` of the range:
    one pass over the range's payments gives a chart and its totals."""
    day = func.date(Order.paid_at)
    rows = db.session.execute(
        select(day, func.sum(NET), func.sum(Payment.refunded_amount))
        .join(Order, Order.id == Payment.order_id)
        .where(Payment.status.in_(MONEY_TAKEN_STATUSES), Order.paid_at >= start, Order.paid_at < end)
        .group_by(day)).all()
    return {str(d): (money(kept or 0), money(refunded or 0)) for d, kept, refunded in rows}


def refunded_total(start: datetime | None = None, end: datetime | None = None) -> Decimal:
    """Money given back on orders paid in [start, end)."""
    query = (select(func.coalesce(func.sum(Payment.refunded_amount), 0))
             .join(Order, Order.id == Payment.order_id)
             .where(Payment.status.in_(MONEY_TAKEN_STATUSES)))
    if start is not None:
        query = query.where(Order.paid_at >= start)
    if end is not None:
        query = query.where(Order.paid_at < end)
    return money(db.session.scalar(query) or 0)


def customer_lifetime_value(user_id: int) -> Decimal:
    """Everything the customer paid us and kept paid: taken less refunded, all orders."""
    return money(db.session.scalar(
        select(func.coalesce(func.sum(NET), 0)).join(Order, Order.id == Payment.order_id)
        .where(Order.user_id == user_id, Payment.status.in_(MONEY_TAKEN_STATUSES))) or 0)
