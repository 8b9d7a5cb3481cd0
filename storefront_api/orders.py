"""The shopper's orders: list, detail, cancel. Also the order shape checkout answers with."""

from __future__ import annotations

from flask import request
from pydantic import Field
from sqlalchemy import select
from sqlalchemy.orm import selectinload

from ecom.actor import Actor
from ecom.commerce.cancellation import cancel_order
from ecom.commerce.guest_orders import MAX_ORDER_TOKEN_LENGTH, claim_order, find_order_for, guest_actor
from ecom.commerce.models import Order
from ecom.errors import AuthenticationFailed
from ecom.extensions import db
from ecom.unit_of_work import commit
from storefront_api import api
from storefront_api.openapi import HeaderParam, endpoint, parse_body
from storefront_api.pagination import paginate
from storefront_api.price_schemas import Rate
from storefront_api.schemas import ApiModel, Money, PageQuery, RequestBody, UtcDateTime
from storefront_api.security import current_user, optional_user

ORDER_TOKEN = "X-Order-Token"
ORDER_TOKEN_HEADER = HeaderParam(
    ORDER_TOKEN, "A guest order's token (the `order_token` its checkout answered with): opens that "
    "order without a bearer token.", MAX_ORDER_TOKEN_LENGTH)


class OrderItemOut(ApiModel):
    sku: str
    product_name: str
    variant_name: str
    quantity: int
    price: Money
    line_total: Money = Field(description="price x quantity, before the discount")
    discount: Money
    tax: Money
    tax_rate: Rate


class AddressOut(ApiModel):
    full_name: str
    street: str
    city: str
    state: str | None = None
    postal_code: str
    country: str
    phone: str | None = None


class PaymentOut(ApiModel):
    status: str
    amount: Money
    refunded_amount: Money
    currency: str


class FulfillmentOut(ApiModel):
    status: str
    carrier: str | None
    tracking_number: str | None
    is_pickup: bool = False


class ShippingMethodRef(ApiModel):
    code: str
    name: str


class OrderOut(ApiModel):
    order_number: str
    status: str
    items: list[OrderItemOut]
    subtotal: Money
    discount_total: Money
    tax: Money = Field(description="The same as tax_total")
    tax_total: Money = Field(description="The lines' tax and the shipping's")
    shipping_cost: Money
    total: Money = Field(description="subtotal - discount_total + shipping_cost + tax_total; without "
                                     "tax_total when prices_include_tax")
    currency: str
    prices_include_tax: bool
    shipping_method: ShippingMethodRef | None = None
    voucher_code: str | None
    pickup_store_id: int | None = Field(description="The store of a click & collect order")
    shipping_address: AddressOut
    billing_address: AddressOut
    payment: PaymentOut | None
    fulfillment: FulfillmentOut | None = Field(
        description="The first shipment; a split order has more, in `fulfillments`.")
    fulfillments: list[FulfillmentOut] = Field(description="One per stock location the order ships from.")
    created_at: UtcDateTime
    paid_at: UtcDateTime | None
    shipped_at: UtcDateTime | None
    delivered_at: UtcDateTime | None
    cancelled_at: UtcDateTime | None


class OrderEnvelope(ApiModel):
    order: OrderOut


class OrderPage(ApiModel):
    items: list[OrderOut]
    page: int
    per_page: int
    total: int
    pages: int


class CancelIn(RequestBody):
    reason: str = Field("", max_length=500)


# What an order response shows besides the order's own columns.
RENDERED = (selectinload(Order.items), selectinload(Order.payments), selectinload(Order.fulfillments))


def load_for_response(order: Order) -> Order:
    """The order with everything ``render_order`` reads, loaded now (fresh, in the request's
    transaction): rendering then sends no SQL. A lazy load while rendering would meet a
    dead connection inside pydantic, which wraps the error in a ValidationError: a 500
    instead of the 503 the outage deserves."""
    return db.session.scalars(
        select(Order).where(Order.id == order.id).options(*RENDERED)
        .execution_options(populate_existing=True)
    ).one()


def render_order(order: Order) -> OrderOut:
    """The API's view of an order loaded by ``load_for_response`` (or with ``RENDERED``)."""
    out = OrderOut.model_validate(order)
    if order.shipping_method_code:
        out.shipping_method = ShippingMethodRef(code=order.shipping_method_code,
                                                name=order.shipping_method_name or order.shipping_method_code)
    return out


@api.get("/orders")
@endpoint(query=PageQuery, response=OrderPage, auth="required", tags=["orders"],
          summary="The shopper's orders, newest first")
def list_orders(query: PageQuery):
    statement = (select(Order).where(Order.user_id == current_user().id)
                 .options(*RENDERED)
                 .order_by(Order.created_at.desc(), Order.id.desc()))
    return paginate(statement, page=query.page, per_page=query.per_page, render=render_order)


def _requested_order(order_number: str) -> Order:
    """The order the request names: the signed-in shopper's own, or the one its X-Order-Token
    opens. Raises AuthenticationFailed (neither credential), NotFound (also for a wrong token
    or another shopper's order)."""
    user, token = optional_user(), request.headers.get(ORDER_TOKEN)
    if user is None and not token:
        raise AuthenticationFailed("Authentication required (or the order's X-Order-Token).")
    return find_order_for(user, order_number, token)


@api.get("/orders/<order_number>")
@endpoint(response=OrderOut, auth="optional", headers=[ORDER_TOKEN_HEADER], tags=["orders"],
          summary="One of the shopper's orders, or a guest order by its token")
def get_order(order_number: str):
    """A signed-in shopper's own order, or, with `X-Order-Token` instead of a bearer token,
    the guest order it opens. 404 for anything else (another's order, a wrong token)."""
    return render_order(load_for_response(_requested_order(order_number)))


@api.post("/orders/<order_number>/cancel")
@endpoint(response=OrderOut, auth="optional", headers=[ORDER_TOKEN_HEADER], tags=["orders"],
          errors=[409], summary="Cancel an order that has not been packed")
def cancel_my_order(order_number: str):
    """`created`: the reservation is released and the payment `cancelled`. `paid`: stock is
    returned and the payment refunded in full (`refunded`). If the payment provider cannot
    be reached, the order is cancelled all the same and the refund is retried until it is
    made (the payment reads `completed` until then). Any later status is 409. An optional
    JSON body may give a `reason` (stored as the order's cancel reason). A guest cancels
    with the order's `X-Order-Token`."""
    order = _requested_order(order_number)
    user = optional_user()
    reason = _optional_reason() or "cancelled by the customer"
    actor = Actor.of_user(user) if user is not None else guest_actor(order.email)
    cancel_order(order, actor=actor, reason=reason)
    # Committed before rendering: the refund (or intent cancellation) runs right after the
    # commit, outside the locks, and the answer shows where it got to.
    commit()
    return render_order(load_for_response(order))


@api.post("/orders/<order_number>/claim")
@endpoint(response=OrderOut, auth="required", headers=[HeaderParam(
    ORDER_TOKEN, ORDER_TOKEN_HEADER.description, MAX_ORDER_TOKEN_LENGTH, required=True)],
    tags=["orders"], errors=[409], summary="Adopt a guest order into the signed-in account")
def claim_guest_order(order_number: str):
    """The signed-in shopper presents a guest order's `X-Order-Token`: the order becomes
    theirs (listed under `GET /orders`). Never by matching the email, which nobody verified.
    Claiming it again is 200; an order another account claimed is 409; a wrong token 404.
    The token keeps opening the order."""
    order = claim_order(current_user(), order_number, request.headers.get(ORDER_TOKEN))
    commit()
    return render_order(load_for_response(order))


def _optional_reason() -> str:
    if not request.get_data():
        return ""
    return parse_body(CancelIn).reason

