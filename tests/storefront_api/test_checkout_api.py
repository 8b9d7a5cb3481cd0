"""POST /api/v1/checkout/payment-intent and /checkout/confirm with the simulated gateway."""

from __future__ import annotations

from decimal import Decimal

import pytest
from sqlalchemy import select

from ecom.commerce import checkout as checkout_module
from ecom.commerce.models import Cart, CartItem, IdempotencyKey, Order, Payment
from ecom.commerce.status import OrderStatus, PaymentStatus
from ecom.extensions import db
from ecom.fulfillment.models import Fulfillment
from ecom.inventory.models import ReservationStatus, StockReservation
from tests.commerce_support import (
    ADDRESS,
    auth,
    count,
    fill_cart,
    inventory_of,
    nothing_created,
    outbox_types,
    statements_during,
)
from tests.factories import AddressFactory, UserFactory, make_order, stocked_variant

INTENT = "/api/v1/checkout/payment-intent"
CONFIRM = "/api/v1/checkout/confirm"


def checkout(client, user, body=None, **headers):
    return client.post(INTENT, json=body or {"shipping_address": ADDRESS}, headers={**auth(user), **headers})


def test_checkout_creates_a_reserved_order_and_a_pending_payment(client, shopper, address, variant):
    # given a cart with 2 units at 20.00
    fill_cart(shopper, [(variant, 2)])
    # when
    response = checkout(client, shopper, {"shipping_address_id": address.id})
    # then
    assert response.status_code == 201, response.get_json()
    body = response.get_json()
    order = body["order"]
    assert order["status"] == "created"
    assert order["order_number"].startswith("ORD-")
    assert len(order["order_number"]) == len("ORD-20261124-7KQ2M9")
    assert order["subtotal"] == "40.00" and order["tax"] == "3.20"
    assert order["shipping_cost"] == "5.99" and order["total"] == "49.19"
    assert order["items"] == [{"sku": variant.sku, "product_name": variant.product.name,
                               "variant_name": variant.name, "quantity": 2, "price": "20.00",
                               "line_total": "40.00", "discount": "0.00", "tax": "3.20",
                               "tax_rate": "0.0800"}]
    assert order["shipping_address"]["street"] == address.street
    assert order["billing_address"] == order["shipping_address"]
    assert order["payment"]["status"] == "pending" and order["payment"]["amount"] == "49.19"
    assert body["payment_intent_id"].startswith("pi_sim_")
    assert body["client_secret"].startswith(body["payment_intent_id"] + "_secret_")
    assert inventory_of(variant).reserved == 2 and inventory_of(variant).quantity == 10
    assert outbox_types() == ["ORDER_PLACED"]
    # the cart is kept until the payment succeeds
    assert count(CartItem) == 1


def test_checkout_snapshots_items_against_later_price_changes(client, shopper, variant):
    fill_cart(shopper, [(variant, 1)])
    checkout(client, shopper)
    variant.price = Decimal("99.00")
    variant.product.name = "Renamed"
    db.session.flush()
    order = db.session.scalar(select(Order))
    assert order.items[0].price == Decimal("20.00")
    assert order.items[0].product_name != "Renamed"


def test_an_order_number_already_taken_is_drawn_again(client, shopper, variant, monkeypatch):
    # given an order holding the number the draw comes up with first
    make_order(shopper, [(variant, 1)], number="ORD-20260101-AAAAAA")
    draws = iter(["ORD-20260101-AAAAAA", "ORD-20260101-BBBBBB"])
    monkeypatch.setattr(checkout_module, "_order_number", lambda: next(draws))
    fill_cart(shopper, [(variant, 1)])
    # when
    response = checkout(client, shopper)
    # then the new order got the next number drawn
    assert response.status_code == 201, response.get_json()
    assert response.get_json()["order"]["order_number"] == "ORD-20260101-BBBBBB"
    assert count(Order) == 2


def test_checkout_with_an_empty_cart_is_409(client, shopper):
    response = checkout(client, shopper)
    assert response.status_code == 409
    assert "empty" in response.get_json()["detail"]
    assert nothing_created()


def test_checkout_with_another_users_address_is_404(client, shopper, variant):
    fill_cart(shopper, [(variant, 1)])
    someone_elses = AddressFactory(user=UserFactory())
    response = checkout(client, shopper, {"shipping_address_id": someone_elses.id})
    assert response.status_code == 404
    assert nothing_created()
    assert inventory_of(variant).reserved == 0


def test_checkout_short_of_stock_is_409_naming_the_short_skus_and_creates_nothing(client, shopper):
    plenty, scarce = stocked_variant(quantity=10), stocked_variant(quantity=1)
    fill_cart(shopper, [(plenty, 2), (scarce, 3)])
    response = checkout(client, shopper)
    assert response.status_code == 409
    body = response.get_json()
    assert scarce.sku in body["detail"] and plenty.sku not in body["detail"]
    assert nothing_created()
    assert inventory_of(plenty).reserved == 0 and inventory_of(scarce).reserved == 0
    assert outbox_types() == []


def test_checkout_body_must_name_exactly_one_shipping_address(client, shopper, variant, address):
    fill_cart(shopper, [(variant, 1)])
    assert checkout(client, shopper, {"billing_address": ADDRESS}).status_code == 422
    both = {"shipping_address": ADDRESS, "shipping_address_id": address.id}
    assert checkout(client, shopper, both).status_code == 422
    bad_country = {"shipping_address": {**ADDRESS, "country": "Britain"}}
    response = checkout(client, shopper, bad_country)
    assert response.status_code == 422 and "shipping_address.country" in response.get_json()["errors"]
    assert nothing_created()


def test_checkout_requires_a_token(client):
    assert client.post(INTENT, json={"shipping_address": ADDRESS}).status_code == 401


def test_checkout_uses_the_given_billing_address(client, shopper, variant):
    fill_cart(shopper, [(variant, 1)])
    billing = {**ADDRESS, "street": "1 Billing Way", "country": "fr"}
    response = checkout(client, shopper, {"shipping_address": ADDRESS, "billing_address": billing})
    order = response.get_json()["order"]
    assert order["billing_address"]["street"] == "1 Billing Way"
    assert order["billing_address"]["country"] == "FR"
    assert order["shipping_address"]["street"] == ADDRESS["street"]


def test_idempotency_key_replays_the_first_answer_and_creates_nothing_new(client, shopper, variant):
    fill_cart(shopper, [(variant, 1)])
    first = checkout(client, shopper, None, **{"Idempotency-Key": "abc-123"})
    again = checkout(client, shopper, None, **{"Idempotency-Key": "abc-123"})
    assert first.status_code == again.status_code == 201, (first.get_json(), again.get_json())
    assert again.get_json() == first.get_json()
    assert count(Order) == 1 and count(Payment) == 1
    assert inventory_of(variant).reserved == 1


def test_idempotency_key_reused_with_another_body_is_422(client, shopper, variant):
    fill_cart(shopper, [(variant, 1)])
    checkout(client, shopper, None, **{"Idempotency-Key": "abc-123"})
    other = {"shipping_address": {**ADDRESS, "city": "Paris"}}
    response = checkout(client, shopper, other, **{"Idempotency-Key": "abc-123"})
    assert response.status_code == 422
    assert "Idempotency-Key" in response.get_json()["detail"]
    assert count(Order) == 1


def test_idempotency_keys_are_per_user(client, shopper, variant):
    other = UserFactory()
    fill_cart(shopper, [(variant, 1)])
    fill_cart(other, [(variant, 1)])
    checkout(client, shopper, None, **{"Idempotency-Key": "same"})
    checkout(client, other, None, **{"Idempotency-Key": "same"})
    assert count(Order) == 2


def test_a_failed_attempt_does_not_burn_the_idempotency_key(client, shopper, variant):
    # given an out-of-stock first attempt
    fill_cart(shopper, [(variant, 11)])
    assert checkout(client, shopper, None, **{"Idempotency-Key": "k1"}).status_code == 409
    assert count(IdempotencyKey) == 0
    # when stock arrives and the shopper retries with the same key
    inventory_of(variant).quantity = 20
    db.session.flush()
    # then the retry is processed
    assert checkout(client, shopper, None, **{"Idempotency-Key": "k1"}).status_code == 201


# --- confirm -------------------------------------------------------------------------------


def placed(client, user, lines):
    fill_cart(user, lines)
    body = checkout(client, user).get_json()
    return body["payment_intent_id"], body["order"]["order_number"]


def test_confirm_success_pays_commits_stock_clears_cart_and_opens_fulfillment(client, shopper, variant):
    intent_id, number = placed(client, shopper, [(variant, 3)])
    response = client.post(CONFIRM, json={"payment_intent_id": intent_id}, headers=auth(shopper))
    assert response.status_code == 200, response.get_json()
    order = response.get_json()["order"]
    assert order["order_number"] == number
    assert order["status"] == "paid" and order["paid_at"]
    assert order["payment"]["status"] == "completed"
    assert order["fulfillment"] == {"status": "pending", "carrier": None, "tracking_number": None,
                                    "is_pickup": False}
    assert order["fulfillments"] == [order["fulfillment"]]
    inventory = inventory_of(variant)
    assert (inventory.quantity, inventory.reserved) == (7, 0)
    assert count(CartItem) == 0
    assert outbox_types() == ["ORDER_PLACED", "ORDER_PAID"]
    reservation = db.session.scalar(select(StockReservation))
    assert reservation.status == ReservationStatus.COMMITTED


def test_confirm_again_after_success_is_200_and_changes_nothing(client, shopper, variant):
    intent_id, _ = placed(client, shopper, [(variant, 1)])
    first = client.post(CONFIRM, json={"payment_intent_id": intent_id}, headers=auth(shopper))
    again = client.post(CONFIRM, json={"payment_intent_id": intent_id}, headers=auth(shopper))
    assert again.status_code == 200
    assert again.get_json() == first.get_json()
    assert inventory_of(variant).quantity == 9
    assert outbox_types().count("ORDER_PAID") == 1
    assert count(Fulfillment) == 1


def test_declined_confirm_is_402_and_keeps_the_order_created_with_its_reservation(client, shopper, variant):
    intent_id, number = placed(client, shopper, [(variant, 2)])
    response = client.post(CONFIRM, json={"payment_intent_id": intent_id,
                                          "payment_method": "pm_card_chargeDeclined"}, headers=auth(shopper))
    assert response.status_code == 402
    assert "declined" in response.get_json()["detail"]
    order = db.session.scalar(select(Order).where(Order.order_number == number))
    assert order.status == OrderStatus.CREATED
    assert order.payment.status == PaymentStatus.FAILED
    assert inventory_of(variant).reserved == 2
    assert outbox_types() == ["ORDER_PLACED", "PAYMENT_FAILED"]
    assert count(CartItem) == 1


@pytest.mark.parametrize("method", ["not-a-method", "\ue228", "pm_", "pm_card visa", "card_123"])
def test_confirm_with_no_payment_method_id_is_422_and_changes_nothing(client, shopper, variant, method):
    intent_id, _ = placed(client, shopper, [(variant, 1)])
    response = client.post(CONFIRM, json={"payment_intent_id": intent_id, "payment_method": method},
                           headers=auth(shopper))
    assert response.status_code == 422 and "payment_method" in response.get_json()["errors"]
    assert db.session.scalar(select(Payment)).status == PaymentStatus.PENDING
    assert outbox_types() == ["ORDER_PLACED"]


def test_after_a_decline_a_good_card_still_pays(client, shopper, variant):
    intent_id, _ = placed(client, shopper, [(variant, 1)])
    client.post(CONFIRM, json={"payment_intent_id": intent_id, "payment_method": "pm_card_chargeDeclined"},
                headers=auth(shopper))
    response = client.post(CONFIRM, json={"payment_intent_id": intent_id, "payment_method": "pm_card_visa"},
                           headers=auth(shopper))
    assert response.status_code == 200
    assert response.get_json()["order"]["status"] == "paid"


def test_confirm_of_another_shoppers_intent_is_404_and_changes_nothing(client, shopper, variant):
    intent_id, _ = placed(client, shopper, [(variant, 1)])
    stranger = UserFactory()
    response = client.post(CONFIRM, json={"payment_intent_id": intent_id}, headers=auth(stranger))
    assert response.status_code == 404
    assert db.session.scalar(select(Order)).status == OrderStatus.CREATED


def test_confirm_of_an_unknown_intent_is_404(client, shopper):
    response = client.post(CONFIRM, json={"payment_intent_id": "pi_sim_nope"}, headers=auth(shopper))
    assert response.status_code == 404


def test_cart_is_only_cleared_of_the_paid_cart(client, shopper, variant):
    intent_id, _ = placed(client, shopper, [(variant, 1)])
    client.post(CONFIRM, json={"payment_intent_id": intent_id}, headers=auth(shopper))
    cart = db.session.scalar(select(Cart).where(Cart.user_id == shopper.id))
    assert cart is not None and cart.items == []



def test_checkout_reads_the_cart_once_and_takes_each_line_in_one_statement(client, shopper):
    # given a cart of three lines
    variants = [stocked_variant(quantity=5) for _ in range(3)]
    fill_cart(shopper, [(v, 1) for v in variants])
    headers = auth(shopper)
    # when
    response, statements = statements_during(
        lambda: client.post(INTENT, json={"shipping_address": ADDRESS}, headers=headers))
    # then the lines come with their variants and products in one query; nothing the checkout
    # itself writes or knows (its payment, its missing fulfillment) is read back; and the lines'
    # inventory rows at every location are locked by one statement (the allocation's plan is
    # made on them) and written back in one batch (on PostgreSQL one statement with the
    # reservations). The cart's row is read once, to lock it,
    # in the statement that reads its lines, and the shopper's open orders (with a payment)
    # once, to replace them.
    assert response.status_code == 201
    reads = [s for s in statements if s.startswith("SELECT")]
    locks = [s for s in reads if "cart_items" in s]
    assert len(locks) == 1
    assert locks[0].startswith("SELECT carts.id")
    assert "JOIN variants" in locks[0] and "JOIN products" in locks[0]
    assert "FOR NO KEY UPDATE OF carts" in locks[0] or db.engine.dialect.name == "sqlite"
    reads = [s for s in reads if s not in locks and "FROM orders" not in s]
    stock_locks = [s for s in reads if "FROM inventory " in s]
    assert len(stock_locks) == 1, stock_locks
    assert "FOR UPDATE OF inventory" in stock_locks[0] or db.engine.dialect.name == "sqlite"
    reads = [s for s in reads if s not in stock_locks]
    for table in ("carts", "variants", "products", "payments", "fulfillments", "inventory"):
        assert not [s for s in reads if f"FROM {table} " in s or s.endswith(f"FROM {table}")], table
    if db.engine.dialect.name == "postgresql":
        [hold] = [s for s in statements if "UPDATE inventory" in s]
        assert hold.startswith("WITH taken AS") and "INSERT INTO stock_reservations" in hold
        assert not [s for s in statements if s.startswith("INSERT INTO stock_reservations")]
    else:
        assert len([s for s in statements if s.startswith("UPDATE inventory")]) == 1
