"""3-D Secure (commerce-v2 §3): a card that needs the customer leaves the intent in
requires_action; confirm answers 202 with where to go; the simulated gateway's page (or
Stripe's) settles it through the one finaliser; confirm again shows paid or 402."""

from __future__ import annotations

import re

import pytest
from sqlalchemy import select

from ecom.commerce.models import Order
from ecom.commerce.status import OrderStatus, PaymentStatus
from ecom.fulfillment.models import Fulfillment
from ecom.inventory.models import ReservationStatus, StockReservation
from tests.commerce_support import auth, count, fill_cart, inventory_of, outbox_types
from tests.conftest import TEST_CONFIG
from tests.factories import UserFactory
from tests.storefront_api.test_guest_checkout import US_ADDRESS, guest_cart, guest_checkout

INTENT = "/api/v1/checkout/payment-intent"
CONFIRM = "/api/v1/checkout/confirm"
THREE_DS = ["pm_card_threeDSecure2Required", "pm_card_authenticationRequired"]


def placed(client, shopper, variant, quantity=2) -> dict:
    fill_cart(shopper, [(variant, quantity)])
    response = client.post(INTENT, json={"shipping_address": US_ADDRESS}, headers=auth(shopper))
    assert response.status_code == 201, response.get_json()
    return response.get_json()


def confirm(client, shopper, intent_id, method=None):
    body = {"payment_intent_id": intent_id, **({"payment_method": method} if method else {})}
    return client.post(CONFIRM, json=body, headers=auth(shopper))


def order_of(body) -> Order:
    from ecom.extensions import db

    return db.session.scalar(select(Order).where(Order.order_number == body["order"]["order_number"])
                             .execution_options(populate_existing=True))


def page_path(url: str) -> str:
    return re.sub(r"^https?://[^/]+", "", url)


@pytest.mark.parametrize("method", THREE_DS)
def test_a_card_needing_authentication_is_202_and_the_order_stays_created(client, shopper, variant, method):
    body = placed(client, shopper, variant)
    # when the shopper confirms with a 3-D Secure card
    response = confirm(client, shopper, body["payment_intent_id"], method)
    # then 202 says where the customer goes, and the order waits with its stock held
    assert response.status_code == 202, response.get_json()
    answer = response.get_json()
    intent_id = body["payment_intent_id"]
    assert answer["payment"] == {"status": "requires_action"}
    assert answer["next_action"] == {"type": "redirect_to_url",
                                     "url": f"http://localhost/simulated-gateway/authenticate/{intent_id}"}
    assert answer["order"]["status"] == "created" and answer["order"]["payment"]["status"] == "pending"
    order = order_of(body)
    assert order.status == OrderStatus.CREATED and inventory_of(variant).reserved == 2
    assert order.payment.next_action_url == f"/simulated-gateway/authenticate/{intent_id}"
    assert outbox_types() == ["ORDER_PLACED"]
    # confirming again before the customer answered: still 202, nothing changes
    again = confirm(client, shopper, intent_id)
    assert again.status_code == 202 and again.get_json()["next_action"] == answer["next_action"]
    assert order_of(body).status == OrderStatus.CREATED


def test_authenticated_on_the_simulated_page_the_order_is_paid(client, shopper, variant):
    body = placed(client, shopper, variant)
    url = confirm(client, shopper, body["payment_intent_id"], THREE_DS[0]).get_json()["next_action"]["url"]
    # the page is a real page with two buttons
    page = client.get(page_path(url))
    html = page.get_data(as_text=True)
    assert page.status_code == 200 and page.mimetype == "text/html"
    assert 'id="authenticate"' in html and 'id="fail"' in html and body["order"]["order_number"] in html
    # when the customer authenticates
    answered = client.post(page_path(url), data={"outcome": "authenticate"})
    # then the finaliser paid the order, and the page says so
    assert answered.status_code == 303
    result = client.get(answered.headers["Location"]).get_data(as_text=True)
    assert "Payment authenticated" in result and 'id="authenticate"' not in result
    order = order_of(body)
    assert order.status == OrderStatus.PAID and order.payment.status == PaymentStatus.COMPLETED
    assert order.payment.next_action_url is None
    assert (inventory_of(variant).quantity, inventory_of(variant).reserved) == (8, 0)
    assert count(Fulfillment) == 1
    assert outbox_types() == ["ORDER_PLACED", "ORDER_PAID"]
    # confirm again (or reading the order) shows it paid
    final = confirm(client, shopper, body["payment_intent_id"])
    assert final.status_code == 200 and final.get_json()["order"]["status"] == "paid"
    seen = client.get(f"/api/v1/orders/{body['order']['order_number']}", headers=auth(shopper)).get_json()
    assert seen["status"] == "paid" and seen["payment"]["status"] == "completed"
    # a second answer on the page changes nothing
    client.post(page_path(url), data={"outcome": "fail"})
    assert order_of(body).status == OrderStatus.PAID and outbox_types().count("ORDER_PAID") == 1


def test_failed_on_the_simulated_page_confirm_is_402_and_the_stock_stays_held(client, shopper, variant):
    body = placed(client, shopper, variant)
    url = confirm(client, shopper, body["payment_intent_id"], THREE_DS[1]).get_json()["next_action"]["url"]
    # when the customer fails the check
    answered = client.post(page_path(url), data={"outcome": "fail"})
    assert answered.status_code == 303
    assert "Authentication failed" in client.get(answered.headers["Location"]).get_data(as_text=True)
    # then the payment failed, the order waits with its stock, and confirm again is 402
    order = order_of(body)
    assert order.status == OrderStatus.CREATED and order.payment.status == PaymentStatus.FAILED
    assert inventory_of(variant).reserved == 2
    assert db_reservation_active(order)
    declined = confirm(client, shopper, body["payment_intent_id"])
    assert declined.status_code == 402 and "authenticate" in declined.get_json()["detail"]
    assert outbox_types() == ["ORDER_PLACED", "PAYMENT_FAILED"]
    # another card still pays
    assert confirm(client, shopper, body["payment_intent_id"], "pm_card_visa").status_code == 200
    assert order_of(body).status == OrderStatus.PAID


def db_reservation_active(order) -> bool:
    from ecom.extensions import db

    return db.session.scalar(select(StockReservation.status).where(StockReservation.order_id == order.id)) \
        == ReservationStatus.ACTIVE


def test_a_guest_pays_with_3d_secure_using_the_order_token(client, db, variant):
    db.session.commit()
    placed_ = guest_checkout(client, guest_cart(client, (variant, 1))).get_json()
    headers = {"X-Order-Token": placed_["order_token"]}
    pending = client.post(CONFIRM, json={"payment_intent_id": placed_["payment_intent_id"],
                                         "payment_method": THREE_DS[0]}, headers=headers)
    assert pending.status_code == 202
    client.post(page_path(pending.get_json()["next_action"]["url"]), data={"outcome": "authenticate"})
    paid = client.post(CONFIRM, json={"payment_intent_id": placed_["payment_intent_id"]}, headers=headers)
    assert paid.status_code == 200 and paid.get_json()["order"]["status"] == "paid"
    # without the token (or with none) the guest's intent is not confirmable
    assert client.post(CONFIRM, json={"payment_intent_id": placed_["payment_intent_id"]}).status_code == 401
    assert client.post(CONFIRM, json={"payment_intent_id": placed_["payment_intent_id"]},
                       headers={"X-Order-Token": "nope"}).status_code == 404


def test_an_unknown_or_non_simulated_intent_is_404_and_a_bad_answer_400(client, shopper, variant):
    body = placed(client, shopper, variant)
    assert client.get("/simulated-gateway/authenticate/pi_sim_unknown").status_code == 404
    assert client.get("/simulated-gateway/authenticate/pi_3Nreal").status_code == 404
    assert client.post("/simulated-gateway/authenticate/pi_sim_unknown",
                       data={"outcome": "authenticate"}).status_code == 404
    path = f"/simulated-gateway/authenticate/{body['payment_intent_id']}"
    assert client.post(path, data={"outcome": "maybe"}).status_code == 400
    # an intent not waiting for authentication: the page offers no buttons, an answer pays nothing
    page = client.get(path).get_data(as_text=True)
    assert 'id="authenticate"' not in page
    client.post(path, data={"outcome": "authenticate"})
    assert order_of(body).status == OrderStatus.CREATED
    assert order_of(body).payment.status == PaymentStatus.PENDING


def test_the_page_is_served_under_a_nonce_csp_and_never_cached(client, shopper, variant):
    body = placed(client, shopper, variant)
    url = confirm(client, shopper, body["payment_intent_id"], THREE_DS[0]).get_json()["next_action"]["url"]
    page = client.get(page_path(url))
    csp = page.headers["Content-Security-Policy"]
    nonce = re.search(r"'nonce-([^']+)'", csp).group(1)
    html = page.get_data(as_text=True)
    assert f'<style nonce="{nonce}">' in html and "<script" not in html
    assert "default-src 'none'" in csp and "form-action 'self'" in csp and "unsafe-inline" not in csp
    assert page.headers["Cache-Control"] == "no-store"
    # a fresh nonce per response
    assert client.get(page_path(url)).headers["Content-Security-Policy"] != csp


def production_app(**overrides):
    from shop.app import create_app

    config = dict(TEST_CONFIG, ENV_NAME="production", SQLALCHEMY_DATABASE_URI="sqlite://",
                  SQLALCHEMY_ENGINE_OPTIONS={}, STRIPE_SECRET_KEY="sk_live_x",
                  STRIPE_WEBHOOK_SECRET="whsec_live", **overrides)
    return create_app(config)


@pytest.mark.parametrize("allowed, status", [(False, 404), (True, 200)])
def test_the_simulated_page_exists_in_production_only_where_the_simulator_is_allowed(allowed, status):
    app = production_app(ALLOW_SIMULATED_GATEWAY=allowed)
    rules = {rule.rule for rule in app.url_map.iter_rules()}
    assert ("/simulated-gateway/authenticate/<intent_id>" in rules) is allowed
    if not allowed:
        assert app.test_client().get("/simulated-gateway/authenticate/pi_sim_x").status_code == 404


# --- Stripe, through STRIPE_API_BASE against the fake -----------------------------------------


def test_stripe_3d_secure_redirects_to_stripe_and_pays_once_authenticated(client, shopper, variant,
                                                                            stripe_mode):
    body = placed(client, shopper, variant)
    intent_id = body["payment_intent_id"]
    response = client.post(CONFIRM, json={"payment_intent_id": intent_id, "payment_method": THREE_DS[0],
                                          "return_url": "https://shop.example/return"}, headers=auth(shopper))
    # then 202 with Stripe's own page; Stripe heard the return_url
    assert response.status_code == 202, response.get_json()
    assert response.get_json()["next_action"] == {"type": "redirect_to_url",
                                                  "url": f"{stripe_mode.url}/3ds/{intent_id}"}
    confirmed = [form for m, path, form, _ in stripe_mode.requests if path.endswith("/confirm")]
    assert confirmed[-1]["return_url"] == "https://shop.example/return"
    assert order_of(body).status == OrderStatus.CREATED
    # when the customer authenticates at Stripe, confirm again asks Stripe and pays
    stripe_mode.authenticate(intent_id, approve=True)
    paid = confirm(client, shopper, intent_id)
    assert paid.status_code == 200 and paid.get_json()["order"]["status"] == "paid"
    assert inventory_of(variant).reserved == 0


def test_stripe_3d_secure_failed_is_402(client, shopper, variant, stripe_mode):
    body = placed(client, shopper, variant)
    intent_id = body["payment_intent_id"]
    assert confirm(client, shopper, intent_id, THREE_DS[1]).status_code == 202
    stripe_mode.authenticate(intent_id, approve=False)
    declined = confirm(client, shopper, intent_id)
    assert declined.status_code == 402 and "failed authentication" in declined.get_json()["detail"]
    order = order_of(body)
    assert order.status == OrderStatus.CREATED and order.payment.status == PaymentStatus.FAILED
    assert inventory_of(variant).reserved == 2


def test_stripe_3d_secure_settled_by_the_webhook(client, app, shopper, variant, stripe_mode, simulated):
    body = placed(client, shopper, variant)
    intent_id = body["payment_intent_id"]
    assert confirm(client, shopper, intent_id, THREE_DS[0]).status_code == 202
    stripe_mode.authenticate(intent_id, approve=True)
    # Stripe's webhook (signed with the same secret the simulator signs with)
    payload, signature = simulated.build_webhook("payment_intent.succeeded", stripe_mode.intents[intent_id])
    response = client.post("/webhooks/stripe", data=payload, headers={"Stripe-Signature": signature,
                                                                      "Content-Type": "application/json"})
    assert response.status_code == 200
    assert order_of(body).status == OrderStatus.PAID
    assert confirm(client, shopper, intent_id).status_code == 200


def test_a_stripe_intent_needing_the_sdk_answers_use_stripe_sdk(client, shopper, variant, stripe_mode):
    body = placed(client, shopper, variant)
    intent_id = body["payment_intent_id"]
    # Stripe answers use_stripe_sdk when no return_url is given
    stripe_mode.intents[intent_id].update(status="requires_action", next_action={"type": "use_stripe_sdk"})
    response = confirm(client, shopper, intent_id)
    assert response.status_code == 202
    assert response.get_json()["next_action"] == {"type": "use_stripe_sdk", "url": None}


def test_a_cancelled_unpaid_order_reads_payment_cancelled(client, shopper, variant):
    body = placed(client, shopper, variant)
    confirm(client, shopper, body["payment_intent_id"], THREE_DS[0])
    number = body["order"]["order_number"]
    cancelled = client.post(f"/api/v1/orders/{number}/cancel", json={"reason": "no 3-D Secure app"},
                            headers=auth(shopper))
    assert cancelled.status_code == 200
    assert cancelled.get_json()["payment"]["status"] == "cancelled"
    assert order_of(body).cancel_reason == "no 3-D Secure app"
    # the page no longer offers to authenticate it
    page = client.get(f"/simulated-gateway/authenticate/{body['payment_intent_id']}").get_data(as_text=True)
    assert 'id="authenticate"' not in page and "cancelled" in page


@pytest.fixture
def shopper(db):
    user = UserFactory()
    db.session.commit()
    return user


def test_a_post_without_the_page_s_csrf_token_changes_nothing(app, client, shopper, variant, monkeypatch):
    body = placed(client, shopper, variant)
    pending = confirm(client, shopper, body["payment_intent_id"], THREE_DS[0]).get_json()
    url = page_path(pending["next_action"]["url"])
    monkeypatch.setitem(app.config, "WTF_CSRF_ENABLED", True)
    # a cross-site form post (no token) is refused and the intent still waits
    assert client.post(url, data={"outcome": "authenticate"}).status_code == 400
    assert order_of(body).status == OrderStatus.CREATED and order_of(body).payment.next_action_url
    # the page's own form carries the session's token, and that post goes through
    token = re.search(r'name="csrf_token" value="([^"]+)"', client.get(url).get_data(as_text=True)).group(1)
    assert client.post(url, data={"outcome": "authenticate", "csrf_token": token}).status_code == 303
    assert order_of(body).status == OrderStatus.PAID
