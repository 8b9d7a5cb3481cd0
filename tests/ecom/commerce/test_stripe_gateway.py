"""The real ``stripe`` client against a local fake of Stripe's API (STRIPE_API_BASE)."""

from __future__ import annotations

from decimal import Decimal

import pytest
from sqlalchemy import select, update

from ecom.commerce.gateways import choose_gateway
from ecom.commerce.gateways.stripe import StripeGateway
from ecom.commerce.models import CartItem, Order, Payment, PaymentRefund
from ecom.commerce.status import OrderStatus, PaymentStatus, RefundStatus
from ecom.errors import GatewayUnavailable, NotFound
from ecom.extensions import db
from ecom.inventory.models import Inventory
from tests.commerce_support import (
    ADDRESS,
    auth,
    count,
    fill_cart,
    inventory_of,
    nothing_created,
    outbox_types,
    retry_gateway_calls_later,
)
from tests.factories import stocked_variant

INTENT = "/api/v1/checkout/payment-intent"
CONFIRM = "/api/v1/checkout/confirm"


@pytest.fixture
def gateway(stripe_mode, app):
    return choose_gateway(app.config)


def test_stripe_is_chosen_when_a_secret_key_is_set(gateway):
    assert isinstance(gateway, StripeGateway)


def test_a_hung_stripe_is_given_up_after_the_timeout(stripe_mode, app, monkeypatch):
    # given Stripe answering only after 5 s, and calls allowed 1 s
    monkeypatch.setitem(app.config, "STRIPE_TIMEOUT_SECONDS", 1)
    stripe_mode.hang(5)
    gateway = choose_gateway(app.config)
    # when an intent is created, then the gateway gives up rather than wait for the answer:
    # the attempt and its one retry
    with pytest.raises(GatewayUnavailable):
        gateway.create_intent(1000, "usd", {"order_number": "ORD-20261202-HUNG22"})
    assert stripe_mode.paths("POST") == ["/v1/payment_intents", "/v1/payment_intents"]


def test_create_and_retrieve_an_intent_in_minor_units(gateway, stripe_mode):
    intent = gateway.create_intent(4919, "usd", {"order_number": "ORD-1"}, idempotency_key="k-1")
    assert intent.id.startswith("pi_") and intent.amount_minor == 4919
    assert intent.client_secret.startswith(intent.id + "_secret_")
    method, path, form, headers = stripe_mode.requests[0]
    assert (method, path) == ("POST", "/v1/payment_intents")
    assert form["amount"] == "4919" and form["currency"] == "usd"
    assert form["metadata[order_number]"] == "ORD-1"
    assert headers["Idempotency-Key"] == "k-1"
    assert headers["Authorization"] == "Bearer sk_test_fake_0123456789"
    again = gateway.retrieve_intent(intent.id)
    assert (again.id, again.status, again.amount_minor) == (intent.id, "requires_payment_method", 4919)


def test_unknown_intent_is_not_found(gateway):
    with pytest.raises(NotFound):
        gateway.retrieve_intent("pi_missing")


def test_declined_card_leaves_the_intent_declined(gateway):
    intent = gateway.create_intent(1000, "usd", {})
    result = gateway.confirm_intent(intent.id, "pm_card_chargeDeclined")
    assert result.declined and not result.succeeded
    assert "declined" in result.failure_message


def test_an_unknown_payment_method_is_a_decline_not_an_unknown_intent(gateway):
    intent = gateway.create_intent(1000, "usd", {})
    result = gateway.confirm_intent(intent.id, "pm_does_not_exist")
    assert result.id == intent.id and result.declined and not result.succeeded
    assert result.failure_message == "Unknown payment method."


def test_refund_full_and_partial(gateway, stripe_mode):
    intent = gateway.create_intent(1000, "usd", {})
    gateway.confirm_intent(intent.id, "pm_card_visa")
    partial = gateway.refund(intent.id, 250)
    full = gateway.refund(intent.id)
    assert partial.amount_minor == 250 and full.amount_minor == 1000
    refund_forms = [form for method, path, form, _ in stripe_mode.requests if path == "/v1/refunds"]
    assert refund_forms[0] == {"payment_intent": intent.id, "amount": "250"}
    assert "amount" not in refund_forms[1]


@pytest.mark.parametrize("status", [500, 503])
def test_server_errors_become_gateway_unavailable_502(gateway, stripe_mode, status):
    stripe_mode.fail_with(status)
    with pytest.raises(GatewayUnavailable) as caught:
        gateway.create_intent(1000, "usd", {})
    assert caught.value.extra["status"] == 502


def test_unreachable_gateway_is_503(app, monkeypatch):
    monkeypatch.setitem(app.config, "STRIPE_SECRET_KEY", "sk_test_fake")
    monkeypatch.setitem(app.config, "STRIPE_API_BASE", "http://127.0.0.1:9")  # nothing listens there
    with pytest.raises(GatewayUnavailable) as caught:
        choose_gateway(app.config).create_intent(1000, "usd", {})
    assert caught.value.extra["status"] == 503


# --- through the API ------------------------------------------------------------------------


def test_checkout_and_confirm_through_stripe(client, stripe_mode, shopper, variant):
    fill_cart(shopper, [(variant, 2)])
    created = client.post(INTENT, json={"shipping_address": ADDRESS}, headers=auth(shopper))
    assert created.status_code == 201, created.get_json()
    body = created.get_json()
    intent = stripe_mode.intents[body["payment_intent_id"]]
    assert intent["amount"] == 4919  # 40.00 + 3.20 tax + 5.99 shipping, in cents
    assert intent["metadata"]["order_number"] == body["order"]["order_number"]
    confirmed = client.post(CONFIRM, json={"payment_intent_id": body["payment_intent_id"],
                                           "payment_method": "pm_card_visa"}, headers=auth(shopper))
    assert confirmed.status_code == 200, confirmed.get_json()
    assert confirmed.get_json()["order"]["status"] == "paid"
    assert inventory_of(variant).quantity == 8


def test_confirm_without_a_payment_method_trusts_only_stripes_status(client, stripe_mode, shopper, variant):
    # given an intent the shopper has not paid at Stripe
    fill_cart(shopper, [(variant, 1)])
    body = client.post(INTENT, json={"shipping_address": ADDRESS}, headers=auth(shopper)).get_json()
    # when the client claims it is paid
    response = client.post(CONFIRM, json={"payment_intent_id": body["payment_intent_id"]},
                           headers=auth(shopper))
    # then nothing is paid
    assert response.status_code == 409
    assert db.session.scalar(select(Order)).status == OrderStatus.CREATED
    # and once Stripe says succeeded (Stripe.js confirmed it), confirm pays
    stripe_mode.intents[body["payment_intent_id"]]["status"] = "succeeded"
    response = client.post(CONFIRM, json={"payment_intent_id": body["payment_intent_id"]},
                           headers=auth(shopper))
    assert response.status_code == 200 and response.get_json()["order"]["status"] == "paid"


def test_an_unknown_payment_method_through_stripe_is_402_and_can_be_retried(client, stripe_mode, shopper,
                                                                            variant):
    fill_cart(shopper, [(variant, 1)])
    body = client.post(INTENT, json={"shipping_address": ADDRESS}, headers=auth(shopper)).get_json()
    confirm = {"payment_intent_id": body["payment_intent_id"], "payment_method": "pm_does_not_exist"}
    response = client.post(CONFIRM, json=confirm, headers=auth(shopper))
    assert response.status_code == 402 and "Unknown payment method" in response.get_json()["detail"]
    retried = client.post(CONFIRM, json={**confirm, "payment_method": "pm_card_visa"}, headers=auth(shopper))
    assert retried.status_code == 200 and retried.get_json()["order"]["status"] == "paid"


def test_declined_through_stripe_is_402(client, stripe_mode, shopper, variant):
    fill_cart(shopper, [(variant, 1)])
    body = client.post(INTENT, json={"shipping_address": ADDRESS}, headers=auth(shopper)).get_json()
    response = client.post(CONFIRM, json={"payment_intent_id": body["payment_intent_id"],
                                          "payment_method": "pm_card_chargeDeclined"}, headers=auth(shopper))
    assert response.status_code == 402
    payment = db.session.scalar(select(Payment))
    assert payment.status == PaymentStatus.FAILED
    assert inventory_of(variant).reserved == 1


def test_gateway_500_at_checkout_is_502_and_nothing_is_half_written(client, stripe_mode, shopper, variant):
    # given a cart and a failing Stripe
    fill_cart(shopper, [(variant, 2)])
    stripe_mode.fail_with(500)
    # when
    response = client.post(INTENT, json={"shipping_address": ADDRESS}, headers=auth(shopper))
    # then a clear error, no order, no reservation, no event, the cart intact
    assert response.status_code == 502
    assert "payment provider" in response.get_json()["detail"]
    assert nothing_created()
    assert inventory_of(variant).reserved == 0
    assert outbox_types() == []
    assert count(CartItem) == 1
    # and once Stripe is back, the same checkout works
    stripe_mode.fail_with(None)
    assert client.post(INTENT, json={"shipping_address": ADDRESS}, headers=auth(shopper)).status_code == 201


def test_a_cart_already_short_of_stock_is_409_before_any_intent_is_opened(client, stripe_mode, shopper):
    # given a cart wanting 2 of a SKU with 1 left
    scarce = stocked_variant(quantity=1)
    fill_cart(shopper, [(scarce, 2)])
    # when the shopper checks out
    response = client.post(INTENT, json={"shipping_address": ADDRESS}, headers=auth(shopper))
    # then 409 naming it, and Stripe never heard of it
    assert response.status_code == 409 and f"{scarce.sku} (available: 1)" in response.get_json()["detail"]
    assert stripe_mode.requests == []
    assert nothing_created()


def test_stock_gone_while_the_intent_was_opened_is_409_and_the_intent_cancelled(
        client, stripe_mode, shopper, monkeypatch):
    # given a cart holding the last unit, which a rival takes while Stripe creates the intent
    last = stocked_variant(quantity=1)
    fill_cart(shopper, [(last, 1)])
    create_intent = StripeGateway.create_intent

    def rival_takes_the_unit(self, *args, **kwargs):
        intent = create_intent(self, *args, **kwargs)
        db.session.execute(update(Inventory).where(Inventory.variant_id == last.id).values(reserved=1))
        return intent

    monkeypatch.setattr(StripeGateway, "create_intent", rival_takes_the_unit)
    # when the shopper checks out
    response = client.post(INTENT, json={"shipping_address": ADDRESS}, headers=auth(shopper))
    # then 409 naming the SKU, the intent is cancelled at Stripe, and nothing is written
    assert response.status_code == 409 and f"{last.sku} (available: 0)" in response.get_json()["detail"]
    assert [intent["status"] for intent in stripe_mode.intents.values()] == ["canceled"]
    assert nothing_created()
    assert outbox_types() == []


def test_gateway_500_at_confirm_is_502_and_the_order_stays_created(client, stripe_mode, shopper, variant):
    fill_cart(shopper, [(variant, 1)])
    body = client.post(INTENT, json={"shipping_address": ADDRESS}, headers=auth(shopper)).get_json()
    stripe_mode.fail_with(500)
    response = client.post(CONFIRM, json={"payment_intent_id": body["payment_intent_id"],
                                          "payment_method": "pm_card_visa"}, headers=auth(shopper))
    assert response.status_code == 502
    order = db.session.scalar(select(Order))
    assert order.status == OrderStatus.CREATED and order.payment.status == PaymentStatus.PENDING
    assert inventory_of(variant).reserved == 1


def test_cancel_while_stripe_is_down_cancels_and_the_refund_is_retried_once(
        client, stripe_mode, shopper, variant):
    # given a paid order, and Stripe failing
    fill_cart(shopper, [(variant, 1)])
    body = client.post(INTENT, json={"shipping_address": ADDRESS}, headers=auth(shopper)).get_json()
    client.post(CONFIRM, json={"payment_intent_id": body["payment_intent_id"],
                               "payment_method": "pm_card_visa"}, headers=auth(shopper))
    stripe_mode.fail_with(500)
    number = body["order"]["order_number"]
    # when the shopper cancels
    response = client.post(f"/api/v1/orders/{number}/cancel", headers=auth(shopper))
    # then the order is cancelled and its stock back; the refund is recorded, not yet made
    assert response.status_code == 200
    assert response.get_json()["status"] == "cancelled"
    assert response.get_json()["payment"]["status"] == "completed"
    order = db.session.scalar(select(Order))
    assert order.status == OrderStatus.CANCELLED and order.payment.status == PaymentStatus.COMPLETED
    assert inventory_of(variant).quantity == 10
    refund = db.session.scalar(select(PaymentRefund))
    assert (refund.status, refund.attempts, refund.amount) == (RefundStatus.REQUESTED, 1, Decimal("27.59"))
    assert "payment provider is unavailable" in refund.last_error
    assert stripe_mode.refunds == []
    # when Stripe is back and the retry job runs, twice
    stripe_mode.fail_with(None)
    first, second = retry_gateway_calls_later(), retry_gateway_calls_later()
    # then the money went back once, under the refund's idempotency key, and the books say so
    assert (first.refunds_made, second.refunds_made) == (1, 0)
    assert [r["amount"] for r in stripe_mode.refunds] == [2759]
    keys = {headers.get("Idempotency-Key") for _, path, _, headers in stripe_mode.requests
            if path == "/v1/refunds"}
    assert keys == {f"refund-{refund.id}"}  # the failed attempts and the one that worked
    db.session.refresh(order.payment)
    assert order.payment.status == PaymentStatus.REFUNDED
    assert order.payment.refunded_amount == Decimal("27.59")
    assert outbox_types().count("PAYMENT_REFUNDED") == 1


def test_paid_at_stripe_after_the_shopper_cancelled_is_refunded_and_409(
    client, stripe_mode, shopper, variant
):
    # given an order cancelled while its payment went through at Stripe anyway
    fill_cart(shopper, [(variant, 1)])
    body = client.post(INTENT, json={"shipping_address": ADDRESS}, headers=auth(shopper)).get_json()
    number = body["order"]["order_number"]
    assert client.post(f"/api/v1/orders/{number}/cancel", headers=auth(shopper)).status_code == 200
    stripe_mode.intents[body["payment_intent_id"]]["status"] = "succeeded"
    # when the shopper's frontend confirms
    response = client.post(CONFIRM, json={"payment_intent_id": body["payment_intent_id"]},
                           headers=auth(shopper))
    # then they hear why, the money goes back through Stripe and the order stays cancelled
    assert response.status_code == 409 and "refunded" in response.get_json()["detail"]
    assert [r["amount"] for r in stripe_mode.refunds] == [2759]
    order = db.session.scalar(select(Order))
    assert order.status == OrderStatus.CANCELLED and order.payment.status == PaymentStatus.REFUNDED
    assert inventory_of(variant).quantity == 10 and inventory_of(variant).reserved == 0
    assert outbox_types() == ["ORDER_PLACED", "ORDER_CANCELLED", "PAYMENT_REFUNDED"]


def test_cancelling_an_unpaid_order_cancels_its_stripe_intent(client, stripe_mode, shopper, variant):
    fill_cart(shopper, [(variant, 1)])
    body = client.post(INTENT, json={"shipping_address": ADDRESS}, headers=auth(shopper)).get_json()
    client.post(f"/api/v1/orders/{body['order']['order_number']}/cancel", headers=auth(shopper))
    assert stripe_mode.intents[body["payment_intent_id"]]["status"] == "canceled"
    assert f"/v1/payment_intents/{body['payment_intent_id']}/cancel" in stripe_mode.paths("POST")


def test_cancelling_an_intent_stripe_cancelled_already_is_done(gateway, stripe_mode):
    # given an intent cancelled at Stripe (Stripe refuses to cancel it again)
    intent = gateway.create_intent(1000, "usd", {})
    stripe_mode.intents[intent.id]["status"] = "canceled"
    # when we cancel it, then that is done, not an error
    assert gateway.cancel_intent(intent.id).status == "canceled"


def test_cancelling_a_paid_intent_is_still_refused(gateway, stripe_mode):
    intent = gateway.create_intent(1000, "usd", {})
    gateway.confirm_intent(intent.id, "pm_card_visa")
    with pytest.raises(GatewayUnavailable):
        gateway.cancel_intent(intent.id)


def test_a_cancelled_payment_whose_intent_stripe_cancelled_meanwhile_is_done_in_one_retry(
        client, stripe_mode, shopper, variant):
    # given an unpaid order cancelled while Stripe was failing, and its intent since cancelled at Stripe
    fill_cart(shopper, [(variant, 1)])
    body = client.post(INTENT, json={"shipping_address": ADDRESS}, headers=auth(shopper)).get_json()
    stripe_mode.fail_with(500)
    assert client.post(f"/api/v1/orders/{body['order']['order_number']}/cancel",
                       headers=auth(shopper)).status_code == 200
    stripe_mode.fail_with(None)
    stripe_mode.intents[body["payment_intent_id"]]["status"] = "canceled"
    # when the retry job runs
    result = retry_gateway_calls_later()
    # then the cancellation counts as done: no further attempts, nothing left to retry
    payment = db.session.scalar(select(Payment).execution_options(populate_existing=True))
    assert result.intents_cancelled == 1
    assert payment.intent_cancelled_at is not None and payment.intent_cancel_attempts == 1
    assert retry_gateway_calls_later().cancellations_pending == 0
