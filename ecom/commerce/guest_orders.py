"""Guest orders: placed without an account, reached with an order token, adopted by a
signed-in shopper only by presenting that token.

The order token is shown once, in the answer that placed the order; the database keeps
only its SHA-256. It is derived from the order number with ``SECRET_KEY`` (an HMAC), so an
``Idempotency-Key`` replay of that answer can show the same token again without anything
secret being stored: the stored answer has the token taken out (``strip_order_token``).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from dataclasses import dataclass

from sqlalchemy import func, select

from ecom.actor import Actor
from ecom.audit.services import record_change
from ecom.commerce.cart import issued_token
from ecom.commerce.models import Order, Payment
from ecom.commerce.orders import lock_order
from ecom.commerce.status import OrderStatus
from ecom.errors import Conflict, NotFound
from ecom.extensions import db
from ecom.identity.services import normalise_email
from ecom.runtime import settings

ORDER_TOKEN_FIELD = "order_token"
MAX_ORDER_TOKEN_LENGTH = 128


@dataclass(frozen=True)
class Guest:
    """A shopper without an account checking out their guest cart."""

    cart_token: str
    email: str
    client_ip: str | None = None

    @classmethod
    def checking_out(cls, cart_token: str, email: str, client_ip: str | None) -> Guest:
        """Raises NotFound for a cart token we never issued (as the cart's own endpoints do),
        ValidationFailed for an email that is not one (normalised like an account's)."""
        if not issued_token(cart_token):
            raise NotFound("Cart not found.")
        return cls(cart_token=cart_token, email=normalise_email(email), client_ip=client_ip)

    @property
    def actor(self) -> Actor:
        return guest_actor(self.email)


def guest_actor(email: str) -> Actor:
    """A guest as the author of history and audit rows."""
    return Actor(label=f"guest:{email}"[:255])


def order_token(order: Order) -> str:
    """The guest order's token: HMAC-SHA256 of its number under SECRET_KEY, base64url (43
    characters). Unguessable without the key; the same every time it is asked for."""
    key = str(settings()["SECRET_KEY"]).encode()
    digest = hmac.new(key, f"order-token:{order.order_number}".encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).decode().rstrip("=")


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def issue_order_token(order: Order) -> str:
    """Give a new guest order its token: the hash is stored, the token returned (to be shown once)."""
    token = order_token(order)
    order.order_token_hash = token_hash(token)
    return token


def token_opens(order: Order | None, token: str | None) -> bool:
    """Whether ``token`` is ``order``'s token (compared in constant time)."""
    if order is None or not order.order_token_hash or not token or len(token) > MAX_ORDER_TOKEN_LENGTH:
        return False
    return hmac.compare_digest(token_hash(token), order.order_token_hash)


def find_order_by_token(order_number: str, token: str | None) -> Order:
    """The order ``token`` opens. Raises NotFound (no such order, or not its token: the same
    answer, so a wrong token tells nothing)."""
    order = db.session.scalar(select(Order).where(Order.order_number == order_number))
    if not token_opens(order, token):
        raise NotFound("Order not found.")
    return order


def find_order_for(user, order_number: str, token: str | None) -> Order:
    """The order a request may see: the signed-in ``user``'s own, or the one ``token`` opens.
    Raises NotFound."""
    order = db.session.scalar(select(Order).where(Order.order_number == order_number))
    if order is not None and user is not None and order.user_id == user.id:
        return order
    if not token_opens(order, token):
        raise NotFound("Order not found.")
    return order


def claim_order(user, order_number: str, token: str | None) -> Order:
    """Adopt a guest order into ``user``'s account: only with its token, never by matching the
    email (nobody verified it). Claiming one's own order again changes nothing. The token
    keeps opening the order (it is the link in the guest's emails).
    Raises NotFound (not the token of that order), Conflict (another account claimed it)."""
    order = find_order_by_token(order_number, token)
    order = lock_order(order.id)
    if order.user_id == user.id:
        return order
    if order.user_id is not None:
        raise Conflict(f"Order {order.order_number} already belongs to another account.")
    order.user_id = user.id
    record_change(Actor.of_user(user), "claim", "orders", order.id, {"user_id": None},
                  {"user_id": user.id, "email": order.email})
    db.session.flush()
    return order


def check_guest_order_cap(client_ip: str | None, *, replaced: list[int]) -> None:
    """Refuse another guest order from ``client_ip`` while it has MAX_OPEN_GUEST_ORDERS_PER_IP
    guest orders waiting for payment (holding stock), not counting those this checkout
    replaces (their ids). Signed-in shoppers have their own cap (MAX_OPEN_UNPAID_ORDERS). Raises Conflict."""
    if not client_ip:
        return
    _serialise_guest_checkouts_from(client_ip)
    limit = settings()["MAX_OPEN_GUEST_ORDERS_PER_IP"]
    query = (select(func.count(Order.id))
             .where(Order.client_ip == client_ip, Order.user_id.is_(None),
                    Order.status == OrderStatus.CREATED,
                    select(Payment.id).where(Payment.order_id == Order.id).exists()))
    if replaced:
        query = query.where(Order.id.not_in(replaced))
    open_orders = db.session.scalar(query)
    if open_orders >= limit:
        raise Conflict(f"{open_orders} guest orders from your address are waiting for payment "
                       f"(at most {limit}); pay for one of them or wait until they expire.")


def _serialise_guest_checkouts_from(client_ip: str) -> None:
    """Guest checkouts from one address, each of its own cart, take their turn until their
    commit (a PostgreSQL transaction-level advisory lock on the address), so concurrent ones
    cannot all count the same open orders and pass the cap together. SQLite runs one
    writing transaction at a time anyway."""
    if db.session.get_bind().dialect.name != "postgresql":
        return
    key = int.from_bytes(hashlib.sha256(f"guest-checkout:{client_ip}".encode()).digest()[:8], "big",
                         signed=True)
    db.session.execute(select(func.pg_advisory_xact_lock(key)))


def strip_order_token(answer: dict) -> dict:
    """The answer to store for an Idempotency-Key replay: without the order token."""
    return {key: value for key, value in answer.items() if key != ORDER_TOKEN_FIELD}
