"""Checkout, orders and webhook endpoints are in the OpenAPI document, and answer as it says."""

from __future__ import annotations

import json
import re

import jsonschema_rs
import pytest

from ecom.commerce.gateways.webhooks import sign_webhook
from tests.commerce_support import ADDRESS, auth, fill_cart
from tests.storefront_api.test_webhooks import (
    DROP,
    MALFORMED_INTENT_EVENT,
    MALFORMED_REFUND_EVENT,
    changed,
    intent_event,
    refund_event,
)

OPERATIONS = [
    ("/api/v1/checkout/payment-intent", "post", "201"),
    ("/api/v1/checkout/confirm", "post", "200"),
    ("/api/v1/orders", "get", "200"),
    ("/api/v1/orders/{order_number}", "get", "200"),
    ("/api/v1/orders/{order_number}/cancel", "post", "200"),
    ("/webhooks/stripe", "post", "200"),
]


@pytest.fixture
def document(client):
    return client.get("/api/v1/openapi.json").get_json()


def conforms(document: dict, path: str, method: str, status: str, body) -> list[str]:
    schema = document["paths"][path][method]["responses"][status]["content"]["application/json"]["schema"]
    return _errors(document, schema, body)


def request_conforms(document: dict, path: str, method: str, body) -> list[str]:
    schema = document["paths"][path][method]["requestBody"]["content"]["application/json"]["schema"]
    return _errors(document, schema, body)


def _errors(document: dict, schema: dict, instance) -> list[str]:
    validator = jsonschema_rs.Draft202012Validator({**schema, "components": document["components"]})
    return [str(error) for error in validator.iter_errors(instance)]


@pytest.mark.parametrize(("path", "method", "status"), OPERATIONS)
def test_every_endpoint_is_documented(document, path, method, status):
    operation = document["paths"][path][method]
    assert status in operation["responses"]
    assert "application/json" in operation["responses"][status]["content"]


def test_checkout_documents_its_body_errors_and_idempotency_header(document):
    operation = document["paths"]["/api/v1/checkout/payment-intent"]["post"]
    assert {"401", "409", "422", "503"} <= set(operation["responses"])
    assert "Idempotency-Key" in [p["name"] for p in operation["parameters"]]
    assert operation["requestBody"]["required"] is True
    assert "402" in document["paths"]["/api/v1/checkout/confirm"]["post"]["responses"]
    assert "400" in document["paths"]["/webhooks/stripe"]["post"]["responses"]


def test_real_answers_conform_to_the_document(client, document, shopper, variant):
    fill_cart(shopper, [(variant, 2)])
    created = client.post("/api/v1/checkout/payment-intent", json={"shipping_address": ADDRESS},
                          headers=auth(shopper))
    assert conforms(document, "/api/v1/checkout/payment-intent", "post", "201", created.get_json()) == []
    intent_id = created.get_json()["payment_intent_id"]
    number = created.get_json()["order"]["order_number"]
    confirmed = client.post("/api/v1/checkout/confirm", json={"payment_intent_id": intent_id},
                            headers=auth(shopper))
    assert conforms(document, "/api/v1/checkout/confirm", "post", "200", confirmed.get_json()) == []
    listed = client.get("/api/v1/orders", headers=auth(shopper))
    assert conforms(document, "/api/v1/orders", "get", "200", listed.get_json()) == []
    one = client.get(f"/api/v1/orders/{number}", headers=auth(shopper))
    assert conforms(document, "/api/v1/orders/{order_number}", "get", "200", one.get_json()) == []
    cancelled = client.post(f"/api/v1/orders/{number}/cancel", headers=auth(shopper))
    cancel_path = "/api/v1/orders/{order_number}/cancel"
    assert conforms(document, cancel_path, "post", "200", cancelled.get_json()) == []
    payload = json.dumps({"id": "evt_doc", "type": "customer.created", "data": {"object": {}}})
    ack = client.post("/webhooks/stripe", data=payload, headers={
        "Stripe-Signature": sign_webhook(payload, "whsec_test_secret"), "Content-Type": "application/json"})
    assert conforms(document, "/webhooks/stripe", "post", "200", ack.get_json()) == []


def test_a_broken_answer_would_not_conform(document):
    # the check above can fail: an order whose total is a float is refused
    bad = {"order": {"order_number": "ORD-1", "total": 49.19}}
    assert conforms(document, "/api/v1/checkout/confirm", "post", "200", bad) != []


def test_the_webhook_documents_its_signed_event_body(document):
    operation = document["paths"]["/webhooks/stripe"]["post"]
    assert operation["requestBody"]["required"] is True
    signature = next(p for p in operation["parameters"] if p["name"] == "Stripe-Signature")
    assert signature["required"] is True and signature["in"] == "header"
    pattern = re.compile(signature["schema"]["pattern"])
    assert pattern.search(sign_webhook("{}", "whsec_test_secret"))
    assert not pattern.search("t=123,v1=") and not pattern.search("garbage")
    assert "422" not in operation["responses"]  # the endpoint does not parse the body itself
    assert "409" in operation["responses"]


# Events the handler accepts (tests/storefront_api/test_webhooks.py) and refuses, against the document:
# the document must call valid exactly what the handler takes, or schemathesis is misled.
WELL_FORMED_EVENTS = [
    intent_event("pi_1", 4919),
    intent_event("pi_1", 100, "payment_intent.payment_failed"),
    changed(intent_event("pi_1", 4919), "data.object.amount", 4919.0),
    changed(changed(intent_event("pi_1", 4919), "data.object.currency", None), "data.object.metadata", None),
    refund_event("pi_1", 1000),
    changed(refund_event(None, 1000), "data.object.amount_refunded", DROP),
    {"id": "evt_other", "type": "customer.created", "data": {"object": {"anything": [1, None]}}},
]


@pytest.mark.parametrize("event", WELL_FORMED_EVENTS)
def test_the_document_calls_every_event_the_webhook_takes_valid(document, event):
    assert request_conforms(document, "/webhooks/stripe", "post", event) == []


@pytest.mark.parametrize(("base", "path", "value"), [
    *[(intent_event("pi_1", 4919), path, value) for path, value in MALFORMED_INTENT_EVENT],
    *[(refund_event("pi_1", 1000), path, value) for path, value in MALFORMED_REFUND_EVENT],
])
def test_the_document_calls_every_event_the_webhook_refuses_invalid(document, base, path, value):
    assert request_conforms(document, "/webhooks/stripe", "post", changed(base, path, value)) != []
