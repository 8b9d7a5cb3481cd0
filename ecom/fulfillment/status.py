"""Fulfillment statuses and their allowed transitions."""

from enum import StrEnum


class FulfillmentStatus(StrEnum):
    PENDING = "pending"  # created when the order is paid, one per stock location
    PROCESSING = "processing"  # being picked
    PACKED = "packed"  # boxed; moves the order to packed
    SHIPPED = "shipped"  # carrier and tracking known; the order is (partially) shipped
    DELIVERED = "delivered"  # the order is delivered once every shipment is
    READY_FOR_PICKUP = "ready_for_pickup"  # click & collect: waiting at the store
    PICKED_UP = "picked_up"  # click & collect: the customer has it; the order is delivered
    CANCELLED = "cancelled"  # the order was cancelled before shipping


ALLOWED: dict[FulfillmentStatus, frozenset[FulfillmentStatus]] = {
    FulfillmentStatus.PENDING: frozenset({FulfillmentStatus.PROCESSING, FulfillmentStatus.CANCELLED}),
    FulfillmentStatus.PROCESSING: frozenset({FulfillmentStatus.PACKED, FulfillmentStatus.READY_FOR_PICKUP,
                                             FulfillmentStatus.CANCELLED}),
    FulfillmentStatus.PACKED: frozenset({FulfillmentStatus.SHIPPED}),
    FulfillmentStatus.SHIPPED: frozenset({FulfillmentStatus.DELIVERED}),
    FulfillmentStatus.DELIVERED: frozenset(),
    # Never collected: the order may still be cancelled (and refunded).
    FulfillmentStatus.READY_FOR_PICKUP: frozenset({FulfillmentStatus.PICKED_UP, FulfillmentStatus.CANCELLED}),
    FulfillmentStatus.PICKED_UP: frozenset(),
    FulfillmentStatus.CANCELLED: frozenset(),
}

# Steps of a shipment and of a pickup: the other kind's steps are refused for it.
SHIPPING_ONLY = frozenset({FulfillmentStatus.PACKED, FulfillmentStatus.SHIPPED, FulfillmentStatus.DELIVERED})
PICKUP_ONLY = frozenset({FulfillmentStatus.READY_FOR_PICKUP, FulfillmentStatus.PICKED_UP})
# Still to be sent (or handed over).
OPEN = frozenset({FulfillmentStatus.PENDING, FulfillmentStatus.PROCESSING, FulfillmentStatus.PACKED,
                  FulfillmentStatus.READY_FOR_PICKUP})
