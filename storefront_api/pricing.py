"""``POST /checkout/quote``: the cart priced for an address, a shipping method and a voucher."""

from __future__ import annotations

from flask import request
from pydantic import ConfigDict, Field, model_validator

from ecom.commerce import cart as carts
from ecom.commerce.quoting import quote_checkout
from ecom.errors import NotFound
from storefront_api import api
from storefront_api.cart import CART_TOKEN, CART_TOKEN_HEADER
from storefront_api.checkout import AddressIn, _address, _no_default, voucher_code_field
from storefront_api.openapi import endpoint
from storefront_api.price_schemas import QuoteOut, quote_out
from storefront_api.schemas import JsonInt, RequestBody
from storefront_api.security import optional_user


class QuoteIn(RequestBody):
    model_config = ConfigDict(json_schema_extra={
        "oneOf": [{"required": ["shipping_address_id"]}, {"required": ["shipping_address"]}],
    })

    shipping_address_id: JsonInt = Field(None, ge=1, le=2**31 - 1, json_schema_extra=_no_default)
    shipping_address: AddressIn = Field(None, json_schema_extra=_no_default)
    shipping_method: str = Field(None, min_length=1, max_length=40, json_schema_extra=_no_default,
                                 description="A code from shipping_methods; default: the cheapest "
                                             "that is not a pickup")
    voucher_code: str = voucher_code_field()

    @model_validator(mode="after")
    def _one_address(self):
        if (self.shipping_address_id is None) == (self.shipping_address is None):
            raise ValueError("give exactly one of shipping_address_id and shipping_address")
        return self


@api.post("/checkout/quote")
@endpoint(body=QuoteIn, response=QuoteOut, auth="optional", tags=["checkout"], errors=[409],
          headers=[CART_TOKEN_HEADER], commit=False,
          summary="Price the cart for a shipping address, method and voucher")
def quote_cart(body: QuoteIn):
    """The quote the payment intent would charge now, with every shipping method offered.
    Nothing is written. 422 with `errors.country` for an unknown country or one not shipped
    to, `errors.shipping_method` for a method not offered, `errors.voucher_code` saying why
    a voucher cannot be used (unknown, not valid yet, expired, used up, the shopper's limit,
    below its minimum subtotal, not applicable to the cart). An empty cart is 409."""
    user = optional_user()
    cart = _cart_for(user)
    quote = quote_checkout(cart, user=user, shipping_address_id=body.shipping_address_id,
                           shipping_address=_address(body.shipping_address),
                           shipping_method=body.shipping_method, voucher_code=body.voucher_code)
    return quote_out(quote)


def _cart_for(user):
    if user is not None:
        return carts.get_or_create_user_cart(user)
    try:
        return carts.get_guest_cart(request.headers.get(CART_TOKEN, ""))
    except NotFound:
        return None
