"""``POST /webhooks/stripe``: Stripe's (or the simulated gateway's) signed events."""

from __future__ import annotations

from typing import Any, Literal

from flask import Blueprint, request
from pydantic import BaseModel, ConfigDict, Field, RootModel

from ecom.commerce.gateways.webhooks import MAX_EVENT_ID_LENGTH, InvalidWebhook, verify_stripe_signature
from ecom.commerce.order_actions import CHARGE_REFUNDED, HANDLED_EVENTS, INTENT_EVENTS, handle_stripe_event
from ecom.runtime import settings
from storefront_api.errors import BadRequest, register_blueprint_handlers
from storefront_api.openapi import HeaderParam, endpoint
from storefront_api.schemas import ApiModel

webhooks = Blueprint("webhooks", __name__, url_prefix="/webhooks")
register_blueprint_handlers(webhooks)

# What Stripe sends: `t=<unix time>,v1=<hex HMAC-SHA256>[,v0=...]`.
STRIPE_SIGNATURE = HeaderParam(
    "Stripe-Signature", "Stripe's signature of the exact body (t=<timestamp>,v1=<hex>).", 2048,
    pattern=r"^t=[0-9]+(,v[0-9]+=[0-9a-f]+)+$", required=True,
)


# The event as documented. The handler does not parse the body with these models:
# it verifies the signature over the raw bytes first, then ecom.commerce.gateways.webhooks
# checks what the models state (InvalidWebhook, 400). Only the fields we read are
# described; Stripe sends many more, so every object allows others.
class _StripeObject(BaseModel):
    model_config = ConfigDict(extra="allow")


class PaymentIntentError(_StripeObject):
    code: str | None = None
    message: str | None = None


class PaymentIntentObject(_StripeObject):
    id: str = Field(min_length=1)
    status: str
    amount: int = Field(ge=0, description="Minor units (cents)")
    currency: str | None = None
    last_payment_error: PaymentIntentError | None = None
    metadata: dict[str, Any] | None = None


class ChargeObject(_StripeObject):
    payment_intent: str | None = None
    amount_refunded: int | None = Field(None, ge=0, description="Minor units refunded so far")


class PaymentIntentEventData(_StripeObject):
    object: PaymentIntentObject


class ChargeEventData(_StripeObject):
    object: ChargeObject


class OtherEventData(_StripeObject):
    object: dict[str, Any]


class _StripeEvent(_StripeObject):
    id: str = Field(min_length=1, max_length=MAX_EVENT_ID_LENGTH)


class PaymentIntentEvent(_StripeEvent):
    type: Literal[INTENT_EVENTS]
    data: PaymentIntentEventData


class ChargeRefundedEvent(_StripeEvent):
    type: Literal[CHARGE_REFUNDED]
    data: ChargeEventData


class OtherEvent(_StripeEvent):
    """Any other type: acknowledged and ignored."""

    type: str = Field(min_length=1, json_schema_extra={"not": {"enum": sorted(HANDLED_EVENTS)}})
    data: OtherEventData


class StripeEventIn(RootModel[PaymentIntentEvent | ChargeRefundedEvent | OtherEvent]):
    """A Stripe event, signed by `Stripe-Signature`."""


class WebhookAck(ApiModel):
    received: bool
    processed: bool


@webhooks.post("/stripe")
@endpoint(body=StripeEventIn, raw_body=True, headers=[STRIPE_SIGNATURE], response=WebhookAck,
          tags=["webhooks"], errors=[400, 409, 502, 503], summary="Stripe webhook events")
def stripe_webhook():
    """Verifies `Stripe-Signature` over the raw body against `STRIPE_WEBHOOK_SECRET` (300 s
    tolerance); a bad or missing signature is 400 and changes nothing, and so is a signed
    body that is not the event described here. Handles `payment_intent.succeeded`,
    `payment_intent.payment_failed` and `charge.refunded`; other types are acknowledged and
    ignored. Each event id is processed at most once. A success for another amount than the
    order's is 409 (nothing recorded, so a corrected retry is processed)."""
    try:
        event = verify_stripe_signature(
            request.get_data(), request.headers.get("Stripe-Signature"),
            settings().get("STRIPE_WEBHOOK_SECRET"),
        )
        processed = handle_stripe_event(event)
    except InvalidWebhook as exc:
        raise BadRequest(f"Invalid webhook: {exc}") from exc
    return {"received": True, "processed": processed}
