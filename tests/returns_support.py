"""Delivered, paid orders with discounts, tax and shipping, for the returns tests."""

from __future__ import annotations

import uuid
from datetime import timedelta
from decimal import Decimal

from ecom.commerce.models import Order, OrderItem, Payment
from ecom.commerce.status import OrderStatus, PaymentStatus
from ecom.db import money, utcnow
from ecom.extensions import db
from tests.factories import UserFactory, VariantFactory

_SEQ: list[int] = []


def delivered_order(lines, *, shipping: str = "5.00", shipping_tax: str = "0.40", user=None,
                    delivered_days_ago: float = 1, email: str | None = None) -> Order:
    """A delivered, paid order. ``lines``: (variant or None, price, quantity, discount, tax)."""
    user = user if user is not None else UserFactory()
    items = []
    for variant, price, quantity, discount, tax in lines:
        variant = variant or VariantFactory(price=Decimal(price))
        items.append(OrderItem(product_id=variant.product_id, variant_id=variant.id, sku=variant.sku,
                               product_name=variant.product.name, variant_name=variant.name,
                               quantity=quantity, price=Decimal(price),
                               line_total=money(Decimal(price) * quantity), discount=Decimal(discount),
                               tax=Decimal(tax)))
    subtotal = money(sum((i.line_total for i in items), Decimal("0")))
    discount = money(sum((i.discount for i in items), Decimal("0")))
    tax = money(sum((i.tax for i in items), Decimal("0")) + Decimal(shipping_tax))
    total = money(subtotal - discount + Decimal(shipping) + tax)
    _SEQ.append(1)
    address = {"full_name": "Ann Shopper", "street": "1 Main St", "city": "Springfield", "state": "IL",
               "postal_code": "62701", "country": "US", "phone": None}
    now = utcnow()
    email = email or (user.email if user else "guest@example.com")
    order = Order(user_id=user.id if user else None, email=email,
                  order_number=f"ORD-RET-{uuid.uuid4().hex[:8].upper()}", status=OrderStatus.DELIVERED,
                  subtotal=subtotal, discount_total=discount, tax=tax, shipping_cost=Decimal(shipping),
                  shipping_tax=Decimal(shipping_tax), total=total, currency="usd", shipping_address=address,
                  billing_address=address, items=items, paid_at=now - timedelta(days=delivered_days_ago + 3),
                  delivered_at=now - timedelta(days=delivered_days_ago))
    db.session.add(order)
    db.session.flush()
    db.session.add(Payment(order_id=order.id, stripe_payment_intent_id=f"pi_ret_{uuid.uuid4().hex[:16]}",
                           amount=total, refunded_amount=Decimal("0.00"), currency="usd",
                           status=PaymentStatus.COMPLETED, gateway="simulated"))
    db.session.flush()
    db.session.refresh(order)
    return order
