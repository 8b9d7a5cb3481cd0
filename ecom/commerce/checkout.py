"""Checkout: turning a cart into an order, and the one place a payment is finalised."""

from __future__ import annotations

import logging
import secrets
from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime

from flask import current_app
from sqlalchemy import select
from sqlalchemy.orm import joinedload
from sqlalchemy.orm.attributes import set_committed_value

from ecom.actor import Actor
from ecom.catalog.models import Variant
from ecom.commerce.cart import available_units, cart_totals
from ecom.commerce.gateway import Intent, PaymentGateway, gateway_for_intent, get_gateway, to_minor
from ecom.commerce.models import Cart, CartItem, Order, OrderItem, Payment
from ecom.commerce.orders import lock_order, order_event_data, record_creation, transition
from ecom.commerce.sql import insert_or_nothing
from ecom.commerce.status import OrderStatus, PaymentStatus
from ecom.db import utcnow
from ecom.errors import Conflict, EcomError, NotFound, OutOfStock, ValidationFailed
from ecom.extensions import db
from ecom.identity.models import Address
from ecom.inventory.services import commit_stock, release_stock, reserve_stock
from ecom.notifications.models import EventType
from ecom.notifications.services import emit

log = logging.getLogger(__name__)

# Crockford-style: no 0/O or 1/I/L, so order numbers survive being read over the phone.
ORDER_NUMBER_ALPHABET = "23456789ABCDEFGHJKMNPQRSTUVWXYZ"
EXPIRED_REASON = "reservation expired"
ADDRESS_FIELDS = ("full_name", "street", "city", "state", "postal_code", "country", "phone")


def _order_number(now: datetime | None = None) -> str:
    """``ORD-YYYYMMDD-XXXXXX``, random: whether it is still free is for the database to say."""
    day = (now or utcnow()).strftime("%Y%m%d")
    return f"ORD-{day}-{''.join(secrets.choice(ORDER_NUMBER_ALPHABET) for _ in range(6))}"


def new_order_number(now: datetime | None = None) -> str:
    """``ORD-YYYYMMDD-XXXXXX``, unused so far (the unique index has the last word)."""
    while True:
        candidate = _order_number(now)
        if not db.session.scalar(select(Order.id).where(Order.order_number == candidate)):
            return candidate


def _insert_order(**values) -> Order:
    """Insert an order under a fresh order number, in one statement: the unique index turns
    a number already taken (even by a transaction still running) into no row, and another
    number is drawn."""
    while True:
        order = db.session.scalar(
            insert_or_nothing(Order, {**values, "order_number": _order_number()}, unique=("order_number",))
            .returning(Order)
        )
        if order is not None:
            return order


def gateway() -> PaymentGateway:
    return get_gateway(current_app.config)


def _resolve_address(user, address_id: int | None, fields: dict | None, label: str) -> dict | None:
    if address_id is not None:
        address = db.session.get(Address, address_id)
        if address is None or address.user_id != user.id:
            raise NotFound(f"{label.capitalize()} address not found.")
        return address.snapshot()
    if fields is not None:
        return {key: fields.get(key) for key in ADDRESS_FIELDS}
    return None


def _user_cart(user) -> Cart | None:
    return db.session.scalar(select(Cart).where(Cart.user_id == user.id))


def start_checkout(
    user,
    *,
    shipping_address_id: int | None = None,
    shipping_address: dict | None = None,
    billing_address_id: int | None = None,
    billing_address: dict | None = None,
    idempotency_key: str | None = None,
) -> tuple[Order, Intent]:
    """Place an order from the user's cart, hold its stock and open a payment intent.

    The gateway is called before any inventory row is locked, so a slow gateway
    never holds up other shoppers; if stock then turns out short, the intent is
    cancelled (best effort) and nothing is written. The cart is kept until the
    payment succeeds.
    Raises NotFound (an address not the user's), ValidationFailed (no shipping
    address, an inactive product), Conflict (empty cart), OutOfStock,
    GatewayUnavailable. The caller rolls back on any of them.
    """
    lines = _cart_lines(user)
    if not lines:
        raise Conflict("Your cart is empty.")
    shipping = _resolve_address(user, shipping_address_id, shipping_address, "shipping")
    if shipping is None:
        raise ValidationFailed("A shipping address is required.",
                               {"shipping_address": ["Give shipping_address_id or shipping_address."]})
    billing = _resolve_address(user, billing_address_id, billing_address, "billing") or shipping
    _check_lines_sellable(lines)
    _check_lines_in_stock(lines)

    totals = cart_totals(lines)
    order = _insert_order(
        user_id=user.id,
        status=OrderStatus.CREATED,
        subtotal=totals.subtotal,
        tax=totals.tax,
        shipping_cost=totals.shipping_cost,
        total=totals.total,
        currency=current_app.config.get("CURRENCY", "usd"),
        shipping_address=shipping,
        billing_address=billing,
        email=user.email,
    )
    items = [_order_item(order, line) for line in lines]
    db.session.add_all(items)
    # The new order's lines are these: saying so spares the query that would look for them.
    set_committed_value(order, "items", items)

    payments = gateway()
    intent = payments.create_intent(
        to_minor(order.total),
        order.currency,
        {"order_number": order.order_number, "order_id": order.id, "user_id": user.id},
        idempotency_key=f"checkout-{user.id}-{idempotency_key}" if idempotency_key
        else f"checkout-{order.order_number}",
    )
    payment = Payment(
        order_id=order.id,
        stripe_payment_intent_id=intent.id,
        amount=order.total,
        currency=order.currency,
        status=PaymentStatus.PENDING,
        gateway=payments.name,
    )
    db.session.add(payment)
    # Likewise its one payment and its missing fulfillment, which its events and rendering ask for.
    set_committed_value(order, "payments", [payment])
    set_committed_value(order, "fulfillment", None)
    record_creation(order, actor=Actor.of_user(user))
    emit(EventType.ORDER_PLACED, order_event_data(order))
    # Stock last: the inventory rows other shoppers wait for stay locked only from here to the commit.
    try:
        reserve_stock(order, ttl_seconds=current_app.config["RESERVATION_TTL_SECONDS"])
    except OutOfStock:
        _cancel_intent_quietly(payments, intent.id)
        raise
    return order, intent


def _cart_lines(user) -> list[CartItem]:
    """The user's cart lines with their variants, stock and products, in one query."""
    return list(db.session.scalars(
        select(CartItem)
        .join(Cart, Cart.id == CartItem.cart_id)
        .where(Cart.user_id == user.id)
        .options(joinedload(CartItem.variant).joinedload(Variant.inventory), joinedload(CartItem.product))
        .order_by(CartItem.id)
    ))


def _order_item(order: Order, line: CartItem) -> OrderItem:
    return OrderItem(
        order_id=order.id,
        product_id=line.product_id,
        variant_id=line.variant_id,
        sku=line.sku,
        product_name=line.product.name,
        variant_name=line.variant.name,
        quantity=line.quantity,
        price=line.price,
        line_total=line.price * line.quantity,
    )


def _check_lines_sellable(lines: list[CartItem]) -> None:
    dead = [line.sku for line in lines
            if not (line.variant and line.variant.is_active and line.product and line.product.is_active)]
    if dead:
        raise ValidationFailed(f"No longer for sale: {', '.join(dead)}.", {"items": dead})


def _check_lines_in_stock(lines: list[CartItem]) -> None:
    """Refuse a cart already short of stock when it was read, before any order or payment
    intent exists. Only a shortcut for the refusal: ``reserve_stock`` has the last word."""
    wanted: dict[int, int] = defaultdict(int)
    for line in lines:
        wanted[line.variant_id] += line.quantity
    short = {line.sku: available_units(line.variant) for line in lines
             if available_units(line.variant) < wanted[line.variant_id]}
    if short:
        raise OutOfStock(short)


def _cancel_intent_quietly(payments: PaymentGateway, intent_id: str) -> None:
    """Cancel an intent nobody will pay; a failure only leaves an unpaid intent at the gateway."""
    try:
        payments.cancel_intent(intent_id)
    except EcomError as exc:
        log.warning("could not cancel payment intent %s: %s", intent_id, exc)


@dataclass(frozen=True)
class Finalized:
    """What ``finalize_payment`` did. ``outcome`` is one of the constants below."""

    order: Order
    outcome: str

    PAID = "paid"  # this call moved the order to paid
    ALREADY_PAID = "already_paid"  # someone else got there first; nothing changed
    DECLINED = "declined"  # payment failed; order still created with its stock held
    REFUNDED = "refunded"  # paid too late, stock gone: money sent back
    PENDING = "pending"  # the intent is still waiting (3-D Secure, processing...)
    CANCELLED = "cancelled"  # the order was cancelled before it was paid; nothing charged


def payment_for_intent(intent_id: str) -> Payment:
    """Raises NotFound for an intent no order of ours knows."""
    payment = db.session.scalar(select(Payment).where(Payment.stripe_payment_intent_id == intent_id))
    if payment is None:
        raise NotFound("Payment intent not found.")
    return payment


def finalize_payment(intent_id: str, *, actor: Actor, intent: Intent | None = None) -> Finalized:
    """Apply the gateway's verdict on a payment intent to its order, exactly once.

    Shared by the confirm endpoint and the webhook: both lock the order row
    first, so whichever arrives second sees the first one's result and changes
    nothing. ``intent`` is the gateway's own (or a signed webhook's) view; when
    omitted it is fetched from the gateway, never taken from the client.
    A success after the reservation expired takes the stock afresh if it is
    there, else refunds. Nothing ever moves backwards (no failure after a
    success). Raises NotFound, GatewayUnavailable.
    """
    payment = payment_for_intent(intent_id)
    if intent is None:
        intent = gateway_for_intent(current_app.config, intent_id).retrieve_intent(intent_id)
    order = lock_order(payment.order_id)
    db.session.refresh(payment)
    if intent.succeeded:
        return _apply_success(order, payment, intent, actor)
    if intent.declined or intent.status == "canceled":
        return _apply_failure(order, payment, intent)
    return Finalized(order, Finalized.PENDING)


def _apply_success(order: Order, payment: Payment, intent: Intent, actor: Actor) -> Finalized:
    if payment.status in (PaymentStatus.COMPLETED, PaymentStatus.REFUNDED):
        return Finalized(order, Finalized.ALREADY_PAID)
    if intent.amount_minor != to_minor(payment.amount):
        raise Conflict(f"Payment {intent.id} is for {intent.amount_minor} minor units, "
                       f"the order for {to_minor(payment.amount)}.")
    payment.status = PaymentStatus.COMPLETED
    payment.failure_message = None
    if order.status == OrderStatus.CREATED:
        try:
            commit_stock(order)
        except OutOfStock:
            # The reservation lapsed and someone else bought the units meanwhile.
            transition(order, OrderStatus.CANCELLED, actor=actor, note="paid after stock was sold")
            order.cancel_reason = "paid after the reservation expired; stock sold out"
            release_stock(order, expired=True)
            emit(EventType.ORDER_CANCELLED, order_event_data(order))
            return _refund_late_payment(order, payment, actor)
        return _mark_paid(order, payment, actor)
    if order.status == OrderStatus.CANCELLED and order.cancel_reason == EXPIRED_REASON:
        try:
            commit_stock(order)
        except OutOfStock:
            return _refund_late_payment(order, payment, actor)
        _revive_expired(order, actor)
        return _mark_paid(order, payment, actor, transitioned=True)
    # Cancelled by the shopper or staff while the payment was in flight.
    return _refund_late_payment(order, payment, actor)


def _mark_paid(order: Order, payment: Payment, actor: Actor, *, transitioned: bool = False) -> Finalized:
    from ecom.commerce.cart import clear_cart
    from ecom.fulfillment.services import create_fulfillment

    if not transitioned:
        transition(order, OrderStatus.PAID, actor=actor, note=f"payment {payment.stripe_payment_intent_id}")
    cart = _user_cart(order.user)
    if cart is not None:
        clear_cart(cart)
    create_fulfillment(order)
    emit(EventType.ORDER_PAID, order_event_data(order))
    db.session.flush()
    return Finalized(order, Finalized.PAID)


def _revive_expired(order: Order, actor: Actor) -> None:
    """The one sanctioned way out of ``cancelled``: the expiry job cancelled an order
    whose payment then succeeded, and its stock could be taken again. Cancelling
    was our doing, not the shopper's, so the order they paid for goes ahead."""
    transition(order, OrderStatus.PAID, actor=actor, note="late payment; stock taken again",
               late_payment=True)


def _refund_late_payment(order: Order, payment: Payment, actor: Actor) -> Finalized:
    refund = gateway_for_intent(current_app.config, payment.stripe_payment_intent_id).refund(
        payment.stripe_payment_intent_id, None
    )
    payment.status = PaymentStatus.REFUNDED
    payment.refunded_amount = payment.amount
    emit(EventType.PAYMENT_REFUNDED, {**order_event_data(order), "amount": str(payment.amount),
                                      "refund_id": refund.id, "reason": "order no longer available"})
    db.session.flush()
    return Finalized(order, Finalized.REFUNDED)


def _apply_failure(order: Order, payment: Payment, intent: Intent) -> Finalized:
    if order.status == OrderStatus.CANCELLED and payment.status != PaymentStatus.PENDING:
        return Finalized(order, Finalized.CANCELLED)
    if payment.status != PaymentStatus.PENDING:
        # Never backwards: a failure report after success (or a repeat) changes nothing.
        outcome = Finalized.DECLINED if payment.status == PaymentStatus.FAILED else Finalized.ALREADY_PAID
        return Finalized(order, outcome)
    payment.status = PaymentStatus.FAILED
    payment.failure_message = intent.failure_message or intent.status
    if order.status == OrderStatus.CANCELLED:
        # The intent was cancelled along with the order: nothing to tell the shopper.
        db.session.flush()
        return Finalized(order, Finalized.CANCELLED)
    emit(EventType.PAYMENT_FAILED, {**order_event_data(order), "reason": payment.failure_message})
    db.session.flush()
    return Finalized(order, Finalized.DECLINED)


def confirm_payment(user, intent_id: str, payment_method: str | None = None) -> Finalized:
    """The shopper says they paid: ask the gateway, confirming with ``payment_method``
    if the intent still needs one, then finalise.

    Raises NotFound (not the user's intent), GatewayUnavailable.
    """
    payment = payment_for_intent(intent_id)
    if payment.order.user_id != user.id:
        raise NotFound("Payment intent not found.")
    payments = gateway_for_intent(current_app.config, intent_id)
    intent = payments.retrieve_intent(intent_id)
    if intent.status in ("requires_payment_method", "requires_confirmation"):
        method = payment_method or ("pm_card_visa" if payments.name == "simulated" else None)
        if method:
            intent = payments.confirm_intent(intent_id, method)
    return finalize_payment(intent_id, actor=Actor.of_user(user), intent=intent)
