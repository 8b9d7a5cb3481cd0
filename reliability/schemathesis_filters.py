"""Inputs the OpenAPI document cannot rule out that the API rightly refuses.

Shared by the API's schemathesis test (tests/storefront_api/test_schemathesis.py) and the
reliability run (reliability/schemathesis_hooks.py), so both exempt exactly the same.
"""

from __future__ import annotations

from email_validator import EmailNotValidError, validate_email

from ecom.identity.common_passwords import is_common_password

BCRYPT_MAX_BYTES = 72


def is_testable_signup_body(body) -> bool:
    """False for emails in special-use domains (RFC 6761: .test, .invalid, ...), a valid
    ``format: email`` no shop can mail, for passwords of at most 72 characters that still
    exceed bcrypt's 72 bytes in UTF-8, and for passwords on the common-password list
    (``00000000`` is schema-valid and rightly refused)."""
    if not isinstance(body, dict):
        return True
    password = body.get("password")
    if isinstance(password, str) and len(password) <= BCRYPT_MAX_BYTES < len(
        password.encode("utf-8", "surrogatepass")
    ):
        return False
    if isinstance(password, str) and is_common_password(password):
        return False
    email = body.get("email")
    if not isinstance(email, str) or "@" not in email:
        return True
    try:
        validate_email(email, check_deliverability=False)
    except EmailNotValidError as exc:
        return "special-use or reserved" not in str(exc)
    return True


STORES = {"path": "/api/v1/stores", "method": "GET"}  # the operation is_testable_store_case is for


def is_testable_store_case(case) -> bool:
    """False for a positive case of ``GET /api/v1/stores`` whose query has exactly one of
    ``lat`` and ``lng``, or ``radius_km`` without both.

    Each is a valid query parameter on its own, and OpenAPI has no way to say that
    two query parameters go together, so the document calls such a query valid;
    the app rightly refuses it with 400. Negative cases are kept: they are refused
    whatever the pairing.
    """
    if case.meta is None or not case.meta.generation.mode.is_positive:
        return True
    given = {name for name, value in (case.query or {}).items() if value is not None}
    if ("lat" in given) != ("lng" in given):
        return False
    return "radius_km" not in given or "lat" in given
