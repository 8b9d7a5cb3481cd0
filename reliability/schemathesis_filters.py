"""Inputs a JSON Schema cannot rule out that signup rightly refuses with 422.

Shared by the API's schemathesis test (tests/api/test_schemathesis.py) and the
reliability run (reliability/schemathesis_hooks.py), so both exempt exactly the same.
"""

from __future__ import annotations

from email_validator import EmailNotValidError, validate_email

BCRYPT_MAX_BYTES = 72


def is_testable_signup_body(body) -> bool:
    """False for emails in special-use domains (RFC 6761: .test, .invalid, ...), a valid
    ``format: email`` no shop can mail, and for passwords of at most 72 characters that
    still exceed bcrypt's 72 bytes in UTF-8."""
    if not isinstance(body, dict):
        return True
    password = body.get("password")
    if isinstance(password, str) and len(password) <= BCRYPT_MAX_BYTES < len(
        password.encode("utf-8", "surrogatepass")
    ):
        return False
    email = body.get("email")
    if not isinstance(email, str) or "@" not in email:
        return True
    try:
        validate_email(email, check_deliverability=False)
    except EmailNotValidError as exc:
        return "special-use or reserved" not in str(exc)
    return True
