"""Payment gateways: the real Stripe client and a simulated stand-in.

Both speak in integer minor units and in Stripe's vocabulary (payment intent
statuses, ``pm_card_*`` test payment methods, signed webhook events), so the
rest of the code never cares which one it talks to. Any failure to reach or
understand the gateway is raised as ``GatewayUnavailable``.
"""

from __future__ import annotations

import json
import secrets
import time
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Protocol

import stripe

from ecom.db import money
from ecom.errors import GatewayUnavailable, NotFound

WEBHOOK_TOLERANCE_SECONDS = 300
MAX_EVENT_ID_LENGTH = 255  # stripe_events.id
SUCCEEDED = "succeeded"
CANCELED = "canceled"
REQUIRES_PAYMENT_METHOD = "requires_payment_method"
DEFAULT_TEST_PAYMENT_METHOD = "pm_card_visa"
DECLINING_TEST_PAYMENT_METHODS = frozenset(
    {"pm_card_chargeDeclined", "pm_card_visa_chargeDeclined", "pm_card_chargeDeclinedInsufficientFunds"}
)


class InvalidWebhook(Exception):
    """A webhook whose signature, timestamp or body cannot be trusted."""


@dataclass(frozen=True)
class Intent:
    id: str
    client_secret: str | None
    status: str
    amount_minor: int
    currency: str = "usd"
    failure_message: str | None = None
    metadata: dict = field(default_factory=dict)

    @property
    def succeeded(self) -> bool:
        return self.status == SUCCEEDED

    @property
    def declined(self) -> bool:
        """A confirmation attempt failed (Stripe sends the intent back to needing a method)."""
        return self.status == REQUIRES_PAYMENT_METHOD and self.failure_message is not None


@dataclass(frozen=True)
class Refund:
    id: str
    amount_minor: int
    status: str


@dataclass(frozen=True)
class RefundedCharge:
    """What a ``charge.refunded`` event tells us: the charge's intent and its refunds so far."""

    payment_intent_id: str | None
    amount_refunded_minor: int


def to_minor(amount: Decimal) -> int:
    """Decimal money to integer minor units (cents); exact, no float on the way."""
    return int(money(amount) * 100)


def from_minor(amount_minor: int) -> Decimal:
    return money(Decimal(amount_minor) / 100)


class PaymentGateway(Protocol):
    name: str

    def create_intent(
        self, amount_minor: int, currency: str, metadata: dict, idempotency_key: str | None = None
    ) -> Intent: ...

    def retrieve_intent(self, intent_id: str) -> Intent: ...

    def confirm_intent(self, intent_id: str, payment_method: str) -> Intent: ...

    def cancel_intent(self, intent_id: str) -> Intent: ...

    def refund(self, intent_id: str, amount_minor: int | None = None) -> Refund: ...

    def verify_webhook(self, payload: bytes | str, sig_header: str | None) -> dict: ...


def verify_stripe_signature(payload: bytes | str, sig_header: str | None, secret: str | None) -> dict:
    """Check a ``Stripe-Signature`` header with Stripe's own code and parse the event.

    Raises InvalidWebhook for a missing/bad signature, a stale timestamp or a body
    that is not a Stripe event: a JSON object with a non-empty string ``id`` (at
    most 255 characters) and ``type``, and an object ``data.object``. Strings we
    store must be storable: no NUL characters, no lone surrogates.
    """
    try:
        stripe.WebhookSignature.verify_header(payload, sig_header, secret, WEBHOOK_TOLERANCE_SECONDS)
        event = json.loads(payload)
    except (stripe.SignatureVerificationError, ValueError) as exc:
        raise InvalidWebhook(str(exc)) from exc
    _require(isinstance(event, dict), "the body is not a JSON object")
    _require(_is_text(event.get("id"), min_length=1, max_length=MAX_EVENT_ID_LENGTH),
             f"id must be a string of 1 to {MAX_EVENT_ID_LENGTH} characters")
    _require(_is_text(event.get("type"), min_length=1), "type must be a non-empty string")
    data = event.get("data")
    _require(isinstance(data, dict) and isinstance(data.get("object"), dict), "data.object must be an object")
    return event


def _require(condition: bool, problem: str) -> None:
    if not condition:
        raise InvalidWebhook(f"Not a Stripe event: {problem}.")


def _is_text(value: Any, *, min_length: int = 0, max_length: int | None = None) -> bool:
    """A string PostgreSQL can store (no NUL, no lone surrogate) of an allowed length."""
    if not isinstance(value, str) or "\x00" in value or len(value) < min_length:
        return False
    if max_length is not None and len(value) > max_length:
        return False
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _is_optional_text(value: Any) -> bool:
    return value is None or _is_text(value)


def _is_minor_units(value: Any) -> bool:
    """A whole, non-negative amount; JSON's ``4919.0`` is a whole number too."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return False
    return value >= 0 and (isinstance(value, int) or value.is_integer())


def sign_webhook(payload: str, secret: str, timestamp: int | None = None) -> str:
    """A ``Stripe-Signature`` header for ``payload``, exactly as Stripe computes it."""
    return stripe.WebhookSignature.generate_signature_header(payload, secret, timestamp=timestamp)


class StripeGateway:
    """The real Stripe API through ``stripe.StripeClient``."""

    name = "stripe"

    def __init__(self, secret_key: str, webhook_secret: str | None, api_base: str | None = None):
        options: dict[str, Any] = {"max_network_retries": 1}
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

    def confirm_intent(self, intent_id, payment_method) -> Intent:
        try:
            return self._call(
                self._client.v1.payment_intents.confirm, intent_id, {"payment_method": payment_method}
            )
        except _Declined:
            # Stripe answers a declined card with an error; the intent itself tells the story.
            return self.retrieve_intent(intent_id)
        except _UnknownPaymentMethod:
            # As the simulated gateway answers it: a decline the shopper can retry, not a 404.
            return _replace(self.retrieve_intent(intent_id), status=REQUIRES_PAYMENT_METHOD,
                            failure_message="Unknown payment method.")

    def cancel_intent(self, intent_id) -> Intent:
        return self._call(self._client.v1.payment_intents.cancel, intent_id)

    def refund(self, intent_id, amount_minor=None) -> Refund:
        params: dict[str, Any] = {"payment_intent": intent_id}
        if amount_minor is not None:
            params["amount"] = amount_minor
        try:
            refund = self._client.v1.refunds.create(params)
        except stripe.StripeError as exc:
            raise _unavailable(exc) from exc
        return Refund(id=refund.id, amount_minor=refund.amount, status=refund.status or "")

    def verify_webhook(self, payload, sig_header) -> dict:
        return verify_stripe_signature(payload, sig_header, self._webhook_secret)

    def _call(self, method, *args) -> Intent:
        try:
            return _intent_from_stripe(method(*args))
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


def _intent_from_stripe(obj) -> Intent:
    if hasattr(obj, "to_dict"):
        obj = obj.to_dict()
    error = obj.get("last_payment_error")
    return Intent(
        id=obj["id"],
        client_secret=obj.get("client_secret"),
        status=obj["status"],
        amount_minor=int(obj["amount"]),
        currency=obj.get("currency") or "usd",
        failure_message=(error.get("message") or error.get("code") or "declined") if error else None,
        metadata=dict(obj.get("metadata") or {}),
    )


def intent_from_event_object(obj: dict) -> Intent:
    """The payment intent carried by a ``payment_intent.*`` webhook event.

    Raises InvalidWebhook unless ``obj`` carries what we read of an intent: a
    non-empty string ``id``, a string ``status``, a whole non-negative ``amount``
    (minor units); ``currency`` a string, ``metadata`` an object and
    ``last_payment_error`` an object with string ``code``/``message``, each
    where given (null counts as not given).
    """
    error = obj.get("last_payment_error")
    _require(_is_text(obj.get("id"), min_length=1), "data.object.id must be a non-empty string")
    _require(_is_text(obj.get("status")), "data.object.status must be a string")
    _require(_is_minor_units(obj.get("amount")), "data.object.amount must be a whole number >= 0")
    _require(_is_optional_text(obj.get("currency")), "data.object.currency must be a string")
    _require(obj.get("metadata") is None or isinstance(obj["metadata"], dict),
             "data.object.metadata must be an object")
    _require(error is None or (isinstance(error, dict) and _is_optional_text(error.get("code"))
                               and _is_optional_text(error.get("message"))),
             "data.object.last_payment_error must be an object with string code and message")
    return _intent_from_stripe(obj)


def refunded_charge_from_event_object(obj: dict) -> RefundedCharge:
    """The charge carried by a ``charge.refunded`` webhook event.

    Raises InvalidWebhook unless ``payment_intent`` is a string and
    ``amount_refunded`` a whole non-negative number (minor units), each where
    given (a charge without an intent is none of ours; no amount counts as 0).
    """
    intent_id, refunded = obj.get("payment_intent"), obj.get("amount_refunded")
    _require(_is_optional_text(intent_id), "data.object.payment_intent must be a string")
    _require(refunded is None or _is_minor_units(refunded),
             "data.object.amount_refunded must be a whole number >= 0")
    return RefundedCharge(payment_intent_id=intent_id or None, amount_refunded_minor=int(refunded or 0))


class SimulatedGateway:
    """A gateway that needs no network, for development and tests.

    Intents live in the ``payments`` table (their id is the payment's
    ``stripe_payment_intent_id``), so every process sees the same state: an
    intent is ``succeeded`` once its payment is completed or refunded,
    ``canceled`` when its order was cancelled unpaid, otherwise it waits for a
    payment method, carrying the last decline if there was one. Confirming is a
    pure function of the test payment method, like Stripe's test mode.
    Webhooks are signed with the same secret and checked by the same code as
    Stripe's.
    """

    name = "simulated"

    def __init__(self, webhook_secret: str | None):
        self._webhook_secret = webhook_secret

    def create_intent(self, amount_minor, currency, metadata, idempotency_key=None) -> Intent:
        intent_id = f"pi_sim_{secrets.token_hex(12)}"
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
        from ecom.commerce.status import OrderStatus, PaymentStatus
        from ecom.extensions import db

        payment = db.session.query(Payment).filter_by(stripe_payment_intent_id=intent_id).one_or_none()
        if payment is None:
            raise NotFound("Unknown payment intent.")
        if payment.status in (PaymentStatus.COMPLETED, PaymentStatus.REFUNDED):
            status = SUCCEEDED
        elif payment.order.status == OrderStatus.CANCELLED:
            status = CANCELED
        else:
            status = REQUIRES_PAYMENT_METHOD
        failure = payment.failure_message if payment.status == PaymentStatus.FAILED else None
        return Intent(
            id=intent_id,
            client_secret=None,
            status=status,
            amount_minor=to_minor(payment.amount),
            currency=payment.currency,
            failure_message=failure,
        )

    def confirm_intent(self, intent_id, payment_method) -> Intent:
        current = self.retrieve_intent(intent_id)
        if current.status in (SUCCEEDED, CANCELED):
            return current
        if payment_method in DECLINING_TEST_PAYMENT_METHODS:
            return _replace(
                current, status=REQUIRES_PAYMENT_METHOD, failure_message="Your card was declined."
            )
        if not payment_method.startswith("pm_"):
            return _replace(
                current, status=REQUIRES_PAYMENT_METHOD, failure_message="Unknown payment method."
            )
        return _replace(current, status=SUCCEEDED, failure_message=None)

    def cancel_intent(self, intent_id) -> Intent:
        return _replace(self.retrieve_intent(intent_id), status=CANCELED)

    def refund(self, intent_id, amount_minor=None) -> Refund:
        intent = self.retrieve_intent(intent_id)
        return Refund(
            id=f"re_sim_{secrets.token_hex(12)}",
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


def _replace(intent: Intent, **changes) -> Intent:
    from dataclasses import replace

    return replace(intent, **changes)


def get_gateway(config) -> PaymentGateway:
    """Stripe when ``STRIPE_SECRET_KEY`` is set, else the simulated gateway."""
    if config.get("STRIPE_SECRET_KEY"):
        return StripeGateway(
            config["STRIPE_SECRET_KEY"],
            config.get("STRIPE_WEBHOOK_SECRET"),
            config.get("STRIPE_API_BASE"),
        )
    return SimulatedGateway(config.get("STRIPE_WEBHOOK_SECRET"))


def gateway_for_intent(config, intent_id: str) -> PaymentGateway:
    """The gateway that owns ``intent_id``: simulated ``pi_sim_`` ids never go to Stripe."""
    if intent_id.startswith("pi_sim_"):
        return SimulatedGateway(config.get("STRIPE_WEBHOOK_SECRET"))
    return get_gateway(config)
