"""The real Stripe API through ``stripe.StripeClient``."""

from __future__ import annotations

from typing import Any

import stripe

from ecom.commerce.gateways.base import CANCELED, REQUIRES_PAYMENT_METHOD, Intent, Refund, intent_from_dict
from ecom.commerce.gateways.webhooks import verify_stripe_signature
from ecom.errors import GatewayUnavailable, NotFound

UNEXPECTED_STATE = "payment_intent_unexpected_state"


class StripeGateway:
    """Payment intents and refunds at Stripe; every failure to get an answer is GatewayUnavailable."""

    name = "stripe"

    def __init__(self, secret_key: str, webhook_secret: str | None, api_base: str | None = None, *,
                 timeout_seconds: float):
        """``timeout_seconds``: how long one attempt may wait to connect and for its answer
        (one retry follows a timeout, so a call waits at most about twice that)."""
        options: dict[str, Any] = {"max_network_retries": 1,
                                   "http_client": stripe.new_default_http_client(timeout=timeout_seconds)}
        if api_base:
            options["base_addresses"] = {"api": api_base}
        self._client = stripe.StripeClient(secret_key, **options)
        self._webhook_secret = webhook_secret

    def create_intent(self, amount_minor, currency, metadata, idempotency_key=None) -> Intent:
        params = {
            "amount": amount_minor,
            "currency": currency,
            "metadata": {k: str(v) for k, v in metadata.items()},
            "automatic_payment_methods": {"enabled": True, "allow_redirects": "never"},
        }
        options = {"idempotency_key": idempotency_key} if idempotency_key else None
        return self._call(self._client.v1.payment_intents.create, params, options)

    def retrieve_intent(self, intent_id) -> Intent:
        return self._call(self._client.v1.payment_intents.retrieve, intent_id)

    def confirm_intent(self, intent_id, payment_method, return_url=None) -> Intent:
        params = {"payment_method": payment_method}
        if return_url:
            # A card that needs 3-D Secure then answers next_action redirect_to_url (Stripe's page).
            params["return_url"] = return_url
        try:
            return self._call(self._client.v1.payment_intents.confirm, intent_id, params)
        except _Declined:
            # Stripe answers a declined card with an error; the intent itself tells the story.
            return self.retrieve_intent(intent_id)
        except _UnknownPaymentMethod:
            # As the simulated gateway answers it: a decline the shopper can retry, not a 404.
            return self.retrieve_intent(intent_id).but(status=REQUIRES_PAYMENT_METHOD,
                                                       failure_message="Unknown payment method.")

    def cancel_intent(self, intent_id) -> Intent:
        try:
            return self._call(self._client.v1.payment_intents.cancel, intent_id)
        except GatewayUnavailable as exc:
            # Stripe refuses to cancel an intent that is cancelled already
            # (payment_intent_unexpected_state): for us that cancellation is done.
            if getattr(exc.__cause__, "code", None) != UNEXPECTED_STATE:
                raise
            intent = self.retrieve_intent(intent_id)
            if intent.status != CANCELED:
                raise
            return intent

    def refund(self, intent_id, amount_minor=None, idempotency_key=None) -> Refund:
        params: dict[str, Any] = {"payment_intent": intent_id}
        if amount_minor is not None:
            params["amount"] = amount_minor
        # The key names our refund row: a retry after a lost answer gets Stripe's first refund back.
        options = {"idempotency_key": idempotency_key} if idempotency_key else None
        try:
            refund = self._client.v1.refunds.create(params, options)
        except stripe.StripeError as exc:
            raise _unavailable(exc) from exc
        return Refund(id=refund.id, amount_minor=refund.amount, status=refund.status or "")

    def verify_webhook(self, payload, sig_header) -> dict:
        return verify_stripe_signature(payload, sig_header, self._webhook_secret)

    def _call(self, method, *args) -> Intent:
        try:
            return intent_from_dict(method(*args))
        except stripe.CardError as exc:
            raise _Declined(str(exc)) from exc
        except stripe.InvalidRequestError as exc:
            if exc.code == "resource_missing" and exc.param == "payment_method":
                raise _UnknownPaymentMethod(str(exc)) from exc
            if exc.code == "resource_missing":
                raise NotFound("Unknown payment intent.") from exc
            raise _unavailable(exc) from exc
        except stripe.StripeError as exc:
            raise _unavailable(exc) from exc


def _unavailable(exc: stripe.StripeError) -> GatewayUnavailable:
    """An upstream error answer is a 502 (bad gateway); no answer at all a 503."""
    answered = exc.http_status is not None and not isinstance(exc, stripe.APIConnectionError)
    return GatewayUnavailable(
        "The payment provider is unavailable. Please try again shortly.",
        status=502 if answered else 503,
        gateway_message=str(exc),
    )


class _Declined(Exception):
    pass


class _UnknownPaymentMethod(Exception):
    pass
