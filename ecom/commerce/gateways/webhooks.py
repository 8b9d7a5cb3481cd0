"""Signed webhook events: Stripe's signature check and the parsing of the objects we read.

Both gateways sign their events with the same secret and scheme, so one check
serves both.
"""

from __future__ import annotations

import json
from typing import Any

import stripe

from ecom.commerce.gateways.base import Intent, RefundedCharge, intent_from_dict
from ecom.db import storable_text

WEBHOOK_TOLERANCE_SECONDS = 300
MAX_EVENT_ID_LENGTH = 255  # stripe_events.id


class InvalidWebhook(Exception):
    """A webhook whose signature, timestamp or body cannot be trusted."""


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


def sign_webhook(payload: str, secret: str, timestamp: int | None = None) -> str:
    """A ``Stripe-Signature`` header for ``payload``, exactly as Stripe computes it."""
    return stripe.WebhookSignature.generate_signature_header(payload, secret, timestamp=timestamp)


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
    return intent_from_dict(obj)


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


def _require(condition: bool, problem: str) -> None:
    if not condition:
        raise InvalidWebhook(f"Not a Stripe event: {problem}.")


def _is_text(value: Any, *, min_length: int = 0, max_length: int | None = None) -> bool:
    """A string PostgreSQL can store (no NUL, no lone surrogate) of an allowed length."""
    if not isinstance(value, str) or len(value) < min_length:
        return False
    if max_length is not None and len(value) > max_length:
        return False
    return storable_text(value)


def _is_optional_text(value: Any) -> bool:
    return value is None or _is_text(value)


def _is_minor_units(value: Any) -> bool:
    """A whole, non-negative amount; JSON's ``4919.0`` is a whole number too."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return False
    return value >= 0 and (isinstance(value, int) or value.is_integer())
