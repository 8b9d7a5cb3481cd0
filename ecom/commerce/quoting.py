"""Pricing before anyone pays: the cart's estimate, the checkout quote and the back office's
price check. All are ``ecom.pricing.quote.quote_lines``, as the payment intent is."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import joinedload

from ecom.catalog.models import Variant
from ecom.commerce.cart import price_cart, variant_line
from ecom.commerce.checkout import _open_checkout_order_ids, _resolve_address
from ecom.commerce.models import Cart
from ecom.errors import Conflict, NotFound, ValidationFailed
from ecom.extensions import db
from ecom.pricing.engine import Quote
from ecom.pricing.quote import Customer, Destination, quote_lines
from ecom.runtime import settings


def estimate_cart(cart: Cart, *, country: str | None = None, region: str | None = None) -> Quote:
    """The cart priced for ``country``/``region`` (DEFAULT_COUNTRY when no country is named),
    the cheapest method, no voucher; a destination nobody ships to shows no shipping.
    Raises ValidationFailed for an unknown country."""
    destination = Destination((country or settings()["DEFAULT_COUNTRY"]).strip().upper(), region or None)
    return price_cart(cart.items, destination, estimate=True)


def quote_checkout(cart: Cart | None, *, user=None, shipping_address_id: int | None = None,
                   shipping_address: dict | None = None, shipping_method: str | None = None,
                   voucher_code: str | None = None) -> Quote:
    """What the payment intent would charge for ``cart`` now: the same quote, writing nothing.
    The voucher's per-customer limit counts ``user``'s uses, except those of the open order
    the payment intent would replace.
    Raises Conflict (empty cart), NotFound (an address not the user's), ValidationFailed
    (no address, unknown country, not shipped to, VoucherRefused)."""
    if cart is None or not cart.items:
        raise Conflict("Your cart is empty.")
    if shipping_address_id is not None and user is None:
        raise ValidationFailed("Sign in to use a saved address.",
                               {"shipping_address_id": ["Only for a signed-in shopper."]})
    address = _resolve_address(user, shipping_address_id, shipping_address, "shipping")
    if address is None:
        raise ValidationFailed("A shipping address is required.",
                               {"shipping_address": ["Give shipping_address_id or shipping_address."]})
    customer = None
    if user is not None:
        replacing = frozenset(_open_checkout_order_ids(user, cart.id))
        customer = Customer(user_id=user.id, email=user.email, replacing=replacing)
    return price_cart(cart.items, Destination.of_address(address), shipping_method=shipping_method,
                      voucher_code=voucher_code, customer=customer)


def quote_skus(lines: list[tuple[str, int]], destination: Destination, *, shipping_method: str | None = None,
               voucher_code: str | None = None) -> Quote:
    """The quote for ``(sku, quantity)`` lines at their variants' current prices: the back
    office's price check of a promotion or a rule, by the same function as checkout.
    Raises NotFound (an unknown SKU) and what ``quote_lines`` raises."""
    if not lines:
        raise ValidationFailed("Name at least one SKU.", {"lines": ["One 'SKU x quantity' per line."]})
    skus = {sku for sku, _ in lines}
    variants = {v.sku: v for v in db.session.scalars(
        select(Variant).where(Variant.sku.in_(skus)).options(joinedload(Variant.product)))}
    missing = sorted(skus - set(variants))
    if missing:
        raise NotFound(f"No product with SKU {', '.join(missing)}.")
    return quote_lines([variant_line(variants[sku], quantity) for sku, quantity in lines], destination,
                       shipping_method=shipping_method, voucher_code=voucher_code)
