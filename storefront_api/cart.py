"""The cart: a signed-in shopper's, or a guest's named by ``X-Cart-Token``."""

from __future__ import annotations

from typing import Annotated

from flask import current_app, request
from pydantic import Field

from ecom.commerce import cart as carts
from ecom.commerce.models import Cart
from ecom.commerce.quoting import estimate_cart
from ecom.errors import ValidationFailed
from storefront_api import api
from storefront_api.openapi import HeaderParam, endpoint
from storefront_api.price_schemas import COUNTRY_CODES, ShippingMethodOut, method_out
from storefront_api.schemas import ApiModel, JsonInt, Money, Query, RequestBody
from storefront_api.security import optional_user

CART_TOKEN = "X-Cart-Token"
CART_TOKEN_HEADER = HeaderParam(CART_TOKEN, "The guest cart's token (ignored for a signed-in shopper).", 64,
                                answered="The guest cart's token (on a guest cart's answer)")


class CartItemIn(RequestBody):
    sku: str = Field(min_length=1, max_length=64)
    quantity: JsonInt = Field(1, ge=carts.MIN_QUANTITY, le=carts.MAX_QUANTITY)


class CartItemPatch(RequestBody):
    quantity: JsonInt = Field(ge=0, le=carts.MAX_QUANTITY, description="0 removes the line")


# Documented as the ISO codes, upper or lower case; anything else is 422. The enum sits
# on the string itself: on the optional field it would also rule out null, its default, and
# the document would not be valid OpenAPI 3.1 (tests/storefront_api/test_openapi_docs.py).
CountryParam = Annotated[str, Field(max_length=64, json_schema_extra={"enum": COUNTRY_CODES})]


class CartQuery(Query):
    country: CountryParam | None = Field(None, description="ISO 3166-1 alpha-2 (upper or lower case); "
                                                           "default: the shop's DEFAULT_COUNTRY. Another "
                                                           "code is 422")
    region: str | None = Field(None, max_length=120, description="A state or region, for its tax rate")


class CartItemOut(ApiModel):
    id: int
    sku: str
    product_id: int
    variant_id: int
    product_name: str
    variant_name: str
    quantity: int
    unit_price: Money = Field(description="The variant's current price: what the line is charged at")
    added_price: Money = Field(description="The price when the line was added")
    price_changed: bool = Field(description="Whether the price changed since the line was added")
    compare_at_price: Money | None = Field(description="The former price, shown struck through")
    line_total: Money = Field(description="unit_price x quantity, before the discount")
    discount: Money
    tax: Money


class DestinationOut(ApiModel):
    country: str
    region: str | None


class CartOut(ApiModel):
    id: int | None = Field(description="null for a guest cart that has held nothing yet (it is stored "
                                       "at its first write)")
    token: str | None = Field(None, description="Only for a guest cart: send it back as X-Cart-Token")
    items: list[CartItemOut]
    item_count: int
    subtotal: Money
    discount_total: Money
    tax: Money = Field(description="The same as tax_total")
    tax_total: Money
    shipping_method: ShippingMethodOut | None = Field(
        description="The cheapest method for the estimate's destination; null when the cart is empty "
                    "or nobody ships there")
    shipping_cost: Money
    total: Money
    currency: str
    prices_include_tax: bool
    destination: DestinationOut = Field(description="Where the estimate is priced for")


def cart_body(cart: Cart, *, country: str | None = None, region: str | None = None) -> CartOut:
    """The cart with its estimate for ``country``/``region`` (DEFAULT_COUNTRY by default)."""
    quote = estimate_cart(cart, country=country, region=region)
    items = [
        CartItemOut(
            id=line.id,
            sku=line.sku,
            product_id=line.product_id,
            variant_id=line.variant_id,
            product_name=line.variant.product.name,
            variant_name=line.variant.name,
            quantity=line.quantity,
            unit_price=priced.unit_price,
            added_price=line.price,
            price_changed=carts.price_changed(line),
            compare_at_price=priced.compare_at_price,
            line_total=priced.line_total,
            discount=priced.discount,
            tax=priced.tax,
        )
        for line, priced in zip(cart.items, quote.lines, strict=True)
    ]
    return CartOut(
        id=cart.id,
        token=cart.token if cart.user_id is None else None,
        items=items,
        item_count=quote.item_count,
        subtotal=quote.subtotal,
        discount_total=quote.discount_total,
        tax=quote.tax_total,
        tax_total=quote.tax_total,
        shipping_method=method_out(quote.shipping_method),
        shipping_cost=quote.shipping_cost,
        total=quote.total,
        currency=quote.currency,
        prices_include_tax=quote.prices_include_tax,
        destination=DestinationOut(country=(country or current_app.config["DEFAULT_COUNTRY"]).upper(),
                                   region=region or None),
    )


def _answer(cart: Cart, status: int = 200, query: CartQuery | None = None):
    headers = {CART_TOKEN: cart.token} if cart.user_id is None and cart.token else {}
    where = {"country": query.country, "region": query.region} if query else {}
    return cart_body(cart, **where), status, headers


def _request_cart() -> Cart:
    return carts.get_or_create_cart(user=optional_user(), guest_token=request.headers.get(CART_TOKEN))


def _existing_cart() -> Cart:
    user = optional_user()
    if user is not None:
        return carts.get_or_create_user_cart(user)
    return carts.get_guest_cart(request.headers.get(CART_TOKEN, ""))


CART_ENDPOINT = {"auth": "optional", "tags": ["cart"], "headers": [CART_TOKEN_HEADER]}


@api.get("/cart")
@endpoint(query=CartQuery, response=CartOut, errors=[422], **CART_ENDPOINT)
def get_cart(query: CartQuery):
    """The cart; without a token (and signed out) a new guest cart's token and the empty cart.
    Nothing is stored for a guest until the first line is added: a token we issued names an
    empty cart until then (and again once an abandoned cart was purged). Its figures are an
    estimate for `country` and `region` (default: the shop's `DEFAULT_COUNTRY`) with the
    cheapest shipping method and no voucher, by the same pricing as checkout; an unknown
    country is 422."""
    if query.country is not None and query.country not in COUNTRY_CODES:
        # Exactly the documented codes (a mixed-case "dE" too is refused, as the document says).
        raise ValidationFailed(f"Unknown country '{query.country}'.",
                               {"country": ["Not an ISO 3166-1 alpha-2 country code."]})
    cart = carts.view_cart(user=optional_user(), guest_token=request.headers.get(CART_TOKEN))
    return _answer(cart, query=query)


@api.post("/cart/items")
@endpoint(body=CartItemIn, response=CartOut, status=201, errors=[409], **CART_ENDPOINT)
def add_cart_item(body: CartItemIn):
    """Add a SKU; the same SKU again adds to its line."""
    cart = _request_cart()
    carts.add_item(cart, body.sku, body.quantity)
    return _answer(cart, 201)


@api.patch("/cart/items/<int:item_id>")
@endpoint(body=CartItemPatch, response=CartOut, errors=[409], **CART_ENDPOINT)
def update_cart_item(item_id: int, body: CartItemPatch):
    """Set a line's quantity; 0 removes it."""
    cart = _existing_cart()
    carts.update_item(cart, item_id, body.quantity)
    return _answer(cart)


@api.delete("/cart/items/<int:item_id>")
@endpoint(response=CartOut, **CART_ENDPOINT)
def delete_cart_item(item_id: int):
    """Remove a line."""
    cart = _existing_cart()
    carts.remove_item(cart, item_id)
    return _answer(cart)
