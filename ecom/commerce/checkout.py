"""Checkout: turning a cart into an order, and the one place a payment is finalised."""

from __future__ import annotations

import hashlib
import logging
import secrets
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from enum import StrEnum
from functools import cache

from sqlalchemy import bindparam, func, select
from sqlalchemy.orm.attributes import set_committed_value

from ecom.actor import Actor
from ecom.catalog.models import Product, Variant
from ecom.commerce.cancellation import EXPIRED_REASON, cancel_order
from ecom.commerce.cart import clear_cart
from ecom.commerce.gateways.base import (
    AUTHENTICATION_FAILED,
    CANCELED,
    DEFAULT_TEST_PAYMENT_METHOD,
    REQUIRES_ACTION,
    Intent,
    PaymentGateway,
    to_minor,
)
from ecom.commerce.guest_orders import (
    Guest,
    check_guest_order_cap,
    guest_actor,
    issue_order_token,
    token_opens,
)
from ecom.commerce.models import Cart, CartItem, Order, OrderItem, Payment
from ecom.commerce.orders import creation_row, lock_order, order_event_data, record_history, transition
from ecom.commerce.payments import (
    cancel_payment,
    refundable_amount,
    request_refund,
    set_payment_status,
)
from ecom.commerce.sql import insert_or_nothing_statement, insert_persistent
from ecom.commerce.status import MONEY_TAKEN, EventKind, OrderStatus, PaymentStatus
from ecom.db import money, utcnow
from ecom.errors import Conflict, EcomError, NotFound, OutOfStock, ValidationFailed
from ecom.extensions import db
from ecom.fulfillment.services import create_fulfillments
from ecom.identity.models import Address
from ecom.inventory.models import ReservationStatus, StockReservation, shipping_available_sql
from ecom.inventory.services import commit_stock, pickup_location, reserve_stock, units_at
from ecom.notifications.models import EventType
from ecom.notifications.services import emit, event_row
from ecom.pricing.engine import LineInput, Quote, QuoteLine, VoucherRefused
from ecom.pricing.models import MethodKind
from ecom.pricing.quote import Customer, Destination, quote_lines
from ecom.pricing.uses import claim_uses, release_uses, restore_uses
from ecom.row_writes import RowWrite
from ecom.runtime import payment_gateway, settings
from ecom.unit_of_work import after_rollback

log = logging.getLogger(__name__)

# Crockford-style: no 0/O or 1/I/L, so order numbers survive being read over the phone.
ORDER_NUMBER_ALPHABET = "23456789ABCDEFGHJKMNPQRSTUVWXYZ"
ADDRESS_FIELDS = ("full_name", "street", "city", "state", "postal_code", "country", "phone")


def _order_number(now: datetime | None = None) -> str:
    """``ORD-YYYYMMDD-XXXXXX``, random: whether it is still free is for the database to say."""
    day = (now or utcnow()).strftime("%Y%m%d")
    return f"ORD-{day}-{''.join(secrets.choice(ORDER_NUMBER_ALPHABET) for _ in range(6))}"


def insert_order(**values) -> Order:
    """Insert an order under a fresh order number, in one statement: the unique index turns
    a number already taken (even by a transaction still running) into no row, and another
    number is drawn."""
    while True:
        inserted = insert_persistent(Order, [{**values, "order_number": _order_number()}],
                                     _insert_order_statement(db.session.get_bind().dialect.name))
        if inserted:
            return inserted[0]


@cache
def _insert_order_statement(dialect: str):
    return insert_or_nothing_statement(Order.__table__, dialect, unique=("order_number",))


def _resolve_address(user, address_id: int | None, fields: dict | None, label: str) -> dict | None:
    """``user`` is None for a guest, who has no saved addresses."""
    if address_id is not None:
        address = db.session.get(Address, address_id)
        if address is None or user is None or address.user_id != user.id:
            raise NotFound(f"{label.capitalize()} address not found.")
        return address.snapshot()
    if fields is not None:
        return {key: fields.get(key) for key in ADDRESS_FIELDS}
    return None


def _user_cart(user) -> Cart | None:
    return db.session.scalar(select(Cart).where(Cart.user_id == user.id))


def _account(buyer):
    """The buyer's user, or None for a guest."""
    return None if isinstance(buyer, Guest) else buyer


def start_checkout(
    user,
    *,
    shipping_address_id: int | None = None,
    shipping_address: dict | None = None,
    billing_address_id: int | None = None,
    billing_address: dict | None = None,
    shipping_method: str | None = None,
    voucher_code: str | None = None,
    idempotency_key: str | None = None,
) -> tuple[Order, Intent]:
    """Place an order from the user's cart, hold its stock and open a payment intent.

    A cart has at most one open unpaid order: the cart's row is locked first, so two
    checkouts of one cart run one after the other, and the new order replaces the cart's
    previous open unpaid ones (each cancelled through ``cancel_order``, which releases
    its stock and cancels its intent after the commit) - always, even when the cart did
    not change: a new intent means the shopper is paying afresh, and the old intent is
    never left open beside the new one. The cart's orders are those its payment intents
    placed (a signed-in shopper has one cart). Orders held without an intent (demo data,
    other sources) are not replaced but count towards MAX_OPEN_UNPAID_ORDERS, the most a
    shopper may have waiting for payment.

    The gateway is called before any inventory row is locked, so a slow gateway
    never holds up other shoppers (only this cart's next checkout waits); if stock then
    turns out short, the intent is cancelled (best effort, after the reservation's locks
    are let go) and nothing is written: the previous order stays as it was. The cart is
    kept until the payment succeeds.

    The order is priced by the one pricing function (``quote_lines``) for the shipping
    address, ``shipping_method`` (default: the cheapest offered) and ``voucher_code``, and
    stores what was priced. The uses of its promotions are taken with the stock (the
    voucher's limits hold under any concurrency; ``ecom.pricing.uses``); a voucher used up
    meanwhile is refused like a shortage.

    ``user`` may be a ``Guest`` (guest_orders): their guest cart (by its token) becomes an
    order with no user, their email and client address, and the cart's previous open
    unpaid order is replaced the same way; the cap is then per client address
    (MAX_OPEN_GUEST_ORDERS_PER_IP), a voucher's per-customer limit counts the guest's
    email, and ``issue_order_token`` gives the order its token.
    Raises NotFound (an address not the user's, or any saved address for a guest),
    ValidationFailed (no shipping address, an inactive product, an unknown country or one
    not shipped to, VoucherRefused), Conflict (empty cart, too many open unpaid orders, a
    sale that ran out meanwhile), OutOfStock, GatewayUnavailable. The caller rolls back on
    any of them (for a shortfall or a refused voucher, the rollback cancels the intent:
    ``unit_of_work.after_rollback``).
    """
    account = _account(user)
    cart_id, lines = _locked_cart_lines(user)
    if not lines:
        raise Conflict("Your cart is empty.")
    shipping = _resolve_address(account, shipping_address_id, shipping_address, "shipping")
    if shipping is None:
        raise ValidationFailed("A shipping address is required.",
                               {"shipping_address": ["Give shipping_address_id or shipping_address."]})
    billing = _resolve_address(account, billing_address_id, billing_address, "billing") or shipping
    _check_lines_sellable(lines)
    if account is None:
        replaced = _open_checkout_order_ids(user, cart_id)
        check_guest_order_cap(user.client_ip, replaced=replaced)
    else:
        replaced = _open_orders_within_cap(user)
    customer = Customer(user_id=account.id if account else None, email=user.email,
                        replacing=frozenset(replaced))
    quote = quote_lines([line.pricing for line in lines], Destination.of_address(shipping),
                        shipping_method=shipping_method, voucher_code=voucher_code, customer=customer)
    # A pickup order's stock is its store's only (reserve_stock reads order.pickup_store_id).
    _check_lines_in_stock(lines, held=_held_units(replaced),
                          pickup_store_id=priced_order_values(quote)["pickup_store_id"])
    order = insert_order(
        user_id=account.id if account else None,
        cart_id=cart_id,
        client_ip=None if account else user.client_ip,
        status=OrderStatus.CREATED,
        **priced_order_values(quote),
        shipping_address=shipping,
        billing_address=billing,
        email=user.email,
    )
    if account is None:
        issue_order_token(order)
    _insert_lines(order, lines, quote)
    payments = payment_gateway()
    intent = payments.create_intent(
        to_minor(order.total),
        order.currency,
        {"order_number": order.order_number, "order_id": order.id,
         **({"user_id": account.id} if account else {"guest": "true"})},
        idempotency_key=f"checkout-{_idempotency_owner(user)}-{idempotency_key}" if idempotency_key
        else f"checkout-{order.order_number}",
    )
    actor = Actor.of_user(user) if account else user.actor
    # The payment carries the order's first history row and its ORDER_PLACED event along.
    _insert_payment(order, intent.id, gateway=payments.name,
                    along=(creation_row(order, actor=actor),
                           event_row(EventType.ORDER_PLACED, order_event_data(order))))
    # Stock last: the inventory rows other shoppers wait for stay locked only from here to the
    # commit. The replaced orders' units are released first, so the new order may take them.
    # On a shortfall the intent is cancelled once the caller has rolled back, so the gateway
    # is not called while the rows the reservation locked are held. The promotions' uses are
    # taken just before the stock (their rows lock before inventory rows everywhere) and, like
    # it, only after the replaced orders gave theirs back.
    try:
        for previous_id in replaced:
            _replace_order(previous_id, by=order, actor=actor)
        if quote.promotions:
            claim_uses(order.id, quote, customer=customer)
        reserve_stock(order, ttl_seconds=settings()["RESERVATION_TTL_SECONDS"])
    except (OutOfStock, VoucherRefused, Conflict):
        intent_id = intent.id
        after_rollback(lambda: _cancel_abandoned_intent(payments, intent_id))
        raise
    return order, intent


REPLACED_REASON = "replaced by a new checkout of the same cart"


def _insert_lines(order: Order, lines: list[CheckoutLine], quote: Quote) -> None:
    items = insert_persistent(OrderItem, [
        _order_item_values(order, line, priced) for line, priced in zip(lines, quote.lines, strict=True)])
    # The new order's lines are these and it has no fulfillments yet: saying so spares the
    # queries its event's data and its rendering would make.
    set_committed_value(order, "items", items)
    set_committed_value(order, "fulfillments", [])


def _insert_payment(order: Order, intent_id: str, *, gateway: str, along: tuple[RowWrite, ...]) -> None:
    [payment] = insert_persistent(Payment, [{
        "order_id": order.id, "stripe_payment_intent_id": intent_id, "amount": order.total,
        "currency": order.currency, "status": PaymentStatus.PENDING, "gateway": gateway}], along=along)
    set_committed_value(order, "payments", [payment])  # likewise, for its rendering


@dataclass(frozen=True)
class CheckoutLine:
    """A cart line as checkout reads it: the line, its variant's current price and details,
    its product, and the units the shipping locations have of it (``available_units``)."""

    id: int
    product_id: int
    variant_id: int
    sku: str
    quantity: int
    unit_price: Decimal | None  # the variant's current price; None when the variant is gone
    product_name: str | None
    variant_name: str | None
    sellable: bool  # variant and product both still there and active
    category_id: int | None
    tax_class_id: int | None
    compare_at_price: Decimal | None
    weight: Decimal | None
    shipping_available: int

    @property
    def pricing(self) -> LineInput:
        """The line as pricing sees it, at the current price (``ecom.commerce.cart.line_input``)."""
        return LineInput(sku=self.sku, quantity=self.quantity, unit_price=money(self.unit_price),
                         product_id=self.product_id, category_id=self.category_id,
                         tax_class_id=self.tax_class_id, compare_at_price=self.compare_at_price,
                         weight=self.weight)


@cache
def _cart_lines_statement(guest: bool):
    """The buyer's cart row, locked, joined with its lines, their variants and products and
    each line's shipping stock: one statement, rows rather than ORM objects (every checkout
    runs it). FOR NO KEY UPDATE OF carts only: adding a line (whose foreign key takes a KEY
    SHARE lock on the cart) does not wait for a checkout. A checkout that waited for another
    of the same cart reads the lines as they were when it started waiting; the other checkout
    does not change them."""
    carts, items = Cart.__table__, CartItem.__table__
    variants, products = Variant.__table__, Product.__table__
    owner = ((carts.c.token == bindparam("cart_token"), carts.c.user_id.is_(None)) if guest
             else (carts.c.user_id == bindparam("user_id"),))
    return (
        select(carts.c.id.label("cart_id"), items.c.id, items.c.product_id, items.c.variant_id, items.c.sku,
               items.c.quantity, variants.c.price.label("unit_price"), products.c.name.label("product_name"),
               variants.c.name.label("variant_name"),
               (variants.c.is_active & products.c.is_active).label("sellable"),
               products.c.category_id, products.c.tax_class_id, variants.c.compare_at_price,
               variants.c.weight,
               shipping_available_sql(items.c.variant_id).label("shipping_available"))
        .select_from(carts.outerjoin(items, items.c.cart_id == carts.c.id)
                     .outerjoin(variants, variants.c.id == items.c.variant_id)
                     .outerjoin(products, products.c.id == items.c.product_id))
        .where(*owner)
        .order_by(items.c.id)
        .with_for_update(of=carts, key_share=True)
    )


def _locked_cart_lines(buyer) -> tuple[int | None, list[CheckoutLine]]:
    """The buyer's cart id (None: no cart) and its lines, the cart's row locked until the
    commit: one checkout of a cart at a time."""
    guest = isinstance(buyer, Guest)
    params = {"cart_token": buyer.cart_token} if guest else {"user_id": buyer.id}
    rows = db.session.execute(_cart_lines_statement(guest), params).all()
    if not rows:
        return None, []
    return rows[0].cart_id, [
        CheckoutLine(id=row.id, product_id=row.product_id, variant_id=row.variant_id, sku=row.sku,
                     quantity=row.quantity, unit_price=row.unit_price, product_name=row.product_name,
                     variant_name=row.variant_name, sellable=bool(row.sellable),
                     category_id=row.category_id, tax_class_id=row.tax_class_id,
                     compare_at_price=row.compare_at_price, weight=row.weight,
                     shipping_available=int(row.shipping_available or 0))
        for row in rows if row.id is not None]


def _idempotency_owner(buyer) -> str:
    """Whose Idempotency-Key it is, for the gateway's key: the user, or the guest cart (by a
    hash: the cart token is a secret and goes to no one)."""
    if isinstance(buyer, Guest):
        return "cart-" + hashlib.sha256(buyer.cart_token.encode()).hexdigest()[:32]
    return str(buyer.id)


def _open_checkout_order_ids(user, cart_id: int | None = None) -> list[int]:
    """The open unpaid orders the user's cart placed: ``created`` ones with a payment intent
    (not a guest order the user claimed: their own cart did not place it). A guest's are
    those of their guest cart (``cart_id``), still without a user."""
    owner = ((Order.user_id == user.id, Order.order_token_hash.is_(None)) if _account(user)
             else (Order.cart_id == cart_id, Order.user_id.is_(None)))
    return list(db.session.scalars(
        select(Order.id)
        .where(*owner, Order.status == OrderStatus.CREATED, _has_payment())
        .order_by(Order.id)
    ))


def _has_payment():
    return select(Payment.id).where(Payment.order_id == Order.id).exists()


def _refuse_beyond_cap(kept: int) -> None:
    limit = settings()["MAX_OPEN_UNPAID_ORDERS"]
    if kept >= limit:
        raise Conflict(f"You have {kept} orders waiting for payment (at most {limit}); "
                       "pay or cancel one of them before placing another.")


def _open_orders_within_cap(user) -> list[int]:
    """A signed-in shopper's ``_open_checkout_order_ids`` (this checkout replaces them), in the
    statement that counts the orders held without an intent (demo data, other sources): a new
    order is refused when MAX_OPEN_UNPAID_ORDERS of those hold stock unpaid (the replaced ones
    do not count). Raises Conflict."""
    rows = db.session.execute(_open_orders_statement(), {"user_id": user.id}).all()
    _refuse_beyond_cap(sum(1 for row in rows if not row.placed))
    return [row.id for row in rows if row.placed and row.own]


@cache
def _open_orders_statement():
    """Every ``created`` order of ``:user_id``: whether a payment intent placed it, and
    whether it is the user's own (not a guest order they claimed)."""
    orders, payments = Order.__table__, Payment.__table__
    placed = select(payments.c.id).where(payments.c.order_id == orders.c.id).exists()
    return (select(orders.c.id, orders.c.order_token_hash.is_(None).label("own"), placed.label("placed"))
            .where(orders.c.user_id == bindparam("user_id"), orders.c.status == OrderStatus.CREATED.value)
            .order_by(orders.c.id))


def _held_units(order_ids: list[int]) -> dict[int, int]:
    """Units per variant that these orders hold (active reservations): theirs to give up."""
    if not order_ids:
        return {}
    rows = db.session.execute(
        select(StockReservation.variant_id, func.sum(StockReservation.quantity))
        .where(StockReservation.order_id.in_(order_ids),
               StockReservation.status == ReservationStatus.ACTIVE)
        .group_by(StockReservation.variant_id)
    )
    return {variant_id: int(units) for variant_id, units in rows}


def _replace_order(previous_id: int, *, by: Order, actor: Actor) -> None:
    """Cancel a replaced order through the one cancel path, unless a payment for it got
    there first (then it is paid, and stays so)."""
    previous = lock_order(previous_id)
    if previous.status != OrderStatus.CREATED:
        return
    cancel_order(previous, actor=actor, reason=f"{REPLACED_REASON} ({by.order_number})")


def priced_order_values(quote: Quote) -> dict:
    """An order's columns for what ``quote`` priced (kept as they are whatever changes later)."""
    method = quote.shipping_method
    return {
        "subtotal": quote.subtotal,
        "discount_total": quote.discount_total,
        "tax": quote.tax_total,
        "shipping_cost": quote.shipping_cost,
        "shipping_tax": quote.shipping_tax,
        "total": quote.total,
        "currency": quote.currency,
        "prices_include_tax": quote.prices_include_tax,
        "shipping_method_code": method.code if method else None,
        "shipping_method_name": method.name if method else None,
        "voucher_code": quote.voucher.code if quote.voucher else None,
        "pickup_store_id": method.store_id if method and method.kind == MethodKind.PICKUP else None,
    }


def priced_item_values(priced: QuoteLine) -> dict:
    """An order line's columns for its line of the quote."""
    return {"sku": priced.sku, "quantity": priced.quantity, "price": priced.unit_price,
            "line_total": priced.line_total, "discount": priced.discount, "tax": priced.tax,
            "tax_rate": priced.tax_rate}


def _order_item_values(order: Order, line: CheckoutLine, priced: QuoteLine) -> dict:
    """The order line's columns for a cart line, as priced: at the current price, with its
    discount and tax."""
    return {
        "order_id": order.id,
        "product_id": line.product_id,
        "variant_id": line.variant_id,
        "product_name": line.product_name,
        "variant_name": line.variant_name,
        **priced_item_values(priced),
    }


def _check_lines_sellable(lines: list[CheckoutLine]) -> None:
    dead = [line.sku for line in lines if not line.sellable]
    if dead:
        raise ValidationFailed(f"No longer for sale: {', '.join(dead)}.", {"items": dead})


def _check_lines_in_stock(lines: list[CheckoutLine], *, held: dict[int, int] | None = None,
                          pickup_store_id: int | None = None) -> None:
    """Refuse a cart already short of stock when it was read, before any order or payment
    intent exists, counting the units ``held`` by the orders it replaces as available: for
    shipping, over the shipping locations; for a pickup, at the store's location (a store
    without click & collect is refused here, ValidationFailed).
    Only a shortcut for the refusal: ``reserve_stock`` has the last word."""
    held = held or {}
    pickup = pickup_location(pickup_store_id) if pickup_store_id is not None else None
    if pickup is None:
        available = {line.variant_id: line.shipping_available for line in lines}
    else:
        available = units_at(pickup.id, [line.variant_id for line in lines])
    wanted: dict[int, int] = defaultdict(int)
    for line in lines:
        wanted[line.variant_id] += line.quantity
    short = {line.sku: available.get(line.variant_id, 0) + held.get(line.variant_id, 0) for line in lines
             if available.get(line.variant_id, 0) + held.get(line.variant_id, 0) < wanted[line.variant_id]}
    if short:
        raise OutOfStock(short, where=f"at {pickup.name}" if pickup is not None else "")


def _cancel_abandoned_intent(payments: PaymentGateway, intent_id: str) -> None:
    """Cancel an intent nobody will pay (no order refers to it); a failure only leaves an
    unpaid intent at the gateway. Called with no row locked."""
    try:
        payments.cancel_intent(intent_id)
    except EcomError as exc:
        log.warning("could not cancel payment intent %s: %s", intent_id, exc)


@dataclass(frozen=True)
class Finalized:
    """What ``finalize_payment`` did. ``outcome`` is one of the constants below."""

    order: Order
    outcome: str
    # PENDING because the customer must act (3-D Secure), and where they go to do it (None:
    # Stripe's own SDK handles it in the page, when no return_url was given).
    action_required: bool = False
    next_action_url: str | None = None

    PAID = "paid"  # this call moved the order to paid
    ALREADY_PAID = "already_paid"  # someone else got there first; nothing changed
    DECLINED = "declined"  # payment failed; order still created with its stock held
    REFUNDED = "refunded"  # paid too late (stock gone, order cancelled, or paid twice): refund requested
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
    omitted it is fetched from the gateway, never taken from the client (and
    before any lock is taken). What happens is ``FINALISER_CASES``' row for the
    verdict, the payment's status and the order's state. Nothing ever moves
    backwards (no failure after a success). Refunds it decides are made after
    the commit. Raises NotFound, GatewayUnavailable, Conflict (a success for
    another amount than the order's).
    """
    payment = payment_for_intent(intent_id)
    if intent is None:
        intent = payment_gateway(intent_id).retrieve_intent(intent_id)
    order = lock_order(payment.order_id)
    db.session.refresh(payment)
    action = finaliser_action(verdict_of(intent), PaymentStatus(payment.status), order_state(order))
    return action(order, payment, intent, actor)


# --- the finaliser's cases -------------------------------------------------------------------


class Verdict(StrEnum):
    """The gateway's word on an intent."""

    SUCCEEDED = "succeeded"
    FAILED = "failed"  # declined, or the intent was cancelled
    PENDING = "pending"  # still waiting (3-D Secure, processing...)


class OrderState(StrEnum):
    """An order as the finaliser sees it."""

    CREATED = "created"  # waiting for this payment, stock held
    EXPIRED = "expired"  # cancelled by the expiry job: a late payment may take the stock again
    CANCELLED = "cancelled"  # cancelled by the shopper, staff or a refund: stays cancelled
    UNDER_WAY = "under_way"  # paid already (and maybe further): another payment is a double payment


def verdict_of(intent: Intent) -> Verdict:
    if intent.succeeded:
        return Verdict.SUCCEEDED
    if intent.declined or intent.status == CANCELED:
        return Verdict.FAILED
    return Verdict.PENDING


def order_state(order: Order) -> OrderState:
    if order.status == OrderStatus.CREATED:
        return OrderState.CREATED
    if order.status == OrderStatus.CANCELLED:
        return OrderState.EXPIRED if order.cancel_reason == EXPIRED_REASON else OrderState.CANCELLED
    return OrderState.UNDER_WAY


SOLD_OUT_REASON = "paid after the reservation expired; stock sold out"
LATE_REFUND_REASON = "order no longer available"


def _pay(order: Order, payment: Payment, intent: Intent, actor: Actor) -> Finalized:
    """The normal case. If the reservation lapsed and someone else bought the units meanwhile,
    the order is cancelled (the one cancel path) and the money refunded."""
    _take_money(payment, intent, actor)
    try:
        commit_stock(order)
    except OutOfStock:
        cancel_order(order, actor=actor, reason=SOLD_OUT_REASON, expired=True)
        return Finalized(order, Finalized.REFUNDED)
    transition(order, OrderStatus.PAID, actor=actor, note=f"payment {payment.stripe_payment_intent_id}")
    return _mark_paid(order, payment)


def _revive(order: Order, payment: Payment, intent: Intent, actor: Actor) -> Finalized:
    """The one sanctioned way out of ``cancelled``: the expiry job cancelled an order whose
    payment then succeeded, and its stock could be taken again. Cancelling was our doing,
    not the shopper's, so the order they paid for goes ahead; without the stock, a refund."""
    _take_money(payment, intent, actor)
    # The uses expiry gave back are taken again, before the stock (promotion rows lock
    # before inventory rows everywhere); given back once more if the stock is gone.
    restore_uses(order.id)
    try:
        commit_stock(order)
    except OutOfStock:
        release_uses(order.id)
        return _refund_everything(order, payment, actor)
    transition(order, OrderStatus.PAID, actor=actor, note="late payment; stock taken again",
               late_payment=True)
    return _mark_paid(order, payment)


def _refund_late(order: Order, payment: Payment, intent: Intent, actor: Actor) -> Finalized:
    """Money for an order that no longer wants it (cancelled while the payment was in flight,
    or paid by another payment already): take it on the books, then give it back."""
    _take_money(payment, intent, actor)
    return _refund_everything(order, payment, actor)


def _record_decline(order: Order, payment: Payment, intent: Intent, actor: Actor) -> Finalized:
    """A declined attempt: the order keeps its stock and the shopper may try again."""
    message = intent.failure_message or intent.status
    set_payment_status(payment, PaymentStatus.FAILED, actor=actor, note=message)
    payment.failure_message = message
    emit(EventType.PAYMENT_FAILED, {**order_event_data(order), "reason": message})
    db.session.flush()
    return Finalized(order, Finalized.DECLINED)


def _close_unpaid(order: Order, payment: Payment, intent: Intent, actor: Actor) -> Finalized:
    """The intent of a cancelled order failed or was cancelled: nothing to tell the shopper.
    An intent the gateway cancelled already is noted as such; a declined one is still open
    there, so it is cancelled like any other (after the commit, retried until done)."""
    note = intent.failure_message or intent.status
    if intent.status == CANCELED:
        set_payment_status(payment, PaymentStatus.CANCELLED, actor=actor, note=note)
        payment.intent_cancelled_at = utcnow()
    else:
        cancel_payment(payment, actor=actor, note=note)
    db.session.flush()
    return Finalized(order, Finalized.CANCELLED)


def _outcome_only(outcome: str):
    """An action that changes nothing and reports ``outcome``."""

    def unchanged(order: Order, payment: Payment, intent: Intent, actor: Actor) -> Finalized:
        return Finalized(order, outcome)

    unchanged.__name__ = f"nothing_{outcome}"
    return unchanged


def _take_money(payment: Payment, intent: Intent, actor: Actor) -> None:
    if intent.amount_minor != to_minor(payment.amount):
        raise Conflict(f"Payment {intent.id} is for {intent.amount_minor} minor units, "
                       f"the order for {to_minor(payment.amount)}.")
    set_payment_status(payment, PaymentStatus.COMPLETED, actor=actor, note=f"payment {intent.id} succeeded")
    payment.failure_message = None


def _refund_everything(order: Order, payment: Payment, actor: Actor) -> Finalized:
    request_refund(payment, refundable_amount(payment), actor=actor, reason=LATE_REFUND_REASON)
    return Finalized(order, Finalized.REFUNDED)


def _mark_paid(order: Order, payment: Payment) -> Finalized:
    # The cart that placed it (a guest's, too); orders from before carts were noted: the user's.
    cart = (db.session.get(Cart, order.cart_id) if order.cart_id is not None
            else _user_cart(order.user) if order.user is not None else None)
    if cart is not None:
        clear_cart(cart)
    create_fulfillments(order)
    emit(EventType.ORDER_PAID, order_event_data(order))
    db.session.flush()
    return Finalized(order, Finalized.PAID)


ANY_PAYMENT = frozenset(PaymentStatus)
NOT_PAID = ANY_PAYMENT - MONEY_TAKEN  # pending, failed, cancelled
PENDING_ONLY = frozenset({PaymentStatus.PENDING})
FAILED_ONLY = frozenset({PaymentStatus.FAILED})
CANCELLED_ONLY = frozenset({PaymentStatus.CANCELLED})
ANY_ORDER = frozenset(OrderState)
CREATED = frozenset({OrderState.CREATED})
EXPIRED = frozenset({OrderState.EXPIRED})
OPEN = frozenset({OrderState.CREATED, OrderState.UNDER_WAY})
CLOSED = frozenset({OrderState.EXPIRED, OrderState.CANCELLED})
# Cancelled by the shopper or staff while the payment was in flight, or paid by another payment.
NOT_WANTED = frozenset({OrderState.CANCELLED, OrderState.UNDER_WAY})

# What the finaliser does, by the gateway's verdict, the payment's status and the order's
# state. The first row that matches wins; every combination matches a row (a test checks).
# A repeated success changes nothing; a failure never moves a payment backwards.
FINALISER_CASES: tuple[tuple[Verdict, frozenset, frozenset, Callable[..., Finalized]], ...] = (
    # verdict            payment         order       action
    (Verdict.PENDING,    ANY_PAYMENT,    ANY_ORDER,  _outcome_only(Finalized.PENDING)),
    (Verdict.SUCCEEDED,  MONEY_TAKEN,    ANY_ORDER,  _outcome_only(Finalized.ALREADY_PAID)),
    (Verdict.SUCCEEDED,  NOT_PAID,       CREATED,    _pay),
    (Verdict.SUCCEEDED,  NOT_PAID,       EXPIRED,    _revive),
    (Verdict.SUCCEEDED,  NOT_PAID,       NOT_WANTED, _refund_late),
    (Verdict.FAILED,     PENDING_ONLY,   OPEN,       _record_decline),
    (Verdict.FAILED,     PENDING_ONLY,   CLOSED,     _close_unpaid),
    (Verdict.FAILED,     FAILED_ONLY,    OPEN,       _outcome_only(Finalized.DECLINED)),
    (Verdict.FAILED,     MONEY_TAKEN,    OPEN,       _outcome_only(Finalized.ALREADY_PAID)),
    (Verdict.FAILED,     CANCELLED_ONLY, OPEN,       _outcome_only(Finalized.CANCELLED)),
    (Verdict.FAILED,     ANY_PAYMENT,    CLOSED,     _outcome_only(Finalized.CANCELLED)),
)


def finaliser_action(verdict: Verdict, payment: PaymentStatus, order: OrderState) -> Callable[..., Finalized]:
    """The action ``FINALISER_CASES`` names for this combination."""
    return next(action for v, payments, orders, action in FINALISER_CASES
                if v == verdict and payment in payments and order in orders)


def confirm_payment(user, intent_id: str, payment_method: str | None = None, *,
                    order_token: str | None = None, return_url: str | None = None) -> Finalized:
    """The shopper says they paid: ask the gateway, confirming with ``payment_method``
    if the intent still needs one, then finalise.

    ``user`` is the signed-in shopper, or None for a guest presenting the order's
    ``order_token``. An intent that requires action (3-D Secure) is PENDING with the
    ``next_action_url`` the customer must visit (Stripe's redirect comes back to
    ``return_url``); it is settled there, and the finaliser runs when the gateway says so.
    Raises NotFound (not the user's intent, nor the token's), GatewayUnavailable.
    """
    payment = payment_for_intent(intent_id)
    order = payment.order
    if not ((user is not None and order.user_id == user.id) or token_opens(order, order_token)):
        raise NotFound("Payment intent not found.")
    actor = Actor.of_user(user) if user is not None else guest_actor(order.email)
    payments = payment_gateway(intent_id)
    intent = payments.retrieve_intent(intent_id)
    attempted = False
    if intent.status in ("requires_payment_method", "requires_confirmation"):
        # The simulator's default card; but a failed authentication stands until the shopper
        # gives another payment method (confirming again tells them 402, as at Stripe).
        defaulted = payments.name == "simulated" and intent.failure_message != AUTHENTICATION_FAILED
        method = payment_method or (DEFAULT_TEST_PAYMENT_METHOD if defaulted else None)
        if method:
            intent = payments.confirm_intent(intent_id, method, return_url=return_url)
            attempted = True
    was_declined = payment.status == PaymentStatus.FAILED
    result = finalize_payment(intent_id, actor=actor, intent=intent)
    if result.outcome == Finalized.PENDING and intent.status == REQUIRES_ACTION:
        # Under the order's lock (the finaliser took it): noted for the back office and polling.
        payment.next_action_url = intent.next_action_url
        db.session.flush()
        return Finalized(result.order, result.outcome, action_required=True,
                         next_action_url=intent.next_action_url)
    if attempted and was_declined and result.outcome == Finalized.DECLINED:
        _record_another_decline(payment, intent, actor)
    return result


def _record_another_decline(payment: Payment, intent: Intent, actor: Actor) -> None:
    """A failed payment declined once more, on a card the shopper just tried: its status does not
    move (failed stays failed), but the attempt is history the back office shows. Only the
    confirm call knows a new card was tried; a webhook repeating a decline adds nothing."""
    message = intent.failure_message or intent.status
    payment.failure_message = message
    record_history(payment.order_id, EventKind.PAYMENT, PaymentStatus.FAILED, PaymentStatus.FAILED,
                   actor=actor, note=f"declined again: {message}")
