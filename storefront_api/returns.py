"""A shopper's (or a guest's, with the order token) returns of a delivered order."""

from __future__ import annotations

from pydantic import Field

from ecom.actor import Actor
from ecom.commerce.guest_orders import guest_actor
from ecom.commerce.returns import LineRequest, find_return, request_return, returns_of, withdraw_return
from storefront_api import api
from storefront_api.openapi import endpoint
from storefront_api.orders import ORDER_TOKEN_HEADER, requested_order
from storefront_api.schemas import ApiModel, ItemList, JsonInt, Money, RequestBody, UtcDateTime
from storefront_api.security import optional_user


class ReturnLineIn(RequestBody):
    sku: str = Field(min_length=1, max_length=64)
    quantity: JsonInt = Field(ge=1, le=1000)
    reason: str = Field("", max_length=500)


class ReturnIn(RequestBody):
    lines: list[ReturnLineIn] = Field(min_length=1, max_length=100)


class ReturnLineOut(ApiModel):
    sku: str
    product_name: str
    quantity: int
    reason: str
    condition: str | None = Field(description="Once received: `restock` or `damaged`")
    refund_amount: Money | None


class ReturnOut(ApiModel):
    rma_number: str
    status: str = Field(description="requested, approved, rejected, received, refunded or closed")
    lines: list[ReturnLineOut]
    refund_amount: Money | None
    created_at: UtcDateTime
    refunded_at: UtcDateTime | None


def _render(ret) -> dict:
    return {
        "rma_number": ret.rma_number, "status": ret.status, "refund_amount": ret.refund_amount,
        "created_at": ret.created_at, "refunded_at": ret.refunded_at,
        "lines": [{"sku": line.order_item.sku, "product_name": line.order_item.product_name,
                   "quantity": line.quantity, "reason": line.reason, "condition": line.condition,
                   "refund_amount": line.refund_amount} for line in ret.lines],
    }


@api.post("/orders/<order_number>/returns")
@endpoint(body=ReturnIn, response=ReturnOut, status=201, auth="optional", headers=[ORDER_TOKEN_HEADER],
          tags=["orders"], errors=[409], summary="Ask for units of a delivered order back")
def create_return(order_number: str, body: ReturnIn):
    """Within `RETURN_WINDOW_DAYS` of delivery, ask for `lines` (SKU, units, reason) back: 201
    with the return's RMA number, status `requested`. A unit can be asked back once (a
    rejected return gives its units back). 422 for a SKU not on the order or more units
    than are left to return; 409 when the order is not delivered or the window closed. A
    guest asks with the order's `X-Order-Token`."""
    order = requested_order(order_number)
    user = optional_user()
    actor = Actor.of_user(user) if user is not None else guest_actor(order.email)
    ret = request_return(order, [LineRequest(line.sku, line.quantity, line.reason) for line in body.lines],
                         actor=actor)
    return _render(ret)


@api.get("/orders/<order_number>/returns")
@endpoint(response=ItemList[ReturnOut], auth="optional", headers=[ORDER_TOKEN_HEADER], tags=["orders"],
          summary="The order's returns, oldest first")
def list_returns(order_number: str):
    """The returns of the shopper's own order, or of the guest order the `X-Order-Token` opens."""
    return {"items": [_render(ret) for ret in returns_of(requested_order(order_number))]}




@api.post("/orders/<order_number>/returns/<rma_number>/cancel")
@endpoint(response=ReturnOut, auth="optional", headers=[ORDER_TOKEN_HEADER], tags=["orders"], errors=[409],
          summary="Withdraw a return request staff have not decided on yet")
def cancel_return(order_number: str, rma_number: str):
    """The shopper (or the guest, with the order's `X-Order-Token`) withdraws their own return
    while it is `requested`: 200 with the return `closed`, its units free to be asked for
    again. 409 once it was approved, rejected, received, refunded or closed; 404 for an RMA
    number not of this order."""
    order = requested_order(order_number)
    user = optional_user()
    actor = Actor.of_user(user) if user is not None else guest_actor(order.email)
    return _render(withdraw_return(find_return(order, rma_number), actor=actor))
