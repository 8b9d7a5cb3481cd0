"""What a request may carry into a query: one rule for text and ids, used by both edges.

The API (``storefront_api.openapi``) and the back office (``admin.base``) check path
segments, query values and ids here before any of them reaches the database, so a value
no column can hold is a 4xx rather than a database error and a 500. Numbers have their
rule next to the column types: ``ecom.db.fits_numeric``, as has text's (``storable_text``).
"""

from __future__ import annotations

from collections.abc import Iterable

from ecom.db import storable_text

# The largest value of an INTEGER column (PostgreSQL's int4), the type of every id.
MAX_DB_INTEGER = 2**31 - 1
# Deeper JSON than any request of ours needs; parsing it costs stack and time.
MAX_JSON_DEPTH = 32


def all_storable(values: Iterable[str]) -> bool:
    return all(storable_text(value) for value in values)


def db_id(value: object) -> int | None:
    """``value`` (an int or its decimal text) as an id an INTEGER key can hold, else None."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        number = value
    elif isinstance(value, str) and value.strip().isascii() and value.strip().isdigit():
        text = value.strip()
        if len(text) > 10:
            return None
        number = int(text)
    else:
        return None
    return number if 0 <= number <= MAX_DB_INTEGER else None


def json_depth_exceeds(value: object, limit: int = MAX_JSON_DEPTH) -> bool:
    """True when ``value`` (parsed JSON) nests lists and objects deeper than ``limit``.

    Iterative, so a deep document cannot exhaust the stack while it is measured."""
    stack = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict):
            children = item.values()
        elif isinstance(item, list):
            children = item
        else:
            continue
        if depth > limit:
            return True
        stack.extend((child, depth + 1) for child in children)
    return False
