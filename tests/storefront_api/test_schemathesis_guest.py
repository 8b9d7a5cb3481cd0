"""Schemathesis over the operations guest checkout and 3-D Secure added or changed (issue 13):
payment-intent, confirm, an order by number (with X-Order-Token), its cancel and claim.

Every check is on, as in test_schemathesis.py. Generated tokens name nothing, so on their
own these cases only reach the refusals (401, 404, 400, 422); to reach the handlers, the
positive cases that read, confirm or cancel an order are sent with a real guest order's
number, intent and X-Order-Token (``aim_at_the_real_guest_order``), which keeps every check meaningful:
the answers must still match the document.
"""

from __future__ import annotations

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.config import SchemathesisConfig

from tests.conftest import make_test_app
from tests.factories import stocked_variant
from tests.storefront_api.test_schemathesis import MAX_EXAMPLES

pytestmark = pytest.mark.slow

OPERATIONS = r"^/api/v1/(checkout/(payment-intent|confirm)|orders/\{order_number\})"
ADDRESS = {"full_name": "Grace Guest", "street": "1 Main St", "city": "Springfield", "state": "IL",
           "postal_code": "62701", "country": "US"}

_app = make_test_app("sqlite://")
_config = SchemathesisConfig.from_dict({"seed": 20261202, "generation": {"max-examples": MAX_EXAMPLES}})
schema = schemathesis.openapi.from_wsgi("/api/v1/openapi.json", _app, config=_config).include(
    path_regex=OPERATIONS
)

_guest: dict[str, str] = {}  # the real guest order of the running test: number, intent, token


def _is_positive(case) -> bool:
    return case.meta is not None and case.meta.generation.mode.is_positive


ORDER_PATHS = ("/api/v1/orders/{order_number}", "/api/v1/orders/{order_number}/cancel")


def aim_at_the_real_guest_order(case) -> None:
    """A positive read, cancel or confirm goes to the real guest order, with its token (a
    bearer token, which schemathesis cannot make, is dropped). Claims and negative cases go
    as generated."""
    if not _is_positive(case) or not _guest:
        return
    if case.operation.path in ORDER_PATHS:
        case.path_parameters = {**(case.path_parameters or {}), "order_number": _guest["number"]}
    elif case.operation.path == "/api/v1/checkout/confirm" and isinstance(case.body, dict):
        case.body["payment_intent_id"] = _guest["intent"]
    else:
        return
    case.headers = {**(case.headers or {}), "X-Order-Token": _guest["token"]}
    case.headers.pop("Authorization", None)


@pytest.fixture
def real_guest_order(app, db):
    variant = stocked_variant(quantity=50, price="19.99", sku="TEE-M")
    db.session.commit()
    client = app.test_client()
    cart = client.get("/api/v1/cart").get_json()["token"]
    client.post("/api/v1/cart/items", json={"sku": variant.sku, "quantity": 1},
                headers={"X-Cart-Token": cart})
    placed = client.post("/api/v1/checkout/payment-intent",
                         json={"email": "guest@example.com", "shipping_address": ADDRESS},
                         headers={"X-Cart-Token": cart}).get_json()
    _guest.update(number=placed["order"]["order_number"], intent=placed["payment_intent_id"],
                  token=placed["order_token"])
    yield
    _guest.clear()


@schema.parametrize()
@settings(max_examples=MAX_EXAMPLES, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow,
                                 HealthCheck.filter_too_much])
def test_guest_and_3ds_operations_conform_to_the_openapi_document(case, real_guest_order):
    aim_at_the_real_guest_order(case)
    case.call_and_validate()
