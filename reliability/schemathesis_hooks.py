"""Schemathesis hooks for the reliability run (loaded through SCHEMATHESIS_HOOKS).

The same two exemptions the API's own schemathesis test makes
(tests/api/test_schemathesis.py), for inputs a JSON Schema cannot describe and
signup rightly refuses with 422: emails in special-use domains (RFC 6761:
.test, .invalid, ...) and passwords of at most 72 characters that exceed
bcrypt's 72 bytes in UTF-8. Nothing else is filtered.
"""

from __future__ import annotations

import schemathesis
from email_validator import EmailNotValidError, validate_email


@schemathesis.hook
def filter_body(context, body) -> bool:
    if not isinstance(body, dict):
        return True
    password = body.get("password")
    if isinstance(password, str) and len(password) <= 72 < len(password.encode("utf-8", "surrogatepass")):
        return False
    email = body.get("email")
    if not isinstance(email, str) or "@" not in email:
        return True
    try:
        validate_email(email, check_deliverability=False)
    except EmailNotValidError as exc:
        return "special-use or reserved" not in str(exc)
    return True
