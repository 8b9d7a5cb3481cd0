"""Pricing a cart for the shopper before they pay: the cart's estimate and the checkout quote.
Both are ``ecom.pricing.quote.quote_lines`` (through ``price_cart``), as the payment intent is."""

from __future__ import annotations

from ecom.commerce.cart import price_cart
from ecom.commerce.checkout import _open_checkout_orders, _resolve_address
from ecom.commerce.models import Cart
from ecom.errors import Conflict, ValidationFailed
from ecom.pricing.engine import Quote
from ecom.pricing.quote import Customer, Destination
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
        replacing = frozenset(order.id for order in _open_checkout_orders(user))
        customer = Customer(user_id=user.id, email=user.email, replacing=replacing)
    return price_cart(cart.items, Destination.of_address(address), shipping_method=shipping_method,
                      voucher_code=voucher_code, customer=customer)
