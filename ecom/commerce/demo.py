"""Demo orders: walked to each status through the real services, for the demo shop and tests."""

from __future__ import annotations

import secrets
from datetime import timedelta

from sqlalchemy import select
from sqlalchemy.orm.attributes import set_committed_value

from ecom.actor import SYSTEM, Actor
from ecom.catalog.models import Variant
from ecom.commerce.cancellation import cancel_order
from ecom.commerce.cart import cart_totals
from ecom.commerce.checkout import insert_order
from ecom.commerce.guest_orders import issue_order_token
from ecom.commerce.models import Order, OrderItem, Payment
from ecom.commerce.orders import record_creation, transition
from ecom.commerce.payments import set_payment_status
from ecom.commerce.status import OrderStatus, PaymentStatus
from ecom.db import money, utcnow
from ecom.extensions import db
from ecom.fulfillment import services as fulfillment
from ecom.identity.models import User
from ecom.inventory.services import commit_stock, reserve_stock
from ecom.runtime import settings

DEMO_ADDRESS = {"full_name": "Cora Customer", "street": "12 Analytical Row", "city": "London", "state": "",
                "postal_code": "N1 1AA", "country": "GB", "phone": None}
DEMO_CANCEL_REASON = "demo: changed their mind"
DEMO_GUEST_EMAIL = "guest.shopper@example.com"


def seed_demo_orders(customer: User) -> None:
    """A handful of the customer's orders, one or more in every status."""
    variants = list(db.session.scalars(select(Variant).order_by(Variant.id).limit(12)))
    plan = [OrderStatus.CREATED, OrderStatus.PAID, OrderStatus.PAID, OrderStatus.PACKED,
            OrderStatus.SHIPPED, OrderStatus.DELIVERED, OrderStatus.CANCELLED, OrderStatus.PAID]
    for n, status in enumerate(plan):
        lines = [(variants[(2 * n) % len(variants)], 1 + n % 2), (variants[(2 * n + 1) % len(variants)], 1)]
        create_demo_order(customer, lines, status=status, days_ago=n * 3)
    # And a guest's paid order (no account, an order token), as guest checkout places them.
    guest = create_demo_order(customer, [(variants[0], 1)], status=OrderStatus.PAID, days_ago=1)
    guest.user_id, guest.email = None, DEMO_GUEST_EMAIL
    issue_order_token(guest)


def create_demo_order(user: User, lines: list[tuple[Variant, int]], *, status: OrderStatus,
                      actor: Actor = SYSTEM, days_ago: int = 0) -> Order:
    """An order walked to ``status`` through the real services (stock reserved and committed,
    fulfillment steps, history rows; a cancelled one through the one cancel path), paid by
    the simulated gateway. For demos and tests."""
    config = settings()
    items = [OrderItem(product_id=v.product_id, variant_id=v.id, sku=v.sku, product_name=v.product.name,
                       variant_name=v.name, quantity=q, price=v.price, line_total=money(v.price * q))
             for v, q in lines]
    totals = cart_totals(items)
    created_at = utcnow() - timedelta(days=days_ago, hours=1)
    order = insert_order(user_id=user.id, status=OrderStatus.CREATED, subtotal=totals.subtotal,
                         tax=totals.tax, shipping_cost=totals.shipping_cost, total=totals.total,
                         currency=config["CURRENCY"], shipping_address=DEMO_ADDRESS,
                         billing_address=DEMO_ADDRESS, email=user.email, created_at=created_at)
    for item in items:
        item.order_id = order.id
    db.session.add_all(items)
    db.session.flush()
    set_committed_value(order, "items", items)
    record_creation(order, actor=actor)
    reserve_stock(order, ttl_seconds=config["RESERVATION_TTL_SECONDS"])
    if status == OrderStatus.CREATED:
        return order
    if status == OrderStatus.CANCELLED:
        return cancel_order(order, actor=actor, reason=DEMO_CANCEL_REASON)
    payment = Payment(order_id=order.id, stripe_payment_intent_id=f"pi_sim_{secrets.token_hex(12)}",
                      amount=order.total, currency=order.currency, status=PaymentStatus.PENDING,
                      gateway="simulated")
    db.session.add(payment)
    db.session.flush()
    set_payment_status(payment, PaymentStatus.COMPLETED, actor=actor, note="demo payment")
    commit_stock(order)
    transition(order, OrderStatus.PAID, actor=actor, note="demo payment")
    order.paid_at = created_at + timedelta(minutes=5)
    shipment = fulfillment.create_fulfillment(order)
    steps = {OrderStatus.PACKED: 2, OrderStatus.SHIPPED: 3, OrderStatus.DELIVERED: 4}.get(status, 0)
    if steps >= 2:
        fulfillment.mark_processing(shipment, actor=actor)
        fulfillment.mark_packed(shipment, actor=actor)
    if steps >= 3:
        fulfillment.ship_fulfillment(shipment, carrier="DHL", tracking_number=f"DEMO{order.id:08d}",
                                     actor=actor)
    if steps >= 4:
        fulfillment.mark_delivered(shipment, actor=actor)
    db.session.flush()
    return order
