"""Checkout: open a payment intent for the cart, then confirm the payment."""

from __future__ import annotations

from typing import Annotated, Literal
from urllib.parse import urljoin

from flask import jsonify, request
from flask_limiter.util import get_remote_address
from pydantic import AfterValidator, ConfigDict, EmailStr, Field, model_validator
from sqlalchemy import select

from ecom.commerce import guest_orders
from ecom.commerce.cart import issued_token
from ecom.commerce.checkout import Finalized, confirm_payment, start_checkout
from ecom.commerce.guest_orders import Guest
from ecom.commerce.idempotency import request_fingerprint, run_idempotently
from ecom.commerce.models import Order
from ecom.errors import AuthenticationFailed, Conflict, NotFound, PaymentDeclined, ValidationFailed
from ecom.extensions import db
from ecom.unit_of_work import commit
from storefront_api import api
from storefront_api.cart import CART_TOKEN, CART_TOKEN_HEADER
from storefront_api.openapi import HeaderParam, endpoint
from storefront_api.orders import (
    ORDER_TOKEN,
    ORDER_TOKEN_HEADER,
    OrderEnvelope,
    OrderOut,
    load_for_response,
    render_order,
)
from storefront_api.price_schemas import COUNTRY_CODES, known_country
from storefront_api.schemas import ApiModel, JsonInt, RequestBody
from storefront_api.security import optional_user

IDEMPOTENCY_KEY = HeaderParam(
    "Idempotency-Key",
    "Retrying with the same key (and the same body) returns the first answer and creates nothing new.",
    max_length=255,
    pattern=r"\S",  # blank keys are refused (422)
)


class AddressIn(RequestBody):
    full_name: str = Field(min_length=1, max_length=200)
    street: str = Field(min_length=1, max_length=300)
    city: str = Field(min_length=1, max_length=120)
    state: str = Field("", max_length=120)
    postal_code: str = Field(min_length=1, max_length=20)
    country: Annotated[str, AfterValidator(known_country)] = Field(
        pattern=r"^[A-Za-z]{2}$", json_schema_extra={"enum": COUNTRY_CODES}, description="ISO 3166-1 alpha-2")
    phone: str | None = Field(None, max_length=40)


def _no_default(schema: dict) -> None:
    # "Absent" is the default, not null: a documented null default would invite clients to send it.
    schema.pop("default", None)


# A voucher code as the shopper typed it (any case); absent for none.
def voucher_code_field():
    return Field(None, min_length=1, max_length=64, json_schema_extra=_no_default,
                 description="A voucher code, in any case; a code that cannot be used is 422 with "
                             "errors.voucher_code saying why")


class CheckoutIn(RequestBody):
    # Absent rather than null; the document says "exactly one shipping field, at most one
    # billing field" so that clients (and schemathesis) know the rule the validator applies.
    model_config = ConfigDict(json_schema_extra={
        "oneOf": [{"required": ["shipping_address_id"]}, {"required": ["shipping_address"]}],
        "not": {"required": ["billing_address_id", "billing_address"]},
    })

    shipping_address_id: JsonInt = Field(None, ge=1, le=2**31 - 1, json_schema_extra=_no_default)
    shipping_address: AddressIn = Field(None, json_schema_extra=_no_default)
    billing_address_id: JsonInt = Field(None, ge=1, le=2**31 - 1, json_schema_extra=_no_default)
    billing_address: AddressIn = Field(None, json_schema_extra=_no_default)
    shipping_method: str = Field(None, min_length=1, max_length=40, json_schema_extra=_no_default,
                                 description="A code the quote offered; default: the cheapest that is not "
                                             "a pickup")
    voucher_code: str = voucher_code_field()
    email: EmailStr = Field(None, max_length=254, json_schema_extra=_no_default,
                            description="Required for a guest checkout (no bearer token, the guest "
                                        "cart's X-Cart-Token): where the order's emails go; a guest "
                                        "gives the addresses in full (no saved-address ids). Ignored "
                                        "for a signed-in shopper, whose order uses the account's email.")

    @model_validator(mode="after")
    def _one_of_each(self):
        if (self.shipping_address_id is None) == (self.shipping_address is None):
            raise ValueError("give exactly one of shipping_address_id and shipping_address")
        if self.billing_address_id is not None and self.billing_address is not None:
            raise ValueError("give at most one of billing_address_id and billing_address")
        return self


class CheckoutOut(ApiModel):
    order: OrderOut
    payment_intent_id: str
    client_secret: str
    order_token: str | None = Field(
        None, description="Guest orders only (null for a signed-in shopper's): the order's token, "
                          "shown this once (and again to a retry with the same Idempotency-Key). "
                          "Send it as X-Order-Token to read, confirm or cancel the order, and to "
                          "claim it once signed in.")


class ConfirmIn(RequestBody):
    payment_intent_id: str = Field(min_length=1, max_length=255)
    # A Stripe PaymentMethod id, as Stripe.js gives it (or a test one: pm_card_visa); anything
    # else names no payment method. No \w: it is Unicode in Python, ASCII in JSON Schema.
    payment_method: str | None = Field(None, min_length=1, max_length=255, pattern=r"^pm_[A-Za-z0-9_]+$",
                                       examples=["pm_card_visa"])
    return_url: str | None = Field(None, max_length=2000, pattern=r"^https?://[^\s\x00-\x1f\x7f]+$",
                                   description="Where Stripe's 3-D Secure page sends the customer back")


class PaymentActionOut(ApiModel):
    status: Literal["requires_action"]


class NextActionOut(ApiModel):
    type: Literal["redirect_to_url", "use_stripe_sdk"] = Field(
        description="`redirect_to_url`: send the customer to `url`. `use_stripe_sdk` (Stripe, confirmed "
                    "without a `return_url`): Stripe.js handles it with the intent's client secret.")
    url: str | None = Field(description="The page where the customer authenticates the payment "
                                        "(3-D Secure); null for `use_stripe_sdk`")


class ConfirmPendingOut(ApiModel):
    """The payment needs the customer (3-D Secure): send them to ``next_action.url``, then
    confirm again (or read the order) to see it paid or declined."""

    order: OrderOut
    payment: PaymentActionOut
    next_action: NextActionOut


def _address(fields: AddressIn | None) -> dict | None:
    if fields is None:
        return None
    data = fields.model_dump()
    data["country"] = data["country"].upper()
    return data


@api.post("/checkout/payment-intent")
@endpoint(body=CheckoutIn, response=CheckoutOut, status=201, auth="optional", tags=["checkout"],
          headers=[IDEMPOTENCY_KEY, CART_TOKEN_HEADER], errors=[409, 502, 503],
          summary="Place an order from the cart and open its payment intent")
def create_payment_intent(body: CheckoutIn):
    """Creates the order (`created`), reserves every line's stock (all or nothing; 409 naming
    the short SKUs), opens a payment intent for the total and records a pending payment.
    The cart is kept until the payment succeeds. A cart has one open unpaid order: the
    previous one is cancelled (its stock released, its intent cancelled) in favour of the
    new one. 409 when the shopper has `MAX_OPEN_UNPAID_ORDERS` other orders waiting for
    payment. The order is priced by the same quote as `POST /checkout/quote` (with
    `shipping_method` and `voucher_code`) and carries the priced fields; the voucher's use
    is taken with the stock, so a code with uses left for only some of many concurrent
    checkouts is refused (422, `errors.voucher_code`) to the rest.

    **Guest checkout**: without a bearer token, send the guest cart's `X-Cart-Token` and an
    `email` with a full `shipping_address`. The order has no account; the answer's
    `order_token` (shown once) opens it (`X-Order-Token`). 409 when
    `MAX_OPEN_GUEST_ORDERS_PER_IP` guest orders from the same client address wait for
    payment. A guest's `Idempotency-Key` belongs to the cart token."""
    user = optional_user()
    buyer = user if user is not None else _guest(body)
    key = request.headers.get("Idempotency-Key")

    def produce() -> tuple[int, dict]:
        order, intent = start_checkout(
            buyer,
            shipping_address_id=body.shipping_address_id,
            shipping_address=_address(body.shipping_address),
            billing_address_id=body.billing_address_id,
            billing_address=_address(body.billing_address),
            shipping_method=body.shipping_method,
            voucher_code=body.voucher_code,
            idempotency_key=key,
        )
        answer = CheckoutOut(order=render_order(order), payment_intent_id=intent.id,
                             client_secret=intent.client_secret or "",
                             order_token=guest_orders.order_token(order) if user is None else None)
        return 201, answer.model_dump(mode="json")

    if key is None:
        status, answer = produce()
    else:
        fingerprint = request_fingerprint("checkout.payment-intent", body.model_dump(mode="json"))
        if user is not None:
            stored = run_idempotently(user.id, key, fingerprint, produce)
        else:
            # The token is not stored with the answer: a replay derives it again.
            stored = run_idempotently(None, key, fingerprint, produce, cart_token=buyer.cart_token,
                                      stored_form=guest_orders.strip_order_token)
        status, answer = stored.status, _with_order_token(stored.body, user)
    # Already rendered JSON (possibly the stored first answer): send it as it is.
    response = jsonify(answer)
    response.status_code = status
    return response


def _guest(body: CheckoutIn) -> Guest:
    """The guest checking out: their cart token, email and client address. Raises
    AuthenticationFailed (neither a bearer token nor a cart token), ValidationFailed."""
    cart_token = request.headers.get(CART_TOKEN)
    if not cart_token:
        raise AuthenticationFailed("Authentication required (or, for a guest checkout, the guest "
                                   "cart's X-Cart-Token and an email).")
    if not issued_token(cart_token):
        raise NotFound("Cart not found.")  # as the cart's own endpoints answer a token we never issued
    errors: dict[str, list[str]] = {}
    if body.email is None:
        errors["email"] = ["Required for a guest checkout."]
    for field in ("shipping_address_id", "billing_address_id"):
        if getattr(body, field) is not None:
            errors[field] = ["A guest has no saved addresses: give the address itself."]
    if errors:
        raise ValidationFailed("A guest checkout needs an email and the addresses in full.", errors)
    return Guest.checking_out(cart_token, body.email, get_remote_address())


def _with_order_token(answer: dict, user) -> dict:
    """A guest's answer as shown: with the order token (a stored answer has it taken out)."""
    if user is not None or answer.get("order_token") or "order" not in answer:
        return answer
    order = db.session.scalar(select(Order).where(Order.order_number == answer["order"]["order_number"]))
    return {**answer, "order_token": guest_orders.order_token(order)} if order is not None else answer


@api.post("/checkout/confirm")
@endpoint(body=ConfirmIn, response=OrderEnvelope, auth="optional", tags=["checkout"],
          headers=[ORDER_TOKEN_HEADER], responses={202: ConfirmPendingOut},
          errors=[402, 404, 409, 502, 503], summary="Confirm the payment and finalise the order")
def confirm_checkout(body: ConfirmIn):
    """Asks the gateway for the intent's true status (confirming it with `payment_method`
    when it still needs one; the simulated gateway defaults to `pm_card_visa`).
    Success: the order is paid (200; again 200 on a repeat). Decline: 402, the order stays
    `created` with its stock held. A cancelled order: 409 (refunded if the money arrived).
    A guest confirms with the order's `X-Order-Token` instead of a bearer token.

    **3-D Secure** (`pm_card_threeDSecure2Required`, `pm_card_authenticationRequired`): 202
    with `next_action.url`, the page where the customer authenticates (the simulated
    gateway's own page, or Stripe's, which returns to `return_url`); the order stays
    `created` with its stock held. Once the customer has answered there, confirm again (or
    read the order): 200 paid, or 402 when the authentication failed."""
    user = optional_user()
    token = request.headers.get(ORDER_TOKEN)
    if user is None and not token:
        raise AuthenticationFailed("Authentication required (or the order's X-Order-Token).")
    result = confirm_payment(user, body.payment_intent_id, body.payment_method, order_token=token,
                             return_url=body.return_url)
    if result.outcome == Finalized.DECLINED:
        payment = result.order.payment
        reason = (payment.failure_message if payment else None) or "declined"
        # The failed payment and its PAYMENT_FAILED event are kept; the client hears 402.
        commit()
        raise PaymentDeclined(f"The payment was declined: {reason}")
    if result.outcome == Finalized.CANCELLED:
        commit()
        raise Conflict(f"Order {result.order.order_number} was cancelled; nothing was charged.")
    if result.outcome == Finalized.REFUNDED:
        number = result.order.order_number
        # The refund is booked and must stay booked; the shopper hears why it was not accepted.
        commit()
        raise Conflict(f"Order {number} was cancelled before the payment arrived; it has been refunded.")
    if result.outcome == Finalized.PENDING and result.action_required:
        url = result.next_action_url
        # The simulator's page is a path of this app: absolute, as Stripe's url is.
        action = (NextActionOut(type="redirect_to_url", url=urljoin(request.url_root, url)) if url
                  else NextActionOut(type="use_stripe_sdk", url=None))
        return ConfirmPendingOut(order=render_order(load_for_response(result.order)),
                                 payment=PaymentActionOut(status="requires_action"), next_action=action), 202
    if result.outcome == Finalized.PENDING:
        raise Conflict("The payment has not completed yet; confirm it with the payment provider first.")
    return {"order": render_order(load_for_response(result.order))}
