"""A gateway that needs no network, for development and tests."""

from __future__ import annotations

import hashlib
import json
import secrets
import time

from ecom.commerce.gateways.base import (
    AUTHENTICATION_FAILED,
    AUTHENTICATION_TEST_PAYMENT_METHODS,
    CANCELED,
    DECLINING_TEST_PAYMENT_METHODS,
    DEFAULT_TEST_PAYMENT_METHOD,
    REQUIRES_ACTION,
    REQUIRES_PAYMENT_METHOD,
    SUCCEEDED,
    Intent,
    Refund,
    to_minor,
)
from ecom.commerce.gateways.webhooks import sign_webhook, verify_stripe_signature
from ecom.errors import NotFound

SIMULATED_INTENT_PREFIX = "pi_sim_"
# The simulator's authentication page (a page of the app: storefront_api.simulated_gateway).
AUTHENTICATION_PATH = "/simulated-gateway/authenticate/{intent_id}"
# Stripe's test payment methods that succeed (https://docs.stripe.com/testing): the only ones
# this gateway takes money with. Anything else, "pm_free_stuff" included, is declined.
SUCCEEDING_TEST_PAYMENT_METHODS = frozenset({
    DEFAULT_TEST_PAYMENT_METHOD, "pm_card_visa_debit", "pm_card_mastercard", "pm_card_mastercard_debit",
    "pm_card_amex", "pm_card_discover", "pm_card_diners", "pm_card_jcb", "pm_card_unionpay",
})


class SimulatedGateway:
    """Stripe's test mode, played locally.

    Intents live in the ``payments`` table (their id is the payment's
    ``stripe_payment_intent_id``), so every process sees the same state: an
    intent is ``succeeded`` once its payment took the money (refunded or not),
    ``canceled`` when its payment or order was cancelled unpaid, ``requires_action``
    while the customer is asked to authenticate (the payment's ``next_action_url``
    says where), otherwise it waits for a payment method, carrying the last decline
    if there was one. Confirming is a pure function of the test payment method,
    like Stripe's test mode: SUCCEEDING_TEST_PAYMENT_METHODS succeed, the
    declining ones (``DECLINING_TEST_PAYMENT_METHODS``) and every other method
    are declined, and the shopper may try again;
    AUTHENTICATION_TEST_PAYMENT_METHODS (3-D Secure) require action, which the
    customer settles on the simulator's page (``authenticate``). Webhooks are
    signed with the same secret and checked by the same code as Stripe's.
    """

    name = "simulated"

    def __init__(self, webhook_secret: str | None):
        self._webhook_secret = webhook_secret

    def create_intent(self, amount_minor, currency, metadata, idempotency_key=None) -> Intent:
        intent_id = f"{SIMULATED_INTENT_PREFIX}{secrets.token_hex(12)}"
        return Intent(
            id=intent_id,
            client_secret=f"{intent_id}_secret_{secrets.token_urlsafe(18)}",
            status=REQUIRES_PAYMENT_METHOD,
            amount_minor=amount_minor,
            currency=currency,
            metadata=dict(metadata),
        )

    def retrieve_intent(self, intent_id) -> Intent:
        from ecom.commerce.models import Payment
        from ecom.commerce.status import MONEY_TAKEN, OrderStatus, PaymentStatus
        from ecom.extensions import db

        payment = db.session.query(Payment).filter_by(stripe_payment_intent_id=intent_id).one_or_none()
        if payment is None:
            raise NotFound("Unknown payment intent.")
        action = None
        if payment.status in MONEY_TAKEN:
            status = SUCCEEDED
        elif payment.status == PaymentStatus.CANCELLED or payment.order.status == OrderStatus.CANCELLED:
            status = CANCELED
        elif payment.next_action_url:
            status, action = REQUIRES_ACTION, payment.next_action_url
        else:
            status = REQUIRES_PAYMENT_METHOD
        failure = payment.failure_message if payment.status == PaymentStatus.FAILED and not action else None
        return Intent(
            id=intent_id,
            client_secret=None,
            status=status,
            amount_minor=to_minor(payment.amount),
            currency=payment.currency,
            failure_message=failure,
            next_action_url=action,
        )

    def confirm_intent(self, intent_id, payment_method, return_url=None) -> Intent:
        current = self.retrieve_intent(intent_id)
        if current.status in (SUCCEEDED, CANCELED, REQUIRES_ACTION):
            return current
        if payment_method in AUTHENTICATION_TEST_PAYMENT_METHODS:
            # The intent's state is the payment's: it now waits for the customer's answer.
            url = AUTHENTICATION_PATH.format(intent_id=intent_id)
            self._payment(intent_id).next_action_url = url
            return current.but(status=REQUIRES_ACTION, failure_message=None, next_action_url=url)
        if payment_method in DECLINING_TEST_PAYMENT_METHODS:
            return current.but(status=REQUIRES_PAYMENT_METHOD, failure_message="Your card was declined.")
        if payment_method not in SUCCEEDING_TEST_PAYMENT_METHODS:
            return current.but(status=REQUIRES_PAYMENT_METHOD, failure_message="Unknown payment method.")
        return current.but(status=SUCCEEDED, failure_message=None)

    def authenticate(self, intent_id: str, *, approve: bool) -> Intent:
        """The customer's answer on the authentication page: the intent succeeds, or goes back
        to needing a payment method with the failure (Stripe's
        ``payment_intent_authentication_failure``). An intent not waiting for it is answered
        as it is. Raises NotFound."""
        current = self.retrieve_intent(intent_id)
        if current.status != REQUIRES_ACTION:
            return current
        self._payment(intent_id).next_action_url = None
        if approve:
            return current.but(status=SUCCEEDED, next_action_url=None)
        return current.but(status=REQUIRES_PAYMENT_METHOD, failure_message=AUTHENTICATION_FAILED,
                           next_action_url=None)

    @staticmethod
    def _payment(intent_id: str):
        from ecom.commerce.models import Payment
        from ecom.extensions import db

        return db.session.query(Payment).filter_by(stripe_payment_intent_id=intent_id).one()

    def cancel_intent(self, intent_id) -> Intent:
        return self.retrieve_intent(intent_id).but(status=CANCELED)

    def refund(self, intent_id, amount_minor=None, idempotency_key=None) -> Refund:
        intent = self.retrieve_intent(intent_id)
        # As Stripe answers a repeated Idempotency-Key: the first refund again, not a second one
        # (its id follows from the key, so every process gives the same answer).
        refund_id = (f"re_sim_{hashlib.sha256(idempotency_key.encode()).hexdigest()[:24]}" if idempotency_key
                     else f"re_sim_{secrets.token_hex(12)}")
        return Refund(
            id=refund_id,
            amount_minor=intent.amount_minor if amount_minor is None else amount_minor,
            status=SUCCEEDED,
        )

    def verify_webhook(self, payload, sig_header) -> dict:
        return verify_stripe_signature(payload, sig_header, self._webhook_secret)

    def build_webhook(self, event_type: str, obj: dict, event_id: str | None = None) -> tuple[str, str]:
        """A signed ``(payload, Stripe-Signature)`` pair, as Stripe would POST it."""
        event = {
            "id": event_id or f"evt_sim_{secrets.token_hex(12)}",
            "object": "event",
            "type": event_type,
            "created": int(time.time()),
            "data": {"object": obj},
        }
        payload = json.dumps(event)
        return payload, sign_webhook(payload, self._webhook_secret or "")
