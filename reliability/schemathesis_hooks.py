"""Schemathesis hooks for the reliability run (loaded through SCHEMATHESIS_HOOKS).

The same two exemptions the API's own schemathesis test makes
(tests/api/test_schemathesis.py), for inputs a JSON Schema cannot describe and
signup rightly refuses with 422: emails in special-use domains (RFC 6761:
.test, .invalid, ...) and passwords of at most 72 characters that exceed
bcrypt's 72 bytes in UTF-8. Nothing else is filtered.
"""

from __future__ import annotations

import schemathesis

from reliability.schemathesis_filters import is_testable_signup_body


@schemathesis.hook
def filter_body(context, body) -> bool:
    return is_testable_signup_body(body)
