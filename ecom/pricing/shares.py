"""What each part of a priced order is worth to refund: a line's share of what was paid
(after its discount, with its tax) and the shipping's. The shares of an order add up to its
total exactly, so refunding every line and the shipping refunds the total to the cent."""

from __future__ import annotations

from decimal import Decimal

from ecom.db import money

ZERO = Decimal("0.00")


def line_paid(order, item) -> Decimal:
    """What the customer paid for all of ``item`` (an order line of ``order``)."""
    return item.line_total - item.discount + (ZERO if order.prices_include_tax else item.tax)


def shipping_paid(order) -> Decimal:
    """What the customer paid for shipping, with its tax."""
    return order.shipping_cost + (ZERO if order.prices_include_tax else order.shipping_tax)


def refundable_share(order, item, quantity: int, *, already: int = 0) -> Decimal:
    """The refund for ``quantity`` more units of ``item`` when ``already`` units were refunded:
    the line's paid amount in proportion to the units, cut so that the shares of returns
    made one after another add up to ``line_paid`` exactly once every unit is back.
    Raises ValueError for units the line does not have."""
    if quantity < 0 or already < 0 or already + quantity > item.quantity:
        raise ValueError(f"{item.sku}: {already} + {quantity} units of {item.quantity}")
    paid = line_paid(order, item)

    def upto(units: int) -> Decimal:
        return money(paid * units / item.quantity)

    return upto(already + quantity) - upto(already)
