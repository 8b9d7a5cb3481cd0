"""Demo orders: walked to each status through the real services, for the demo shop and tests."""

from __future__ import annotations

import secrets
from datetime import timedelta

from sqlalchemy import select
from sqlalchemy.orm.attributes import set_committed_value

from ecom.actor import SYSTEM, Actor
from ecom.catalog.models import Variant
from ecom.commerce.cancellation import cancel_order
from ecom.commerce.cart import variant_line
from ecom.commerce.checkout import insert_order, priced_item_values, priced_order_values
from ecom.commerce.guest_orders import issue_order_token
from ecom.commerce.models import Order, OrderItem, Payment, Return
from ecom.commerce.orders import record_creation, transition
from ecom.commerce.payments import set_payment_status
from ecom.commerce.returns import LineRequest, Receipt, approve_return, receive_return, request_return
from ecom.commerce.status import OrderStatus, PaymentStatus, ReturnCondition, ReturnStatus
from ecom.db import utcnow
from ecom.extensions import db
from ecom.fulfillment import services as fulfillment
from ecom.identity.models import User
from ecom.inventory.services import commit_stock, default_location, reserve_stock
from ecom.pricing.quote import Customer, Destination, quote_lines
from ecom.pricing.uses import claim_uses
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


# What the demo returns' shoppers said, and the states the queue shows them in.
DEMO_RETURNS = [(ReturnStatus.REQUESTED, "too small"), (ReturnStatus.APPROVED, "not as pictured"),
                (ReturnStatus.RECEIVED, "arrived scratched")]


def seed_demo_returns(customer: User, *, admin: Actor = SYSTEM, warehouse: Actor = SYSTEM) -> list[Return]:
    """The returns queue's demo: a delivered order of the customer's per state of DEMO_RETURNS,
    with one unit of its first line asked back and walked to that state through the real
    services (the received one restocked at the default warehouse). The customer's other
    delivered orders are left alone, for a shopper to return."""
    # Past the variants the other demo orders use (seed_demo_orders), where the catalog is big enough.
    wanted = 2 * len(DEMO_RETURNS)
    variants = list(db.session.scalars(select(Variant).order_by(Variant.id).limit(12 + wanted)))
    variants = variants[12:] if len(variants) >= 12 + wanted else variants
    shopper = Actor.of_user(customer)
    made = []
    for n, (status, reason) in enumerate(DEMO_RETURNS):
        lines = [(variants[(2 * n) % len(variants)], 2), (variants[(2 * n + 1) % len(variants)], 1)]
        order = create_demo_order(customer, lines, status=OrderStatus.DELIVERED, days_ago=6 + n)
        ret = request_return(order, [LineRequest(order.items[0].sku, 1, reason)], actor=shopper)
        if status in (ReturnStatus.APPROVED, ReturnStatus.RECEIVED):
            approve_return(ret, actor=admin)
        if status == ReturnStatus.RECEIVED:
            receive_return(ret, {line.id: Receipt(ReturnCondition.RESTOCK, default_location().id)
                                 for line in ret.lines}, actor=warehouse)
        made.append(ret)
    return made


def create_demo_order(user: User, lines: list[tuple[Variant, int]], *, status: OrderStatus,
                      actor: Actor = SYSTEM, days_ago: int = 0, address: dict | None = None) -> Order:
    """An order walked to ``status`` through the real services (stock reserved and committed,
    fulfillment steps, history rows; a cancelled one through the one cancel path), paid by
    the simulated gateway. For demos and tests."""
    address = address or DEMO_ADDRESS
    config = settings()
    # Priced by the one pricing function, like checkout (the cheapest method, no voucher).
    quote = quote_lines([variant_line(v, q) for v, q in lines], Destination.of_address(address))
    created_at = utcnow() - timedelta(days=days_ago, hours=1)
    order = insert_order(user_id=user.id, status=OrderStatus.CREATED, **priced_order_values(quote),
                         shipping_address=address, billing_address=address, email=user.email,
                         created_at=created_at)
    items = [OrderItem(order_id=order.id, product_id=v.product_id, variant_id=v.id,
                       product_name=v.product.name, variant_name=v.name, **priced_item_values(priced))
             for (v, _), priced in zip(lines, quote.lines, strict=True)]
    db.session.add_all(items)
    db.session.flush()
    set_committed_value(order, "items", items)
    if quote.promotions:
        claim_uses(order.id, quote, customer=Customer(user_id=user.id, email=user.email))
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
