"""POST /webhooks/stripe: signature checks, the three handled events, replays, malformed events."""

from __future__ import annotations

import copy
import json
import time

import pytest
from sqlalchemy import select

from ecom.commerce.gateways.webhooks import sign_webhook
from ecom.commerce.models import Order, Payment, StripeEvent
from ecom.commerce.status import OrderStatus, PaymentStatus
from ecom.extensions import db
from tests.commerce_support import ADDRESS, auth, count, fill_cart, inventory_of, outbox_types

WEBHOOK = "/webhooks/stripe"
SECRET = "whsec_test_secret"  # tests/conftest.py TEST_CONFIG


def post_event(client, event: dict, *, secret: str = SECRET, timestamp: int | None = None, header=None):
    payload = json.dumps(event)
    signature = header if header is not None else sign_webhook(payload, secret, timestamp)
    return client.post(WEBHOOK, data=payload, headers={"Stripe-Signature": signature,
                                                        "Content-Type": "application/json"})


def intent_event(intent_id: str, amount_minor: int, kind: str = "payment_intent.succeeded",
                 event_id: str = "evt_1") -> dict:
    status = "succeeded" if kind.endswith("succeeded") else "requires_payment_method"
    error = None if status == "succeeded" else {"code": "card_declined", "message": "Your card was declined."}
    return {"id": event_id, "object": "event", "type": kind, "data": {"object": {
        "id": intent_id, "object": "payment_intent", "amount": amount_minor, "currency": "usd",
        "status": status, "last_payment_error": error, "metadata": {}}}}


def refund_event(intent_id: str | None, amount_refunded: int, event_id: str = "evt_refund") -> dict:
    return {"id": event_id, "object": "event", "type": "charge.refunded", "data": {"object": {
        "id": "ch_1", "object": "charge", "payment_intent": intent_id, "amount": 4919,
        "amount_refunded": amount_refunded, "refunded": False}}}


DROP = object()


def changed(event: dict, path: str, value) -> dict | list:
    """A copy of ``event`` with the field at dotted ``path`` set to ``value`` (removed for DROP);
    the whole body replaced by ``value`` for an empty path."""
    if not path:
        return value
    event = copy.deepcopy(event)
    *parents, last = path.split(".")
    target = event
    for key in parents:
        target = target[key]
    if value is DROP:
        del target[last]
    else:
        target[last] = value
    return event


# Signed, yet not a well-formed payment_intent.succeeded event: (path, value) for ``changed``.
# tests/storefront_api/test_openapi_contract.py checks that the OpenAPI document refuses each too.
MALFORMED_INTENT_EVENT = [
    ("", ["evt_1"]),
    ("id", DROP), ("id", ""), ("id", 7), ("id", "e" * 256), ("id", "evt_\x00"),
    ("type", DROP), ("type", ""), ("type", ["payment_intent.succeeded"]),
    ("data", DROP), ("data", "pi"), ("data.object", DROP), ("data.object", ["pi"]),
    ("data.object.id", DROP), ("data.object.id", ""), ("data.object.id", 42),
    ("data.object.status", DROP), ("data.object.status", 1), ("data.object.status", "succeeded\x00"),
    ("data.object.amount", DROP), ("data.object.amount", "4919"), ("data.object.amount", 49.19),
    ("data.object.amount", -1), ("data.object.amount", True),
    ("data.object.currency", 840), ("data.object.metadata", "order=1"),
    ("data.object.last_payment_error", "declined"), ("data.object.last_payment_error", {"message": 1}),
]
MALFORMED_REFUND_EVENT = [
    ("data.object", DROP), ("data.object.payment_intent", 5), ("data.object.payment_intent", "pi_\x00"),
    ("data.object.amount_refunded", "1000"), ("data.object.amount_refunded", -1),
    ("data.object.amount_refunded", 10.5),
]
# What JSON Schema cannot express: strings PostgreSQL cannot store (a lone surrogate).
UNSTORABLE_INTENT_EVENT = [
    ("id", "evt_\ud800"), ("type", "payment_intent.\udc00"), ("data.object.id", "pi_\ud800"),
    ("data.object.last_payment_error", {"message": "declined \ud800"}),
]


@pytest.fixture
def placed(client, shopper, variant):
    """A created order for 2 units (total 49.19) awaiting payment."""
    fill_cart(shopper, [(variant, 2)])
    body = client.post("/api/v1/checkout/payment-intent", json={"shipping_address": ADDRESS},
                       headers=auth(shopper)).get_json()
    db.session.commit()
    return body["payment_intent_id"]


def test_succeeded_event_pays_the_order(client, placed, variant):
    response = post_event(client, intent_event(placed, 4919))
    assert response.status_code == 200
    assert response.get_json() == {"received": True, "processed": True}
    order = db.session.scalar(select(Order))
    assert order.status == OrderStatus.PAID
    assert order.events[-1].actor == "stripe:webhook"
    assert inventory_of(variant).quantity == 8 and inventory_of(variant).reserved == 0
    assert outbox_types() == ["ORDER_PLACED", "ORDER_PAID"]
    assert db.session.get(StripeEvent, "evt_1").processed_at is not None


def test_the_same_event_replayed_five_times_is_processed_once(client, placed, variant):
    answers = [post_event(client, intent_event(placed, 4919)).status_code for _ in range(5)]
    assert answers == [200] * 5
    assert outbox_types().count("ORDER_PAID") == 1
    assert inventory_of(variant).quantity == 8
    assert count(StripeEvent) == 1
    assert len([e for e in db.session.scalar(select(Order)).events if e.to_status == "paid"]) == 1


def test_a_second_success_event_after_confirm_is_a_no_op(client, shopper, placed, variant):
    client.post("/api/v1/checkout/confirm", json={"payment_intent_id": placed}, headers=auth(shopper))
    response = post_event(client, intent_event(placed, 4919, event_id="evt_late"))
    assert response.status_code == 200
    assert outbox_types().count("ORDER_PAID") == 1
    assert inventory_of(variant).quantity == 8


@pytest.mark.parametrize("header", ["", "t=123,v1=deadbeef", "garbage", "v1=abc"])
def test_bad_or_missing_signature_is_400_and_changes_nothing(client, placed, header):
    response = post_event(client, intent_event(placed, 4919), header=header)
    assert response.status_code == 400
    assert "signature" in response.get_json()["detail"].lower() or "header" in response.get_json()["detail"]
    assert db.session.scalar(select(Order)).status == OrderStatus.CREATED
    assert count(StripeEvent) == 0


def test_signature_with_another_secret_is_400(client, placed):
    response = post_event(client, intent_event(placed, 4919), secret="whsec_someone_else")
    assert response.status_code == 400
    assert db.session.scalar(select(Order)).status == OrderStatus.CREATED


def test_stale_timestamp_is_400(client, placed):
    stale = int(time.time()) - 301
    response = post_event(client, intent_event(placed, 4919), timestamp=stale)
    assert response.status_code == 400
    assert "tolerance" in response.get_json()["detail"]
    assert db.session.scalar(select(Order)).status == OrderStatus.CREATED


def test_tampered_body_is_400(client, placed):
    event = intent_event(placed, 4919)
    signature = sign_webhook(json.dumps(event), SECRET)
    event["data"]["object"]["amount"] = 1
    response = post_event(client, event, header=signature)
    assert response.status_code == 400


def test_payment_failed_event_fails_the_payment_but_keeps_the_reservation(client, placed, variant):
    response = post_event(client, intent_event(placed, 4919, "payment_intent.payment_failed"))
    assert response.status_code == 200
    payment = db.session.scalar(select(Payment))
    assert payment.status == PaymentStatus.FAILED
    assert db.session.scalar(select(Order)).status == OrderStatus.CREATED
    assert inventory_of(variant).reserved == 2
    assert outbox_types() == ["ORDER_PLACED", "PAYMENT_FAILED"]


def test_a_failure_after_success_never_moves_the_payment_backwards(client, placed):
    post_event(client, intent_event(placed, 4919, event_id="evt_ok"))
    post_event(client, intent_event(placed, 4919, "payment_intent.payment_failed", event_id="evt_fail"))
    payment = db.session.scalar(select(Payment))
    assert payment.status == PaymentStatus.COMPLETED
    assert db.session.scalar(select(Order)).status == OrderStatus.PAID
    assert "PAYMENT_FAILED" not in outbox_types()


def test_unknown_event_types_are_acknowledged_and_ignored(client, placed):
    event = {"id": "evt_other", "object": "event", "type": "customer.created", "data": {"object": {}}}
    response = post_event(client, event)
    assert response.status_code == 200 and response.get_json()["processed"] is False
    assert db.session.scalar(select(Order)).status == OrderStatus.CREATED


def test_events_for_intents_we_never_made_are_acknowledged(client, placed):
    response = post_event(client, intent_event("pi_unknown", 100))
    assert response.status_code == 200
    assert db.session.scalar(select(Order)).status == OrderStatus.CREATED


def test_a_success_for_the_wrong_amount_is_refused(client, placed):
    response = post_event(client, intent_event(placed, 1))
    assert response.status_code == 409
    assert db.session.scalar(select(Order)).status == OrderStatus.CREATED
    assert count(StripeEvent) == 0  # rolled back, so a corrected retry is processed


def test_charge_refunded_made_in_stripes_dashboard_updates_our_books(client, placed):
    post_event(client, intent_event(placed, 4919))
    charge = refund_event(placed, 1000)
    assert post_event(client, charge).status_code == 200
    assert post_event(client, charge).status_code == 200  # replay
    payment = db.session.scalar(select(Payment))
    assert str(payment.refunded_amount) == "10.00" and payment.status == PaymentStatus.PARTIALLY_REFUNDED
    assert outbox_types().count("PAYMENT_REFUNDED") == 1
    full = json.loads(json.dumps(charge))
    full["id"] = "evt_refund_2"
    full["data"]["object"]["amount_refunded"] = 4919
    post_event(client, full)
    db.session.refresh(payment)
    assert payment.status == PaymentStatus.REFUNDED and str(payment.refunded_amount) == "49.19"


def test_webhook_needs_no_csrf_token_and_no_bearer(app, placed):
    # given the CSRF protection the back office runs with
    app.config["WTF_CSRF_ENABLED"] = True
    try:
        response = post_event(app.test_client(), intent_event(placed, 4919))
    finally:
        app.config["WTF_CSRF_ENABLED"] = False
    assert response.status_code == 200


def test_simulated_gateway_signs_webhooks_the_stripe_way(client, simulated, placed):
    payload, signature = simulated.build_webhook(
        "payment_intent.succeeded",
        intent_event(placed, 4919)["data"]["object"],
    )
    response = client.post(WEBHOOK, data=payload, headers={"Stripe-Signature": signature,
                                                           "Content-Type": "application/json"})
    assert response.status_code == 200
    assert db.session.scalar(select(Order)).status == OrderStatus.PAID


def test_a_missing_signature_header_is_400_and_changes_nothing(client, placed):
    response = client.post(WEBHOOK, data=json.dumps(intent_event(placed, 4919)),
                           headers={"Content-Type": "application/json"})
    assert response.status_code == 400
    assert response.get_json()["errors"] == {"Stripe-Signature": ["Required."]}
    assert db.session.scalar(select(Order)).status == OrderStatus.CREATED


def assert_refused_unchanged(response, *, events: list[str], outbox: list[str]) -> None:
    assert response.status_code == 400
    assert response.get_json()["detail"].startswith("Invalid webhook: Not a Stripe event: ")
    assert list(db.session.scalars(select(StripeEvent.id))) == events  # unrecorded: a fixed retry counts
    assert outbox_types() == outbox


@pytest.mark.parametrize(("path", "value"), MALFORMED_INTENT_EVENT + UNSTORABLE_INTENT_EVENT)
def test_a_signed_but_malformed_intent_event_is_400_and_changes_nothing(client, placed, variant, path, value):
    response = post_event(client, changed(intent_event(placed, 4919), path, value))
    assert_refused_unchanged(response, events=[], outbox=["ORDER_PLACED"])
    assert db.session.scalar(select(Order)).status == OrderStatus.CREATED
    assert db.session.scalar(select(Payment)).status == PaymentStatus.PENDING
    assert inventory_of(variant).reserved == 2


@pytest.mark.parametrize(("path", "value"), MALFORMED_REFUND_EVENT)
def test_a_signed_but_malformed_refund_event_is_400_and_changes_nothing(client, placed, path, value):
    # given a paid order
    post_event(client, intent_event(placed, 4919, event_id="evt_paid"))
    # when a malformed refund of it arrives
    response = post_event(client, changed(refund_event(placed, 1000), path, value))
    # then
    assert_refused_unchanged(response, events=["evt_paid"], outbox=["ORDER_PLACED", "ORDER_PAID"])
    payment = db.session.scalar(select(Payment))
    assert payment.status == PaymentStatus.COMPLETED and str(payment.refunded_amount) == "0.00"


def test_a_malformed_event_is_processed_once_corrected(client, placed):
    malformed = changed(intent_event(placed, 4919), "data.object.amount", "4919")
    assert post_event(client, malformed).status_code == 400
    response = post_event(client, intent_event(placed, 4919))
    assert response.get_json() == {"received": True, "processed": True}
    assert db.session.scalar(select(Order)).status == OrderStatus.PAID


def test_an_integral_float_amount_is_a_whole_number_of_minor_units(client, placed):
    # JSON Schema counts 4919.0 as an integer, so the document does too
    response = post_event(client, changed(intent_event(placed, 4919), "data.object.amount", 4919.0))
    assert response.status_code == 200
    assert db.session.scalar(select(Order)).status == OrderStatus.PAID


def test_optional_intent_fields_may_be_null_or_absent(client, placed):
    event = intent_event(placed, 4919)
    for path, value in [("data.object.currency", None), ("data.object.metadata", None),
                        ("data.object.last_payment_error", DROP), ("object", DROP)]:
        event = changed(event, path, value)
    assert post_event(client, event).get_json() == {"received": True, "processed": True}
    assert db.session.scalar(select(Order)).status == OrderStatus.PAID


def test_a_refund_of_a_charge_without_an_intent_is_acknowledged(client, placed):
    response = post_event(client, changed(refund_event(None, 1000), "data.object.amount_refunded", DROP))
    assert response.get_json() == {"received": True, "processed": True}
    assert db.session.scalar(select(Payment)).status == PaymentStatus.PENDING


def test_an_event_refused_halfway_leaves_nothing_half_written(client, placed, variant, monkeypatch):
    # given a success event whose finaliser is refused at its last step, after the payment, the
    # stock and the order's status were already changed and flushed
    from ecom.commerce import checkout
    from ecom.commerce.models import OrderEvent
    from ecom.errors import InvalidTransition

    def refused(order):
        raise InvalidTransition("fulfillment", "pending", "pending")

    monkeypatch.setattr(checkout, "create_fulfillments", refused)
    # when it arrives
    response = post_event(client, intent_event(placed, 4919))
    # then it is acknowledged and recorded as processed, and none of its changes were kept
    assert response.status_code == 200
    db.session.expire_all()
    order = db.session.scalar(select(Order))
    assert order.status == OrderStatus.CREATED and order.paid_at is None
    assert db.session.scalar(select(Payment)).status == PaymentStatus.PENDING
    assert (inventory_of(variant).quantity, inventory_of(variant).reserved) == (10, 2)
    assert [e.to_status for e in db.session.scalars(select(OrderEvent))] == ["created"]
    assert outbox_types() == ["ORDER_PLACED"]
    assert db.session.get(StripeEvent, "evt_1").processed_at is not None
