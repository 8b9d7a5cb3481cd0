"""Guest checkout (commerce-v2 §2): a guest cart paid without an account, the order reached
with its order token, adopted by a signed-in shopper only with that token."""

from __future__ import annotations

import hashlib
import json

import pytest
from sqlalchemy import select

from ecom.audit.models import AuditLog
from ecom.commerce.models import Cart, CartItem, IdempotencyKey, Order, Payment
from ecom.commerce.status import OrderStatus, PaymentStatus
from ecom.notifications.handler import recipients_for
from ecom.notifications.models import EventType, OutboxEvent
from tests.commerce_support import count, inventory_of
from tests.factories import UserFactory, stocked_variant
from tests.storefront_api.conftest import bearer, saved

CART = "/api/v1/cart"
QUOTE = "/api/v1/checkout/quote"
INTENT = "/api/v1/checkout/payment-intent"
CONFIRM = "/api/v1/checkout/confirm"
GUEST_EMAIL = "Guest.Shopper@Example.com"
US_ADDRESS = {"full_name": "Grace Guest", "street": "1 Main St", "city": "Springfield", "state": "IL",
              "postal_code": "62701", "country": "US", "phone": None}


def guest_cart(client, *lines) -> str:
    """A new guest cart holding ``lines`` [(variant, quantity)]; its token."""
    token = client.get(CART).get_json()["token"]
    for variant, quantity in lines:
        response = client.post(f"{CART}/items", json={"sku": variant.sku, "quantity": quantity},
                               headers={"X-Cart-Token": token})
        assert response.status_code == 201, response.get_json()
    return token


def guest_checkout(client, token, body=None, **headers):
    return client.post(INTENT, json=body or {"email": GUEST_EMAIL, "shipping_address": US_ADDRESS},
                       headers={"X-Cart-Token": token, **headers})


def order_headers(token: str) -> dict:
    return {"X-Order-Token": token}


def order_row(number: str) -> Order:
    from ecom.extensions import db

    return db.session.scalar(select(Order).where(Order.order_number == number)
                             .execution_options(populate_existing=True))


@pytest.fixture
def stock(db):
    return saved(db, stocked_variant(quantity=10, price="20.00"))


def test_the_guest_journey_from_cart_to_claim(app, client, db, stock):
    # given a guest cart with two units
    cart_token = guest_cart(client, (stock, 2))
    # (the quote step, where the pricing engine offers it)
    rules = {rule.rule for rule in app.url_map.iter_rules()}
    quoted = None
    if QUOTE in rules:
        quote = client.post(QUOTE, json={"shipping_address": US_ADDRESS},
                            headers={"X-Cart-Token": cart_token})
        assert quote.status_code == 200, quote.get_json()
        quoted = quote.get_json()["total"]

    # when the guest pays with an email and a full address, and no bearer token
    placed = guest_checkout(client, cart_token)

    # then an order with no user and that email exists, and its token is shown
    assert placed.status_code == 201, placed.get_json()
    body = placed.get_json()
    number, token = body["order"]["order_number"], body["order_token"]
    assert isinstance(token, str) and len(token) >= 43
    if quoted is not None:
        assert body["order"]["total"] == quoted
    order = order_row(number)
    assert order.user_id is None and order.email == GUEST_EMAIL.lower()
    assert order.status == OrderStatus.CREATED and inventory_of(stock).reserved == 2
    # only the token's hash is stored
    assert order.order_token_hash == hashlib.sha256(token.encode()).hexdigest()
    assert token not in json.dumps([list(row) for row in db.session.execute(select(Order.__table__))],
                                   default=str)

    # the token opens the order; nothing else does
    seen = client.get(f"/api/v1/orders/{number}", headers=order_headers(token))
    assert seen.status_code == 200 and seen.get_json()["order_number"] == number
    assert client.get(f"/api/v1/orders/{number}").status_code == 401
    assert client.get(f"/api/v1/orders/{number}", headers=order_headers("x" * 43)).status_code == 404
    other_token = guest_checkout(client, guest_cart(client, (stock, 1))).get_json()["order_token"]
    assert client.get(f"/api/v1/orders/{number}", headers=order_headers(other_token)).status_code == 404
    # nor does a stranger's bearer token
    stranger = saved(db, UserFactory())
    assert client.get(f"/api/v1/orders/{number}", headers=bearer(stranger)).status_code == 404

    # the guest confirms the payment with the order token
    paid = client.post(CONFIRM, json={"payment_intent_id": body["payment_intent_id"]},
                       headers=order_headers(token))
    assert paid.status_code == 200, paid.get_json()
    assert paid.get_json()["order"]["status"] == "paid"
    assert db.session.scalars(select(CartItem).join(Cart).where(Cart.token == cart_token)).all() == []

    # a signed-in shopper claims it with the token
    shopper = saved(db, UserFactory())
    assert client.post(f"/api/v1/orders/{number}/claim", headers=bearer(shopper)).status_code == 400
    assert client.post(f"/api/v1/orders/{number}/claim",
                       headers={**bearer(shopper), **order_headers(other_token)}).status_code == 404
    claimed = client.post(f"/api/v1/orders/{number}/claim",
                          headers={**bearer(shopper), **order_headers(token)})
    assert claimed.status_code == 200, claimed.get_json()
    assert order_row(number).user_id == shopper.id
    listed = client.get("/api/v1/orders", headers=bearer(shopper)).get_json()
    assert [o["order_number"] for o in listed["items"]] == [number]
    assert client.get(f"/api/v1/orders/{number}", headers=bearer(shopper)).status_code == 200
    # again: nothing changes; another account: 409; without signing in: 401
    again = client.post(f"/api/v1/orders/{number}/claim", headers={**bearer(shopper), **order_headers(token)})
    assert again.status_code == 200
    assert client.post(f"/api/v1/orders/{number}/claim",
                       headers={**bearer(stranger), **order_headers(token)}).status_code == 409
    assert client.post(f"/api/v1/orders/{number}/claim", headers=order_headers(token)).status_code == 401
    assert order_row(number).user_id == shopper.id
    claims = db.session.scalars(select(AuditLog).where(AuditLog.action == "claim")).all()
    assert len(claims) == 1


def test_a_guest_order_is_never_claimed_by_its_email(client, db, stock):
    # given a guest order placed with the email of an existing account
    owner = saved(db, UserFactory(email="known@example.com"))
    placed = guest_checkout(client, guest_cart(client, (stock, 1)),
                            {"email": "known@example.com", "shipping_address": US_ADDRESS})
    number = placed.get_json()["order"]["order_number"]
    # then the account neither sees nor claims it without the token
    assert client.get("/api/v1/orders", headers=bearer(owner)).get_json()["items"] == []
    assert client.get(f"/api/v1/orders/{number}", headers=bearer(owner)).status_code == 404
    assert client.post(f"/api/v1/orders/{number}/claim",
                       headers={**bearer(owner), "X-Order-Token": "wrong"}).status_code == 404
    assert order_row(number).user_id is None


@pytest.mark.parametrize("body, field", [
    ({"shipping_address": US_ADDRESS}, "email"),
    ({"email": "not-an-email", "shipping_address": US_ADDRESS}, "email"),
    ({"email": GUEST_EMAIL, "shipping_address_id": 1}, "shipping_address_id"),
    ({"email": GUEST_EMAIL, "shipping_address": US_ADDRESS, "billing_address_id": 1}, "billing_address_id"),
    ({"email": GUEST_EMAIL, "shipping_address": {**US_ADDRESS, "street": ""}}, "shipping_address.street"),
])
def test_a_guest_checkout_without_email_or_full_address_is_422(client, stock, body, field):
    response = guest_checkout(client, guest_cart(client, (stock, 1)), body)
    assert response.status_code == 422, response.get_json()
    assert field in response.get_json()["errors"]
    assert count(Order) == 0 and inventory_of(stock).reserved == 0


def test_without_bearer_or_cart_token_it_is_401_and_an_unknown_cart_token_404(client, stock):
    assert client.post(INTENT, json={"email": GUEST_EMAIL, "shipping_address": US_ADDRESS}).status_code == 401
    assert guest_checkout(client, "never-issued.token").status_code == 404
    # a token we issued whose cart holds nothing: an empty cart
    empty = client.get(CART).get_json()["token"]
    assert guest_checkout(client, empty).status_code == 409
    assert count(Order) == 0


def test_a_signed_in_shopper_s_order_uses_the_account_email_and_has_no_token(client, db, stock):
    shopper = saved(db, UserFactory())
    client.post(f"{CART}/items", json={"sku": stock.sku, "quantity": 1}, headers=bearer(shopper))
    ordered = client.post(INTENT, json={"email": GUEST_EMAIL, "shipping_address": US_ADDRESS},
                          headers={**bearer(shopper), "X-Cart-Token": "ignored.token"})
    assert ordered.status_code == 201 and ordered.get_json()["order_token"] is None
    order = order_row(ordered.get_json()["order"]["order_number"])
    assert order.user_id == shopper.id and order.email == shopper.email
    assert order.order_token_hash is None and order.client_ip is None


def test_idempotency_key_of_a_guest_belongs_to_the_cart_token(client, db, stock):
    # given a guest cart
    cart_token = guest_cart(client, (stock, 1))
    # when the same request is sent twice with one key
    first = guest_checkout(client, cart_token, **{"Idempotency-Key": "k-1"})
    again = guest_checkout(client, cart_token, **{"Idempotency-Key": "k-1"})
    # then the second answer is the first, order token included, and one order exists
    assert first.status_code == again.status_code == 201
    assert again.get_json() == first.get_json()
    assert count(Order) == 1
    # and the stored answer has no token; the key belongs to the cart token, not to a user
    key = db.session.scalar(select(IdempotencyKey))
    assert key.user_id is None and key.cart_token == cart_token
    assert "order_token" not in key.response_body
    # the same key from another guest cart is another request
    other = guest_checkout(client, guest_cart(client, (stock, 1)), **{"Idempotency-Key": "k-1"})
    assert other.status_code == 201 and other.get_json()["order"]["order_number"] != \
        first.get_json()["order"]["order_number"]
    assert count(Order) == 2
    # and a different body under the first key is refused
    changed = guest_checkout(client, cart_token,
                             {"email": "other@example.com", "shipping_address": US_ADDRESS},
                             **{"Idempotency-Key": "k-1"})
    assert changed.status_code == 422


def test_a_guest_cancels_with_the_token_and_the_reason_is_stored(client, db, stock):
    placed = guest_checkout(client, guest_cart(client, (stock, 3))).get_json()
    number, token = placed["order"]["order_number"], placed["order_token"]
    unsigned = client.post(f"/api/v1/orders/{number}/cancel", json={"reason": "changed my mind"})
    assert unsigned.status_code == 401
    response = client.post(f"/api/v1/orders/{number}/cancel", json={"reason": "changed my mind"},
                           headers=order_headers(token))
    assert response.status_code == 200, response.get_json()
    body = response.get_json()
    # an unpaid cancelled order's payment reads cancelled, not pending
    assert body["status"] == "cancelled" and body["payment"]["status"] == "cancelled"
    order = order_row(number)
    assert order.cancel_reason == "changed my mind"
    assert order.payment.status == PaymentStatus.CANCELLED
    assert inventory_of(stock).reserved == 0


def test_a_signed_in_cancel_reason_is_stored_too(client, db, stock):
    shopper = saved(db, UserFactory())
    client.post(f"{CART}/items", json={"sku": stock.sku, "quantity": 1}, headers=bearer(shopper))
    number = client.post(INTENT, json={"shipping_address": US_ADDRESS},
                         headers=bearer(shopper)).get_json()["order"]["order_number"]
    response = client.post(f"/api/v1/orders/{number}/cancel", json={"reason": "found it cheaper"},
                           headers=bearer(shopper))
    assert response.status_code == 200
    assert response.get_json()["payment"]["status"] == "cancelled"
    assert order_row(number).cancel_reason == "found it cheaper"


def test_notifications_of_a_guest_order_go_to_its_email(client, db, stock):
    placed = guest_checkout(client, guest_cart(client, (stock, 1))).get_json()
    client.post(CONFIRM, json={"payment_intent_id": placed["payment_intent_id"]},
                headers=order_headers(placed["order_token"]))
    events = db.session.scalars(select(OutboxEvent).order_by(OutboxEvent.created_at)).all()
    assert [e.type for e in events] == ["ORDER_PLACED", "ORDER_PAID"]
    for event in events:
        data = event.payload.get("data", event.payload)
        assert data["user_id"] is None and data["user_email"] == GUEST_EMAIL.lower()
        recipients = recipients_for(db.engine, EventType(event.type), data)
        assert ("email", GUEST_EMAIL.lower()) in [(str(c), r) for c, r in recipients]


def test_checking_out_the_guest_cart_again_replaces_its_open_order(client, stock):
    cart_token = guest_cart(client, (stock, 2))
    first = guest_checkout(client, cart_token).get_json()["order"]["order_number"]
    second = guest_checkout(client, cart_token).get_json()["order"]["order_number"]
    assert order_row(first).status == OrderStatus.CANCELLED
    assert order_row(second).status == OrderStatus.CREATED
    assert inventory_of(stock).reserved == 2


def test_open_unpaid_guest_orders_are_capped_per_client_address(app, client, stock, monkeypatch):
    monkeypatch.setitem(app.config, "MAX_OPEN_GUEST_ORDERS_PER_IP", 2)
    carts = [guest_cart(client, (stock, 1)) for _ in range(3)]
    assert guest_checkout(client, carts[0]).status_code == 201
    assert guest_checkout(client, carts[1]).status_code == 201
    # a third guest order from the same address is refused, nothing is held for it
    refused = guest_checkout(client, carts[2])
    assert refused.status_code == 409 and "at most 2" in refused.get_json()["detail"]
    assert count(Order) == 2 and inventory_of(stock).reserved == 2
    # checking out a capped cart again replaces its own order: allowed
    assert guest_checkout(client, carts[1]).status_code == 201
    # from another address it goes through
    elsewhere = client.post(INTENT, json={"email": GUEST_EMAIL, "shipping_address": US_ADDRESS},
                            headers={"X-Cart-Token": carts[2]}, environ_base={"REMOTE_ADDR": "203.0.113.9"})
    assert elsewhere.status_code == 201
    assert order_row(elsewhere.get_json()["order"]["order_number"]).client_ip == "203.0.113.9"


def test_a_paid_guest_order_no_longer_counts_towards_the_cap(app, client, stock, monkeypatch):
    monkeypatch.setitem(app.config, "MAX_OPEN_GUEST_ORDERS_PER_IP", 1)
    placed = guest_checkout(client, guest_cart(client, (stock, 1))).get_json()
    assert guest_checkout(client, guest_cart(client, (stock, 1))).status_code == 409
    client.post(CONFIRM, json={"payment_intent_id": placed["payment_intent_id"]},
                headers=order_headers(placed["order_token"]))
    assert guest_checkout(client, guest_cart(client, (stock, 1))).status_code == 201


def test_guest_orders_are_marked_in_the_back_office(app, db, stock):
    from tests.admin.conftest import new_client, sign_in

    api = app.test_client()
    placed = guest_checkout(api, guest_cart(api, (stock, 1))).get_json()
    staff = saved(db, UserFactory(role="admin"))
    admin = new_client(app)
    sign_in(admin, staff)
    listing = admin.get("/admin/order/").get_data(as_text=True)
    assert "guest-order" in listing and GUEST_EMAIL.lower() in listing
    order = order_row(placed["order"]["order_number"])
    page = admin.get(f"/admin/order/details/?id={order.id}").get_data(as_text=True)
    assert 'id="guest-order"' in page
    # and the "Guest" filter lists it, and not an account's order
    from admin.views.orders import GuestOrderFilter, OrderView

    view = next(v for v in app.extensions["backoffice"]._views if isinstance(v, OrderView))
    index = next(i for i, f in enumerate(view._filters) if isinstance(f, GuestOrderFilter))
    shopper = saved(db, UserFactory())
    api.post(f"{CART}/items", json={"sku": stock.sku, "quantity": 1}, headers=bearer(shopper))
    mine = api.post(INTENT, json={"shipping_address": US_ADDRESS}, headers=bearer(shopper)).get_json()
    guests_only = admin.get(f"/admin/order/?flt0_{index}=1").get_data(as_text=True)
    assert placed["order"]["order_number"] in guests_only
    assert mine["order"]["order_number"] not in guests_only


def test_payments_of_guest_orders_are_kept_like_any_other(client, db, stock):
    placed = guest_checkout(client, guest_cart(client, (stock, 1))).get_json()
    payment = db.session.scalar(select(Payment))
    assert payment.stripe_payment_intent_id == placed["payment_intent_id"]
    assert payment.status == PaymentStatus.PENDING


def test_the_openapi_document_describes_guest_checkout_and_3d_secure(client):
    document = client.get("/api/v1/openapi.json").get_json()
    paths, schemas = document["paths"], document["components"]["schemas"]

    def header_names(operation) -> set[str]:
        return {p["name"] for p in operation["parameters"] if p["in"] == "header"}

    intent = paths["/api/v1/checkout/payment-intent"]["post"]
    assert {"X-Cart-Token", "Idempotency-Key"} <= header_names(intent)
    assert intent["security"] == [{}, {"bearerAuth": []}]
    assert "email" in schemas["CheckoutIn"]["properties"]
    assert "order_token" in schemas["CheckoutOut"]["properties"]
    for path, method in (("/api/v1/orders/{order_number}", "get"),
                         ("/api/v1/orders/{order_number}/cancel", "post"),
                         ("/api/v1/checkout/confirm", "post")):
        assert "X-Order-Token" in header_names(paths[path][method]), path
    claim = paths["/api/v1/orders/{order_number}/claim"]["post"]
    assert claim["security"] == [{"bearerAuth": []}]
    assert [p["required"] for p in claim["parameters"] if p["name"] == "X-Order-Token"] == [True]
    assert {"200", "401", "404", "409"} <= set(claim["responses"])
    confirm = paths["/api/v1/checkout/confirm"]["post"]
    pending = confirm["responses"]["202"]["content"]["application/json"]["schema"]["$ref"]
    assert pending.endswith("/ConfirmPendingOut")
    assert schemas["PaymentActionOut"]["properties"]["status"]["const"] == "requires_action"
    assert "return_url" in schemas["ConfirmIn"]["properties"]


def test_a_claimed_unpaid_guest_order_is_not_replaced_by_the_shoppers_own_checkout(client, db, stock):
    # given a guest order, unpaid, claimed by a shopper
    placed = guest_checkout(client, guest_cart(client, (stock, 1))).get_json()
    number = placed["order"]["order_number"]
    shopper = saved(db, UserFactory())
    headers = {**bearer(shopper), **order_headers(placed["order_token"])}
    assert client.post(f"/api/v1/orders/{number}/claim", headers=headers).status_code == 200
    # when the shopper checks out their own cart
    client.post(f"{CART}/items", json={"sku": stock.sku, "quantity": 2}, headers=bearer(shopper))
    own = client.post(INTENT, json={"shipping_address": US_ADDRESS}, headers=bearer(shopper))
    assert own.status_code == 201
    # then the claimed order is still open (it was not placed by that cart), and still payable
    assert order_row(number).status == OrderStatus.CREATED
    assert inventory_of(stock).reserved == 3
    paid = client.post(CONFIRM, json={"payment_intent_id": placed["payment_intent_id"]},
                       headers=bearer(shopper))
    assert paid.status_code == 200 and paid.get_json()["order"]["status"] == "paid"


def test_a_guest_s_voucher_limit_per_customer_counts_their_email(client, db, stock):
    from tests.pricing_support import promotion, us_shop

    # given a voucher each customer may use once, and a guest who paid with it
    us_shop()
    promotion("Once", code="ONCE", per_customer_limit=1)
    db.session.commit()
    body = {"email": GUEST_EMAIL, "shipping_address": US_ADDRESS, "voucher_code": "once"}
    placed = guest_checkout(client, guest_cart(client, (stock, 1)), body)
    assert placed.status_code == 201, placed.get_json()
    assert placed.get_json()["order"]["discount_total"] != "0.00"
    client.post(CONFIRM, json={"payment_intent_id": placed.get_json()["payment_intent_id"]},
                headers=order_headers(placed.get_json()["order_token"]))
    # when the same email checks out another guest cart with it (in another letter case)
    again = guest_checkout(client, guest_cart(client, (stock, 1)),
                           {**body, "email": GUEST_EMAIL.upper()})
    # then the voucher is refused; another email may still use it
    assert again.status_code == 422 and "voucher_code" in again.get_json()["errors"]
    other = guest_checkout(client, guest_cart(client, (stock, 1)), {**body, "email": "other@example.com"})
    assert other.status_code == 201, other.get_json()
