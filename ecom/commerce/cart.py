"""Shopping carts: one per signed-in shopper, or a guest cart named by an opaque token.

A line remembers the price it was added at, but is always charged at its variant's
current price (``unit_price``): ``price_cart`` prices the lines at it through the one pricing
function (``ecom.pricing.quote.quote_lines``), for the cart's view and checkout alike.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from collections.abc import Iterable
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Protocol

from sqlalchemy import and_, delete, or_, select
from sqlalchemy.orm import selectinload

from ecom.catalog.models import Product, Variant
from ecom.commerce.models import Cart, CartItem
from ecom.commerce.sql import insert_or_nothing
from ecom.db import money, utcnow
from ecom.errors import Conflict, NotFound, OutOfStock, ValidationFailed
from ecom.extensions import db
from ecom.identity.models import User
from ecom.inventory.models import available_units
from ecom.pricing.engine import LineInput, Quote
from ecom.pricing.quote import Customer, Destination, quote_lines
from ecom.runtime import settings

MIN_QUANTITY = 1
MAX_QUANTITY = 99
TOKEN_BYTES = 24  # token_urlsafe(24) -> 32 characters; with "." and the signature 55, fits carts.token (64)
SIGNATURE_BYTES = 16  # 22 characters


class PricedLine(Protocol):
    price: Decimal
    quantity: int


def unit_price(line: PricedLine) -> Decimal:
    """What one unit of ``line`` costs now. A cart line's is its variant's current price:
    the price stored on it is the one it was added at, which only says whether the price
    changed since (``price_changed``). Any other priced line (an order's) is its own price.
    """
    if isinstance(line, CartItem):
        return money(line.variant.price)
    return money(line.price)


def price_changed(line: CartItem) -> bool:
    """Whether the line's price changed since the line was added."""
    return unit_price(line) != money(line.price)


def line_input(line: CartItem) -> LineInput:
    """A cart line (its variant and product loaded) as pricing sees it, at the current price."""
    variant = line.variant
    product = variant.product
    return LineInput(sku=line.sku, quantity=line.quantity, unit_price=unit_price(line),
                     product_id=line.product_id, category_id=product.category_id,
                     tax_class_id=product.tax_class_id, compare_at_price=variant.compare_at_price,
                     weight=variant.weight)


def variant_line(variant: Variant, quantity: int) -> LineInput:
    """``quantity`` of ``variant`` (its product loaded) as pricing sees it."""
    product = variant.product
    return LineInput(sku=variant.sku, quantity=quantity, unit_price=money(variant.price),
                     product_id=variant.product_id, category_id=product.category_id,
                     tax_class_id=product.tax_class_id, compare_at_price=variant.compare_at_price,
                     weight=variant.weight)


def price_cart(items: Iterable[CartItem], destination: Destination, *, shipping_method: str | None = None,
               voucher_code: str | None = None, customer: Customer | None = None,
               estimate: bool = False) -> Quote:
    """The quote of cart lines (``ecom.pricing.quote.quote_lines``), each at its variant's
    current price. Raises what ``quote_lines`` raises."""
    return quote_lines([line_input(line) for line in items], destination, shipping_method=shipping_method,
                       voucher_code=voucher_code, customer=customer, estimate=estimate)


def _cart_query():
    return select(Cart).options(
        selectinload(Cart.items).selectinload(CartItem.variant).selectinload(Variant.product)
    )


def get_or_create_user_cart(user: User) -> Cart:
    """The shopper's one cart, created on first use."""
    cart = db.session.scalar(_cart_query().where(Cart.user_id == user.id))
    if cart is None:
        cart = Cart(user_id=user.id)
        db.session.add(cart)
        db.session.flush()
    return cart


def new_guest_token() -> str:
    """A fresh unguessable guest cart token, signed: a token we issued is known as ours
    without a row, so a guest's cart is stored only once something is put in it."""
    nonce = secrets.token_urlsafe(TOKEN_BYTES)
    return f"{nonce}.{_token_signature(nonce)}"


def _token_signature(nonce: str) -> str:
    key = str(settings()["SECRET_KEY"]).encode()
    digest = hmac.new(key, f"guest-cart:{nonce}".encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest[:SIGNATURE_BYTES]).decode().rstrip("=")


def issued_token(token: str | None) -> bool:
    """Whether ``token`` is one ``new_guest_token`` made (with this SECRET_KEY)."""
    if not token or len(token) > 64 or token.count(".") != 1:
        return False
    nonce, signature = token.split(".")
    return hmac.compare_digest(signature.encode(), _token_signature(nonce).encode())


def create_guest_cart(token: str | None = None) -> Cart:
    """The guest cart of ``token`` (a new token when none is given), stored now.

    Two first writes with the same token at once store one cart: the unique token turns
    the second insert into nothing, and both get the stored cart.
    """
    token = token or new_guest_token()
    db.session.execute(insert_or_nothing(Cart, {"token": token}, unique=("token",)))
    return get_guest_cart(token)


def get_guest_cart(token: str) -> Cart:
    """The stored guest cart ``token`` names. Raises NotFound (also for a user's cart)."""
    cart = None
    if token and len(token) <= 64:
        cart = db.session.scalar(_cart_query().where(Cart.token == token, Cart.user_id.is_(None)))
    if cart is None:
        raise NotFound("Cart not found.")
    return cart


def view_cart(*, user: User | None = None, guest_token: str | None = None) -> Cart:
    """The cart to show, storing nothing for a guest: the guest cart of ``guest_token``, or
    an empty unsaved one for a token we issued whose cart holds nothing yet (or was purged),
    or for a new token when there is none. Raises NotFound for a token we never issued.
    """
    if user is not None:
        return get_or_create_user_cart(user)
    if not guest_token:
        return Cart(token=new_guest_token(), items=[])
    try:
        return get_guest_cart(guest_token)
    except NotFound:
        if issued_token(guest_token):
            return Cart(token=guest_token, items=[])
        raise


def get_or_create_cart(*, user: User | None = None, guest_token: str | None = None) -> Cart:
    """The cart to write to: the user's, else the guest cart of ``guest_token`` (stored now
    if the token is one we issued), else a new guest cart.

    Raises NotFound for a token we never issued and no cart has.
    """
    if user is not None:
        return get_or_create_user_cart(user)
    if not guest_token:
        return create_guest_cart()
    try:
        return get_guest_cart(guest_token)
    except NotFound:
        if issued_token(guest_token):
            return create_guest_cart(guest_token)
        raise


def _check_quantity(quantity: int) -> None:
    if not MIN_QUANTITY <= quantity <= MAX_QUANTITY:
        raise ValidationFailed(
            f"Quantity must be between {MIN_QUANTITY} and {MAX_QUANTITY}.",
            {"quantity": [f"Must be between {MIN_QUANTITY} and {MAX_QUANTITY}."]},
        )


def _check_stock(variant: Variant, quantity: int) -> None:
    available = available_units(variant)
    if quantity > available:
        raise OutOfStock({variant.sku: available})


def _sellable_variant(sku: str) -> Variant:
    variant = db.session.scalar(
        select(Variant)
        .join(Product)
        .where(Variant.sku == sku, Variant.is_active.is_(True), Product.is_active.is_(True))
        .options(selectinload(Variant.inventories), selectinload(Variant.product))
    )
    if variant is None:
        raise NotFound(f"No product with SKU '{sku}'.")
    return variant


def _line_for(cart: Cart, variant_id: int) -> CartItem | None:
    return next((item for item in cart.items if item.variant_id == variant_id), None)


def add_item(cart: Cart, sku: str, quantity: int = 1) -> CartItem:
    """Add ``quantity`` of ``sku``; the same SKU again adds to its line.

    Raises NotFound (unknown or inactive SKU), ValidationFailed (quantity
    outside 1..99), Conflict (the line already holds so many that it would
    pass 99), OutOfStock (more than available).
    """
    _check_quantity(quantity)
    variant = _sellable_variant(sku)
    line = _line_for(cart, variant.id)
    new_quantity = quantity + (line.quantity if line else 0)
    if new_quantity > MAX_QUANTITY:
        # A valid request clashing with what the cart already holds: a conflict, not bad input.
        raise Conflict(f"The cart already holds {line.quantity} of {variant.sku}; a line holds at "
                       f"most {MAX_QUANTITY} units.")
    _check_stock(variant, new_quantity)
    if line is None:
        line = CartItem(
            product_id=variant.product_id,
            variant_id=variant.id,
            sku=variant.sku,
            quantity=new_quantity,
            price=money(variant.price),
        )
        line.variant = variant
        cart.items.append(line)
    else:
        line.quantity = new_quantity
    db.session.flush()
    return line


def get_item(cart: Cart, item_id: int) -> CartItem:
    """A line of this cart. Raises NotFound for any other cart's line."""
    line = next((item for item in cart.items if item.id == item_id), None)
    if line is None:
        raise NotFound("Cart item not found.")
    return line


def update_item(cart: Cart, item_id: int, quantity: int) -> CartItem | None:
    """Set a line's quantity; 0 removes it (returns None).

    Raises NotFound, ValidationFailed (outside 0..99), OutOfStock, and
    ValidationFailed when the product is no longer for sale.
    """
    line = get_item(cart, item_id)
    if quantity == 0:
        remove_item(cart, item_id)
        return None
    _check_quantity(quantity)
    variant = line.variant
    if not variant.is_active or not variant.product.is_active:
        raise ValidationFailed(
            f"'{line.sku}' is no longer available.", {"quantity": ["The product is no longer sold."]}
        )
    if quantity > line.quantity:
        # Lowering a quantity is always allowed, even when stock has since dropped.
        _check_stock(variant, quantity)
    line.quantity = quantity
    db.session.flush()
    return line


def remove_item(cart: Cart, item_id: int) -> None:
    """Remove a line. Raises NotFound."""
    line = get_item(cart, item_id)
    cart.items.remove(line)
    db.session.delete(line)
    db.session.flush()


def clear_cart(cart: Cart) -> None:
    """Empty the cart (after a successful payment)."""
    for line in list(cart.items):
        cart.items.remove(line)
        db.session.delete(line)
    db.session.flush()


def merge_guest_cart(guest_token: str | None, user: User) -> Cart:
    """Move a guest cart's lines into the user's cart and delete the guest cart.

    Quantities add up, capped by available stock and 99; lines of products no
    longer sold are dropped. An unknown token merges nothing.
    """
    cart = get_or_create_user_cart(user)
    if not guest_token:
        return cart
    try:
        guest = get_guest_cart(guest_token)
    except NotFound:
        return cart
    for guest_line in list(guest.items):
        variant = guest_line.variant
        if not variant.is_active or not variant.product.is_active:
            continue
        line = _line_for(cart, variant.id)
        wanted = guest_line.quantity + (line.quantity if line else 0)
        capped = min(wanted, available_units(variant), MAX_QUANTITY)
        if line is not None:
            line.quantity = max(capped, line.quantity) if capped else line.quantity
        elif capped >= MIN_QUANTITY:
            cart.items.append(
                CartItem(
                    product_id=variant.product_id,
                    variant_id=variant.id,
                    sku=variant.sku,
                    quantity=capped,
                    price=money(guest_line.price),
                    variant=variant,
                )
            )
    db.session.delete(guest)
    db.session.flush()
    return cart


EMPTY_GUEST_CART_LIFETIME = timedelta(days=1)
GUEST_CART_LIFETIME = timedelta(days=30)
PURGE_BATCH = 1000


def purge_guest_carts(now: datetime | None = None, *, batch: int = PURGE_BATCH) -> int:
    """Delete abandoned guest carts; returns how many. The caller commits.

    A guest cart is stored at its first write, but may be emptied again: an empty
    one goes a day after it was made, one with lines 30 days after its last change
    (a line's too). Shoppers' own carts are never purged. A purged cart's token,
    being one we issued, then names an empty cart again.
    """
    now = now or utcnow()
    empty_before, idle_before = now - EMPTY_GUEST_CART_LIFETIME, now - GUEST_CART_LIFETIME
    recent_line = select(CartItem.id).where(CartItem.cart_id == Cart.id, CartItem.updated_at >= idle_before)
    any_line = select(CartItem.id).where(CartItem.cart_id == Cart.id)
    abandoned = or_(
        and_(Cart.updated_at < empty_before, ~any_line.exists()),
        and_(Cart.updated_at < idle_before, ~recent_line.exists()),
    )
    purged = 0
    while ids := db.session.scalars(
        select(Cart.id).where(Cart.user_id.is_(None), abandoned).order_by(Cart.id).limit(batch)
    ).all():
        db.session.execute(delete(CartItem).where(CartItem.cart_id.in_(ids)))
        db.session.execute(delete(Cart).where(Cart.id.in_(ids)))
        purged += len(ids)
        if len(ids) < batch:
            break
    return purged
