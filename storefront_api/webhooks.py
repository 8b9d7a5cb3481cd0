"""``POST /webhooks/stripe``: Stripe's (or the simulated gateway's) signed events."""

from __future__ import annotations

from flask import Blueprint, current_app, request

from ecom.commerce.gateway import InvalidWebhook, verify_stripe_signature
from ecom.commerce.order_actions import handle_stripe_event
from storefront_api.errors import BadRequest, register_blueprint_handlers
from storefront_api.openapi import HeaderParam, endpoint
from storefront_api.schemas import ApiModel

webhooks = Blueprint("webhooks", __name__, url_prefix="/webhooks")
register_blueprint_handlers(webhooks)


class WebhookAck(ApiModel):
    received: bool
    processed: bool


@webhooks.post("/stripe")
@endpoint(response=WebhookAck, tags=["webhooks"], errors=[400, 503],
          headers=[HeaderParam("Stripe-Signature", "Stripe's signature header (t=...,v1=...).", 2048)],
          summary="Stripe webhook events")
def stripe_webhook():
    """Verifies `Stripe-Signature` against `STRIPE_WEBHOOK_SECRET` (300 s tolerance); a
    bad or missing signature is 400 and changes nothing. Handles
    `payment_intent.succeeded`, `payment_intent.payment_failed` and `charge.refunded`;
    other types are acknowledged and ignored. Each event id is processed at most once."""
    try:
        event = verify_stripe_signature(
            request.get_data(), request.headers.get("Stripe-Signature"),
            current_app.config.get("STRIPE_WEBHOOK_SECRET"),
        )
    except InvalidWebhook as exc:
        raise BadRequest(f"Invalid webhook: {exc}") from exc
    return {"received": True, "processed": handle_stripe_event(event)}
