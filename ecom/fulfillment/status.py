"""Fulfillment statuses and their allowed transitions."""

from enum import StrEnum

from ecom.commerce.status import OrderStatus


class FulfillmentStatus(StrEnum):
    PENDING = "pending"  # created when the order is paid
    PROCESSING = "processing"  # being picked
    PACKED = "packed"  # boxed; moves the order to packed
    SHIPPED = "shipped"  # carrier and tracking known; moves the order to shipped
    DELIVERED = "delivered"  # moves the order to delivered
    CANCELLED = "cancelled"  # the order was cancelled before shipping


ALLOWED: dict[FulfillmentStatus, frozenset[FulfillmentStatus]] = {
    FulfillmentStatus.PENDING: frozenset({FulfillmentStatus.PROCESSING, FulfillmentStatus.CANCELLED}),
    FulfillmentStatus.PROCESSING: frozenset({FulfillmentStatus.PACKED, FulfillmentStatus.CANCELLED}),
    FulfillmentStatus.PACKED: frozenset({FulfillmentStatus.SHIPPED}),
    FulfillmentStatus.SHIPPED: frozenset({FulfillmentStatus.DELIVERED}),
    FulfillmentStatus.DELIVERED: frozenset(),
    FulfillmentStatus.CANCELLED: frozenset(),
}

# The order status a fulfillment step moves its order to, where it moves it at all.
ORDER_STATUS_FOR: dict[FulfillmentStatus, OrderStatus] = {
    FulfillmentStatus.PACKED: OrderStatus.PACKED,
    FulfillmentStatus.SHIPPED: OrderStatus.SHIPPED,
    FulfillmentStatus.DELIVERED: OrderStatus.DELIVERED,
}
