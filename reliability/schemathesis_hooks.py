"""Schemathesis hooks for the reliability run (loaded through SCHEMATHESIS_HOOKS).

Each hook only keeps schemathesis from sending, as valid, an input the OpenAPI
document cannot describe; every check stays on for everything else.

- ``filter_body``: the signup inputs the API's own schemathesis test also
  exempts (tests/storefront_api/test_schemathesis.py): emails in special-use
  domains, bcrypt's 72 bytes and passwords on the common-password list.
- ``filter_store_queries``: ``GET /api/v1/stores`` with one of ``lat``/``lng``
  (same filter as that test).
- ``sign_stripe_webhooks``: a valid ``Stripe-Signature`` is an HMAC of the exact
  body under a secret, which no schema can generate; the positive webhook cases
  are signed with the secret of the app under test (``STRIPE_WEBHOOK_SECRET``
  in this process's environment), so that they reach the handler.
- ``uncommon_signup_passwords``: a positive signup case whose password is on the
  common-password list goes with one that is not (the coverage phase skips
  ``filter_body``).
- ``fresh_idempotency_keys``: an ``Idempotency-Key`` already used with another
  body is refused (state, not shape); a positive checkout case that would reuse
  one is sent with a fresh key.
- ``no_made_up_codes``: a voucher code or shipping method code is valid only if the
  shop has one by that name (state, not shape); positive quote and checkout cases
  go without them (the cheapest method, no voucher).
"""

from __future__ import annotations

import json
import os
import threading
import uuid

import schemathesis

from ecom.commerce.gateways.webhooks import sign_webhook
from ecom.identity.common_passwords import is_common_password
from reliability.schemathesis_filters import STORES, is_testable_signup_body, is_testable_store_case

WEBHOOK = {"path": "/webhooks/stripe", "method": "POST"}
CHECKOUT = {"path": "/api/v1/checkout/payment-intent", "method": "POST"}
SIGNUP = {"path": "/api/v1/auth/signup", "method": "POST"}
IDEMPOTENCY_KEY = "Idempotency-Key"


def _is_positive(case) -> bool:
    return case.meta is not None and case.meta.generation.mode.is_positive


@schemathesis.hook
def filter_body(context, body) -> bool:
    """Skip an email in a special-use domain (RFC 6761: .test, .invalid, ...), a valid
    ``format: email`` no shop can mail, a password of at most 72 characters that still
    exceeds bcrypt's 72 bytes in UTF-8, and a common password: signup rightly refuses
    each with 422."""
    return is_testable_signup_body(body)


@schemathesis.hook("filter_case").apply_to(**STORES)
def filter_store_queries(context, case) -> bool:
    """Skip positive store-locator queries with exactly one of lat/lng, or radius_km
    without both: OpenAPI cannot say that query parameters go together (see
    ``is_testable_store_case``)."""
    return is_testable_store_case(case)


@schemathesis.hook("before_call").apply_to(**WEBHOOK)
def sign_stripe_webhooks(context, case, kwargs) -> None:
    """Send a positive webhook case as Stripe would: its body serialised here, signed
    with the app's webhook secret (``sign_webhook``, Stripe's own algorithm), and
    exactly those bytes sent with that ``Stripe-Signature``.

    The generated signature matches the documented pattern but signs nothing, so
    without this every valid event would be refused (rightly) with 400 and the
    handler never exercised. Negative cases are sent as generated: unsigned or
    mutated, they must still be refused.
    """
    if not _is_positive(case):
        return
    secret = os.environ.get("STRIPE_WEBHOOK_SECRET")
    if not secret:
        raise RuntimeError("set STRIPE_WEBHOOK_SECRET to the secret of the app under test")
    payload = json.dumps(case.body)
    if case.headers is None:
        case.headers = {}
    case.headers["Stripe-Signature"] = sign_webhook(payload, secret)
    kwargs["data"] = payload.encode("utf-8")


PRICED = {"path_regex": r"^/api/v1/checkout/(payment-intent|quote)$", "method": "POST"}


@schemathesis.hook("before_call").apply_to(**PRICED)
def no_made_up_codes(context, case, kwargs) -> None:
    """Send a positive quote or checkout case without its generated ``voucher_code`` and
    ``shipping_method``: whether a code exists is the shop's state, which no schema can
    describe, and a made-up one is rightly refused with 422. Negative cases go as generated."""
    if not _is_positive(case) or not isinstance(case.body, dict):
        return
    for name in ("voucher_code", "shipping_method"):
        case.body.pop(name, None)
        if isinstance(kwargs.get("json"), dict):
            kwargs["json"].pop(name, None)


_bodies_by_key: dict[str, str] = {}  # every Idempotency-Key sent so far -> the body it was first sent with
_bodies_by_key_lock = threading.Lock()  # --workers: calls run in threads


@schemathesis.hook("before_call").apply_to(**CHECKOUT)
def fresh_idempotency_keys(context, case, kwargs) -> None:
    """Send a positive checkout case whose ``Idempotency-Key`` was already sent with another
    body with a fresh key instead.

    Whether a key is valid depends on what the server has seen: one first used for a
    different request is refused with 422 (as the IETF draft says), which no schema can
    describe, and schemathesis draws the same simple keys ("0") again and again. A key
    sent again with the same body (a retry, answered with the first answer) goes as
    generated; so do negative cases. The app strips the key, so this compares stripped keys.
    """
    if not _is_positive(case) or not case.headers or IDEMPOTENCY_KEY not in case.headers:
        return
    key, body = case.headers[IDEMPOTENCY_KEY].strip(), json.dumps(case.body, sort_keys=True)
    with _bodies_by_key_lock:
        if _bodies_by_key.setdefault(key, body) != body:
            key = uuid.uuid4().hex
            _bodies_by_key[key] = body
            case.headers[IDEMPOTENCY_KEY] = key


@schemathesis.hook("before_call").apply_to(**SIGNUP)
def uncommon_signup_passwords(context, case, kwargs) -> None:
    """Send a positive signup case whose password is on the common-password list with a
    password of the same shape that is not.

    ``filter_body`` skips such bodies where schemathesis applies it, but its coverage
    phase builds boundary values (``00000000``) without that filter; signup rightly
    refuses them with 422, which no schema can describe. Negative cases go as generated.
    """
    if not _is_positive(case) or not isinstance(case.body, dict):
        return
    password = case.body.get("password")
    if isinstance(password, str) and is_common_password(password):
        replacement = (uuid.uuid4().hex + password)[: max(len(password), 8)]
        case.body["password"] = replacement
        if isinstance(kwargs.get("json"), dict):
            kwargs["json"]["password"] = replacement
