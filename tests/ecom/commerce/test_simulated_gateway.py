"""The simulated gateway: Stripe's test vocabulary, state kept in the payments table."""

from __future__ import annotations

import pytest

from ecom.commerce.gateways import choose_gateway
from ecom.commerce.gateways.simulated import SimulatedGateway
from ecom.errors import NotFound
from tests.commerce_support import ADDRESS, auth, fill_cart


def test_without_a_secret_key_the_simulated_gateway_is_used(app):
    assert isinstance(choose_gateway(app.config), SimulatedGateway)


def test_ids_and_client_secrets_look_like_stripes(simulated):
    intent = simulated.create_intent(1234, "usd", {"order_number": "ORD-1"})
    assert intent.id.startswith("pi_sim_")
    assert intent.client_secret.startswith(f"{intent.id}_secret_")
    assert intent.status == "requires_payment_method" and intent.amount_minor == 1234


def test_unknown_intent_is_not_found(db, simulated):
    with pytest.raises(NotFound):
        simulated.retrieve_intent("pi_sim_unknown")


def test_state_is_shared_by_every_gateway_instance(client, app, shopper, variant):
    # given an order paid through one gateway instance (one process)
    fill_cart(shopper, [(variant, 1)])
    body = client.post("/api/v1/checkout/payment-intent", json={"shipping_address": ADDRESS},
                       headers=auth(shopper)).get_json()
    intent_id = body["payment_intent_id"]
    other_process = SimulatedGateway(app.config["STRIPE_WEBHOOK_SECRET"])
    assert other_process.retrieve_intent(intent_id).status == "requires_payment_method"
    client.post("/api/v1/checkout/confirm", json={"payment_intent_id": intent_id}, headers=auth(shopper))
    # then a brand-new instance sees it succeeded, with the order's amount
    intent = SimulatedGateway(app.config["STRIPE_WEBHOOK_SECRET"]).retrieve_intent(intent_id)
    assert (intent.status, intent.amount_minor) == ("succeeded", 2759)


@pytest.mark.parametrize(("method", "status", "declined"), [
    ("pm_card_visa", "succeeded", False),
    ("pm_card_chargeDeclined", "requires_payment_method", True),
    ("not-a-method", "requires_payment_method", True),
    ("pm_free_stuff", "requires_payment_method", True),
    ("pm_card_visa_typo", "requires_payment_method", True),
    ("pm_card_threeDSecure2Required", "requires_action", False),
    ("pm_card_authenticationRequired", "requires_action", False),
])
def test_confirm_follows_stripes_test_payment_methods(client, shopper, variant, simulated, method, status,
                                                      declined):
    fill_cart(shopper, [(variant, 1)])
    body = client.post("/api/v1/checkout/payment-intent", json={"shipping_address": ADDRESS},
                       headers=auth(shopper)).get_json()
    intent = simulated.confirm_intent(body["payment_intent_id"], method)
    assert (intent.status, intent.declined) == (status, declined)


def test_a_made_up_payment_method_is_a_decline_the_shopper_can_retry(client, shopper, variant):
    # given an order placed on the simulated gateway
    fill_cart(shopper, [(variant, 1)])
    body = client.post("/api/v1/checkout/payment-intent", json={"shipping_address": ADDRESS},
                       headers=auth(shopper)).get_json()
    confirm = {"payment_intent_id": body["payment_intent_id"]}

    # when the shopper confirms it with a method no test card has
    made_up = client.post("/api/v1/checkout/confirm", json={**confirm, "payment_method": "pm_free_stuff"},
                          headers=auth(shopper))

    # then it is declined, not paid, and a real test card still pays it afterwards
    assert made_up.status_code == 402
    assert "Unknown payment method." in made_up.get_json()["detail"]
    paid = client.post("/api/v1/checkout/confirm", json={**confirm, "payment_method": "pm_card_visa"},
                       headers=auth(shopper))
    assert paid.get_json()["order"]["status"] == "paid"


def test_an_intent_requiring_action_stays_so_for_every_process_until_answered(app, client, shopper, variant,
                                                                                simulated):
    # given an intent confirmed with a 3-D Secure card
    fill_cart(shopper, [(variant, 1)])
    body = client.post("/api/v1/checkout/payment-intent", json={"shipping_address": ADDRESS},
                       headers=auth(shopper)).get_json()
    intent_id = body["payment_intent_id"]
    waiting = simulated.confirm_intent(intent_id, "pm_card_threeDSecure2Required")
    assert waiting.next_action_url == f"/simulated-gateway/authenticate/{intent_id}"
    # then another instance (process) sees it waiting, and confirming again changes nothing
    other = SimulatedGateway(app.config["STRIPE_WEBHOOK_SECRET"])
    assert other.retrieve_intent(intent_id).status == "requires_action"
    assert other.confirm_intent(intent_id, "pm_card_visa").status == "requires_action"
    # when the customer fails, it goes back to needing a payment method, with the failure
    failed = other.authenticate(intent_id, approve=False)
    assert failed.declined and "authenticate" in failed.failure_message
    assert other.retrieve_intent(intent_id).status == "requires_payment_method"
