"""The one way an order is cancelled: by the shopper, staff, the expiry job, a payment
that arrived after its stock was sold, or the demo data."""

from __future__ import annotations

from ecom.actor import Actor
from ecom.audit.services import record_change
from ecom.commerce.models import Order, Payment
from ecom.commerce.orders import lock_order, order_event_data, transition
from ecom.commerce.payments import cancel_payment, refundable_amount, request_refund
from ecom.commerce.status import REFUNDABLE, UNPAID, OrderStatus
from ecom.extensions import db
from ecom.fulfillment.services import cancel_fulfillment
from ecom.inventory.services import release_stock, return_stock
from ecom.notifications.models import EventType
from ecom.notifications.services import emit
from ecom.pricing.uses import release_uses

# The reason the expiry job gives; a payment arriving later may revive such an order.
EXPIRED_REASON = "reservation expired"


def cancel_order(order: Order, *, actor: Actor, reason: str, expired: bool = False) -> Order:
    """Cancel an order that has not been packed.

    Under the order's lock: the order moves to ``cancelled`` (history row with
    ``reason``), its fulfillments are cancelled, its stock goes back - held units
    released when it was unpaid (as ``expired`` reservations for the expiry
    job), sold units returned on hand when it was paid -, an unpaid order's
    promotion and voucher uses are given back, ORDER_CANCELLED is
    emitted and the cancellation audited with ``actor``. Its payment: money
    taken gets a refund of what is left recorded, an unpaid payment is
    cancelled; both gateway calls are made after the commit and retried from
    what was recorded (``ecom.commerce.payments``), so a slow or absent gateway
    neither holds locks nor stops the cancellation.
    Raises InvalidTransition (packed or later, or already cancelled).
    """
    order = lock_order(order.id)
    was = OrderStatus(order.status)
    transition(order, OrderStatus.CANCELLED, actor=actor, note=reason)
    order.cancel_reason = reason or None
    for fulfillment in order.fulfillments:
        cancel_fulfillment(fulfillment, actor=actor, note=reason)
    if was == OrderStatus.CREATED:
        # Unpaid: its promotions' uses go back (before the stock: promotion rows lock first).
        release_uses(order.id)
        release_stock(order, expired=expired)
    else:
        return_stock(order, actor=actor)
    emit(EventType.ORDER_CANCELLED, {**order_event_data(order), "reason": reason})
    _settle_payment(order.payment, actor=actor, reason=reason)
    record_change(actor, "cancel", "orders", order.id, {"status": was},
                  {"status": order.status, "cancel_reason": order.cancel_reason})
    db.session.flush()
    return order


def _settle_payment(payment: Payment | None, *, actor: Actor, reason: str) -> None:
    if payment is None:
        return
    if payment.status in UNPAID:
        cancel_payment(payment, actor=actor, note=reason)
    elif payment.status in REFUNDABLE and (left := refundable_amount(payment)) > 0:
        request_refund(payment, left, actor=actor, reason=reason)
