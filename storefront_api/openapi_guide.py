"""What the OpenAPI document says in prose: the overview, the tags, the headers, the test cards.

``storefront_api.openapi.build_openapi`` puts these into the document (``info.description``,
``tags``, ``components.headers``); the operations themselves come from ``@endpoint``.
Swagger UI renders the Markdown at the top of /api/v1/docs and under each tag.
"""

from __future__ import annotations

from ecom.commerce.gateways.base import (
    AUTHENTICATION_TEST_PAYMENT_METHODS,
    DECLINING_TEST_PAYMENT_METHODS,
    DEFAULT_TEST_PAYMENT_METHOD,
)
from ecom.commerce.gateways.simulated import SUCCEEDING_TEST_PAYMENT_METHODS

# Stripe's test payment methods, and what each does with the simulated gateway (and, with the
# same id, in Stripe's test mode). The 3-D Secure ones leave the intent in requires_action.
DECLINES = {
    "pm_card_chargeDeclined": "declined: 402; the order stays `created` with its stock held, so pay again",
    "pm_card_chargeDeclinedInsufficientFunds": "declined for insufficient funds: 402",
}
TEST_PAYMENT_METHODS: list[tuple[str, str]] = [
    (DEFAULT_TEST_PAYMENT_METHOD, "succeeds (the default when `payment_method` is left out)"),
    *[(method, "succeeds")
      for method in sorted(SUCCEEDING_TEST_PAYMENT_METHODS - {DEFAULT_TEST_PAYMENT_METHOD})],
    *[(method, DECLINES.get(method, "declined: 402")) for method in sorted(DECLINING_TEST_PAYMENT_METHODS)],
    *[(method, "needs 3-D Secure: confirm answers 202 with `next_action` (`redirect_to_url`); "
               "the page there (the simulated gateway's, or Stripe's) authenticates or fails, then "
               "confirm again: 200 paid, or 402")
      for method in sorted(AUTHENTICATION_TEST_PAYMENT_METHODS)],
    ("anything else", "declined: 402 (no such payment method)"),
]


def _table(header: tuple[str, str], rows: list[tuple[str, str]]) -> str:
    lines = [f"| {header[0]} | {header[1]} |", "|---|---|"]
    lines += [f"| `{a}` | {b} |" if not a.startswith("anything") else f"| {a} | {b} |" for a, b in rows]
    return "\n".join(lines)


# Request and response headers of the whole API: (name, where, meaning).
HEADERS: list[tuple[str, str, str]] = [
    ("Authorization", "request", "`Bearer <access_token>` from signup or login (a JWT, HS256, 1 hour)."),
    ("X-Cart-Token", "request and response",
     "Names a guest cart. `GET /api/v1/cart` without one creates a guest cart and answers its "
     "token in this header (and in the body's `token`); send it back on every later cart call, "
     "on guest checkout, and on signup or login to merge the guest cart into the shopper's."),
    ("X-Order-Token", "request",
     "A guest order's token, answered once (`order_token`) by guest checkout: it stands in for "
     "the bearer token on that order's lookup and cancel, and proves ownership on claim."),
    ("Idempotency-Key", "request",
     "On `POST /api/v1/checkout/payment-intent`: a retry with the same key (from the same shopper, "
     "or the same guest cart) and the same body answers the first answer and creates nothing; "
     "the same key with another body is 422."),
    ("X-Request-ID", "request and response",
     "Every response carries one; a well-formed incoming one (letters, digits, `.`, `-`, `_`, up to "
     "128 characters) is echoed, otherwise a new one is made. Quote it when reporting a problem."),
    ("Retry-After", "response", "On 429: the seconds to wait before trying again."),
    ("ETag, If-None-Match, X-Cache", "response / request",
     "Catalog pages carry an `ETag` (a matching `If-None-Match` answers 304) and, when the "
     "catalog cache is on, `X-Cache` (`hit` or `miss`)."),
]

ERROR_EXTENSIONS: list[tuple[str, str]] = [
    ("errors", 'Validation (400, 422): `{"field": ["message", ...]}` per field, query parameter or header.'),
    ("shortages", "409 when stock is short (adding to the cart, checkout): `{sku: available}` for "
     "every line that can't be covered; nothing was reserved."),
]

OVERVIEW = f"""The shop's public JSON API, for storefronts, apps and partners.

* Money is a two-place decimal **string** (`"29.99"`) next to a lower-case `currency`; never a float.
* Timestamps are ISO 8601 in UTC.
* Lists are paginated: `?page=1&per_page=24` (at most 100) answer
  `{{items, page, per_page, total, pages}}`.
* Errors are `{{"detail": "..."}}` and never an HTML page; 5xx only for real outages.

### Headers

{_table(("header", "meaning"), [(name, f"*{where}.* {meaning}") for name, where, meaning in HEADERS])}

### Error extensions

Next to `detail`, some errors carry more:

{_table(("field", "when"), ERROR_EXTENSIONS)}

### Test payment methods

`POST /api/v1/checkout/confirm` takes a `payment_method`. Without `STRIPE_SECRET_KEY` the shop
runs a simulated gateway that takes no money and knows Stripe's test ids; with Stripe in test
mode the same ids do the same.

{_table(("payment_method", "outcome"), TEST_PAYMENT_METHODS)}
"""

TAGS: list[dict] = [
    {"name": "auth", "description": "Sign up and sign in; the answer's `access_token` is the bearer token."},
    {"name": "account", "description": "The signed-in shopper's profile, password and addresses."},
    {"name": "catalog", "description": (
        "Categories (a tree: each has `parent` and `children`; `?tree=true` nests them), products "
        "with filters, facets and typo-tolerant search, search suggestions, reviews. Anonymous, "
        "cached, and only active products are visible.")},
    {"name": "stores", "description": "The store locator."},
    {"name": "cart", "description": "A signed-in shopper's cart, or a guest's named by `X-Cart-Token`."},
    {"name": "checkout", "description": (
        "Place the order (stock reserved, payment intent opened), then confirm the payment.\n\n"
        + _table(("payment_method", "outcome"), TEST_PAYMENT_METHODS))},
    {"name": "orders", "description": "The shopper's orders: list, detail, cancel."},
    {"name": "webhooks", "description": "Stripe's signed events."},
]
