"""Order and payment statuses, and the one place their transitions are allowed."""

from enum import StrEnum


class OrderStatus(StrEnum):
    CREATED = "created"  # placed, stock reserved, awaiting payment
    PAID = "paid"  # payment captured, stock committed, fulfillment pending
    PACKED = "packed"  # warehouse packed it (a split order: one of its shipments)
    PARTIALLY_SHIPPED = "partially_shipped"  # a split order: some shipments sent, some not yet
    SHIPPED = "shipped"  # every shipment handed to the carrier, tracking known
    READY_FOR_PICKUP = "ready_for_pickup"  # click & collect: waiting at the store
    DELIVERED = "delivered"  # carrier confirmed delivery
    CANCELLED = "cancelled"  # never shipped; stock released or returned, money refunded


ALLOWED: dict[OrderStatus, frozenset[OrderStatus]] = {
    OrderStatus.CREATED: frozenset({OrderStatus.PAID, OrderStatus.CANCELLED}),
    OrderStatus.PAID: frozenset({OrderStatus.PACKED, OrderStatus.READY_FOR_PICKUP, OrderStatus.CANCELLED}),
    OrderStatus.PACKED: frozenset({OrderStatus.PARTIALLY_SHIPPED, OrderStatus.SHIPPED}),
    OrderStatus.PARTIALLY_SHIPPED: frozenset({OrderStatus.SHIPPED}),
    OrderStatus.SHIPPED: frozenset({OrderStatus.DELIVERED}),
    # Collected (delivered), or never collected and cancelled with a refund.
    OrderStatus.READY_FOR_PICKUP: frozenset({OrderStatus.DELIVERED, OrderStatus.CANCELLED}),
    OrderStatus.DELIVERED: frozenset(),
    OrderStatus.CANCELLED: frozenset(),
}


# The one way out of ``cancelled``: the expiry job cancelled an unpaid order, its payment
# then succeeded after all, and its stock could be taken again. Only the payment
# finaliser asks for it (``transition(..., late_payment=True)``).
LATE_PAYMENT_REVIVAL = (OrderStatus.CANCELLED, OrderStatus.PAID)


class PaymentStatus(StrEnum):
    PENDING = "pending"  # intent open, waiting for the shopper to pay
    COMPLETED = "completed"  # the money arrived
    FAILED = "failed"  # the last attempt was declined; the shopper may try again
    CANCELLED = "cancelled"  # the order was cancelled unpaid; its intent is (to be) cancelled
    PARTIALLY_REFUNDED = "partially_refunded"  # some of the money went back (refunded_amount)
    REFUNDED = "refunded"  # all of the money went back


PAYMENT_ALLOWED: dict[PaymentStatus, frozenset[PaymentStatus]] = {
    PaymentStatus.PENDING: frozenset(
        {PaymentStatus.COMPLETED, PaymentStatus.FAILED, PaymentStatus.CANCELLED}),
    # A decline is not final: another card may still pay, or the order is cancelled.
    PaymentStatus.FAILED: frozenset({PaymentStatus.COMPLETED, PaymentStatus.CANCELLED}),
    # The intent could still be paid while its cancellation was on the way: the money
    # arrived, and the finaliser takes the stock again or refunds it.
    PaymentStatus.CANCELLED: frozenset({PaymentStatus.COMPLETED}),
    PaymentStatus.COMPLETED: frozenset({PaymentStatus.PARTIALLY_REFUNDED, PaymentStatus.REFUNDED}),
    # Another partial refund is a change too (refunded_amount grows), written like any other.
    PaymentStatus.PARTIALLY_REFUNDED: frozenset({PaymentStatus.PARTIALLY_REFUNDED, PaymentStatus.REFUNDED}),
    PaymentStatus.REFUNDED: frozenset(),
}

# The payment took the money (some of it may have gone back since).
MONEY_TAKEN = frozenset({PaymentStatus.COMPLETED, PaymentStatus.PARTIALLY_REFUNDED, PaymentStatus.REFUNDED})
# Money that is still ours to refund.
REFUNDABLE = frozenset({PaymentStatus.COMPLETED, PaymentStatus.PARTIALLY_REFUNDED})
# Nothing was paid yet: the intent is still open at the gateway.
UNPAID = frozenset({PaymentStatus.PENDING, PaymentStatus.FAILED})


class EventKind(StrEnum):
    """What an ``order_events`` row is the history of."""

    ORDER = "order"
    PAYMENT = "payment"
    FULFILLMENT = "fulfillment"


class RefundStatus(StrEnum):
    REQUESTED = "requested"  # decided and recorded; the gateway call is still to be made (or retried)
    SUCCEEDED = "succeeded"  # the gateway refunded it and our books say so
    FAILED = "failed"  # the gateway kept refusing; given up, for a person to look at


REFUND_ALLOWED: dict[RefundStatus, frozenset[RefundStatus]] = {
    RefundStatus.REQUESTED: frozenset({RefundStatus.SUCCEEDED, RefundStatus.FAILED}),
    RefundStatus.SUCCEEDED: frozenset(),
    RefundStatus.FAILED: frozenset(),
}
