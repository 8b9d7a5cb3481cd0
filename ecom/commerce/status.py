"""Order and payment statuses, and the one place order transitions are allowed."""

from enum import StrEnum


class OrderStatus(StrEnum):
    CREATED = "created"  # placed, stock reserved, awaiting payment
    PAID = "paid"  # payment captured, stock committed, fulfillment pending
    PACKED = "packed"  # warehouse packed it
    SHIPPED = "shipped"  # handed to the carrier, tracking known
    DELIVERED = "delivered"  # carrier confirmed delivery
    CANCELLED = "cancelled"  # never shipped; stock released or returned, money refunded


ALLOWED: dict[OrderStatus, frozenset[OrderStatus]] = {
    OrderStatus.CREATED: frozenset({OrderStatus.PAID, OrderStatus.CANCELLED}),
    OrderStatus.PAID: frozenset({OrderStatus.PACKED, OrderStatus.CANCELLED}),
    OrderStatus.PACKED: frozenset({OrderStatus.SHIPPED}),
    OrderStatus.SHIPPED: frozenset({OrderStatus.DELIVERED}),
    OrderStatus.DELIVERED: frozenset(),
    OrderStatus.CANCELLED: frozenset(),
}


# The one way out of ``cancelled``: the expiry job cancelled an unpaid order, its payment
# then succeeded after all, and its stock could be taken again. Only the payment
# finaliser asks for it (``transition(..., late_payment=True)``).
LATE_PAYMENT_REVIVAL = (OrderStatus.CANCELLED, OrderStatus.PAID)


class PaymentStatus(StrEnum):
    PENDING = "pending"
    COMPLETED = "completed"
    FAILED = "failed"
    REFUNDED = "refunded"  # fully refunded; partial refunds keep COMPLETED with refunded_amount


def can_transition(current: str, target: str) -> bool:
    return OrderStatus(target) in ALLOWED[OrderStatus(current)]
