"""The cart API: guest tokens, lines, stock limits, totals, merging on sign-in."""

from __future__ import annotations

import pytest

from ecom.commerce.models import Cart
from tests.factories import TEST_PASSWORD, UserFactory, stocked_variant
from tests.storefront_api.conftest import bearer


@pytest.fixture
def shirt(db):
    variant = stocked_variant(quantity=5, price="12.50", sku="SHIRT-M", name="Medium")
    db.session.commit()
    return variant


def add(client, headers, sku="SHIRT-M", quantity=1):
    return client.post("/api/v1/cart/items", headers=headers, json={"sku": sku, "quantity": quantity})


def token_headers(response) -> dict[str, str]:
    return {"Authorization": f"Bearer {response.json['access_token']}"}


def guest_cart(client) -> str:
    return client.get("/api/v1/cart").headers["X-Cart-Token"]


def test_get_cart_without_token_creates_a_guest_cart(client, db):
    response = client.get("/api/v1/cart")

    assert response.status_code == 200
    token = response.json["token"]
    assert token and response.headers["X-Cart-Token"] == token
    assert len(token) >= 32
    assert response.json["items"] == []
    assert response.json["total"] == "0.00"
    assert response.json["currency"] == "usd"
    again = client.get("/api/v1/cart", headers={"X-Cart-Token": token})
    assert again.json["id"] == response.json["id"]


def test_unknown_cart_token_is_404(client, db):
    response = client.get("/api/v1/cart", headers={"X-Cart-Token": "no-such-token"})

    assert response.status_code == 404


def test_add_item_snapshots_price_and_computes_totals(client, shirt):
    token = guest_cart(client)

    response = client.post("/api/v1/cart/items", headers={"X-Cart-Token": token},
                           json={"sku": "SHIRT-M", "quantity": 2})

    assert response.status_code == 201
    cart = response.json
    [line] = cart["items"]
    assert line["sku"] == "SHIRT-M"
    assert line["unit_price"] == "12.50"
    assert line["line_total"] == "25.00"
    assert line["variant_name"] == "Medium"
    assert line["product_id"] == shirt.product_id
    assert cart["item_count"] == 2
    assert cart["subtotal"] == "25.00"
    assert cart["tax"] == "2.00"
    assert cart["shipping_cost"] == "5.99"
    assert cart["total"] == "32.99"


def test_free_shipping_from_the_threshold(client, db):
    stocked_variant(quantity=10, price="25.00", sku="BOOT")
    db.session.commit()
    token = guest_cart(client)

    cart = client.post("/api/v1/cart/items", headers={"X-Cart-Token": token},
                       json={"sku": "BOOT", "quantity": 2}).json

    assert cart["subtotal"] == "50.00"
    assert cart["shipping_cost"] == "0.00"
    assert cart["total"] == "54.00"


def test_the_same_sku_again_adds_to_its_line(client, shirt):
    headers = {"X-Cart-Token": guest_cart(client)}
    client.post("/api/v1/cart/items", headers=headers, json={"sku": "SHIRT-M", "quantity": 2})

    cart = client.post("/api/v1/cart/items", headers=headers, json={"sku": "SHIRT-M", "quantity": 1}).json

    assert len(cart["items"]) == 1
    assert cart["items"][0]["quantity"] == 3


def test_more_than_available_is_409_naming_the_available_amount(client, shirt):
    headers = {"X-Cart-Token": guest_cart(client)}

    response = client.post("/api/v1/cart/items", headers=headers, json={"sku": "SHIRT-M", "quantity": 6})

    assert response.status_code == 409
    assert "available: 5" in response.json["detail"]
    assert client.get("/api/v1/cart", headers=headers).json["items"] == []


def test_reserved_units_are_not_available(client, db, shirt):
    shirt.inventory.reserved = 4
    db.session.commit()
    headers = {"X-Cart-Token": guest_cart(client)}

    response = client.post("/api/v1/cart/items", headers=headers, json={"sku": "SHIRT-M", "quantity": 2})

    assert response.status_code == 409
    assert "available: 1" in response.json["detail"]


@pytest.mark.parametrize("quantity", [0, -1, 100])
def test_quantity_outside_1_to_99_is_422(client, shirt, quantity):
    headers = {"X-Cart-Token": guest_cart(client)}

    response = add(client, headers, quantity=quantity)

    assert response.status_code == 422
    assert "quantity" in response.json["errors"]


def test_unknown_or_inactive_sku_is_404_on_add(client, db):
    inactive_product = stocked_variant(sku="OLD-PRODUCT")
    inactive_product.product.is_active = False
    inactive_variant = stocked_variant(sku="OLD-VARIANT")
    inactive_variant.is_active = False
    db.session.commit()
    headers = {"X-Cart-Token": guest_cart(client)}

    for sku in ("NOPE", "OLD-PRODUCT", "OLD-VARIANT"):
        response = client.post("/api/v1/cart/items", headers=headers, json={"sku": sku, "quantity": 1})
        assert response.status_code == 404, sku


def test_patch_sets_quantity_and_zero_removes(client, shirt):
    headers = {"X-Cart-Token": guest_cart(client)}
    line = client.post("/api/v1/cart/items", headers=headers, json={"sku": "SHIRT-M", "quantity": 1}).json
    line_id = line["items"][0]["id"]

    updated = client.patch(f"/api/v1/cart/items/{line_id}", headers=headers, json={"quantity": 4})
    too_many = client.patch(f"/api/v1/cart/items/{line_id}", headers=headers, json={"quantity": 6})
    removed = client.patch(f"/api/v1/cart/items/{line_id}", headers=headers, json={"quantity": 0})

    assert updated.status_code == 200 and updated.json["items"][0]["quantity"] == 4
    assert too_many.status_code == 409
    assert removed.status_code == 200 and removed.json["items"] == []


def test_delete_removes_a_line(client, shirt):
    headers = {"X-Cart-Token": guest_cart(client)}
    cart = client.post("/api/v1/cart/items", headers=headers, json={"sku": "SHIRT-M"}).json

    response = client.delete(f"/api/v1/cart/items/{cart['items'][0]['id']}", headers=headers)

    assert response.status_code == 200
    assert response.json["items"] == []


def test_a_signed_in_shopper_has_one_cart_without_a_token(client, shirt, auth):
    first = client.post("/api/v1/cart/items", headers=auth, json={"sku": "SHIRT-M"})
    second = client.get("/api/v1/cart", headers=auth)

    assert first.status_code == 201
    assert first.json["token"] is None
    assert "X-Cart-Token" not in first.headers
    assert second.json["id"] == first.json["id"]
    assert second.json["item_count"] == 1


@pytest.mark.parametrize("method", ["patch", "delete"])
def test_another_users_cart_line_is_404_and_untouched(client, shirt, auth, other_auth, method):
    theirs = add(client, other_auth, quantity=2).json
    line_id = theirs["items"][0]["id"]

    response = getattr(client, method)(f"/api/v1/cart/items/{line_id}", headers=auth, json={"quantity": 1})

    assert response.status_code == 404
    assert client.get("/api/v1/cart", headers=other_auth).json["items"][0]["quantity"] == 2


def test_a_guest_cannot_touch_another_guests_line(client, shirt):
    theirs = {"X-Cart-Token": guest_cart(client)}
    mine = {"X-Cart-Token": guest_cart(client)}
    line_id = add(client, theirs).json["items"][0]["id"]

    response = client.delete(f"/api/v1/cart/items/{line_id}", headers=mine)

    assert response.status_code == 404
    assert len(client.get("/api/v1/cart", headers=theirs).json["items"]) == 1


def test_a_users_cart_cannot_be_reached_as_a_guest_token(client, db, shirt, auth, customer):
    client.get("/api/v1/cart", headers=auth)
    user_cart = db.session.query(Cart).filter_by(user_id=customer.id).one()
    user_cart.token = "user-cart-token"
    db.session.commit()

    assert client.get("/api/v1/cart", headers={"X-Cart-Token": "user-cart-token"}).status_code == 404


def test_patch_without_any_cart_is_404(client, db):
    assert client.patch("/api/v1/cart/items/1", json={"quantity": 1}).status_code == 404


def test_login_merges_the_guest_cart_capped_by_stock(client, db, shirt):
    user = UserFactory(email="merge@example.com")
    db.session.commit()
    client.post("/api/v1/cart/items", headers=bearer(user), json={"sku": "SHIRT-M", "quantity": 3})
    token = guest_cart(client)
    client.post("/api/v1/cart/items", headers={"X-Cart-Token": token}, json={"sku": "SHIRT-M", "quantity": 4})

    response = client.post("/api/v1/auth/login", headers={"X-Cart-Token": token},
                           json={"email": user.email, "password": TEST_PASSWORD})

    assert response.status_code == 200
    cart = client.get("/api/v1/cart", headers=token_headers(response)).json
    assert cart["items"][0]["quantity"] == 5  # 3 + 4, capped by the 5 on hand
    # the guest cart is gone; its token (one we issued) names an empty cart again
    assert db.session.scalar(db.select(Cart).where(Cart.token == token)) is None
    assert client.get("/api/v1/cart", headers={"X-Cart-Token": token}).json["items"] == []


def test_signup_merges_the_guest_cart(client, shirt):
    token = guest_cart(client)
    client.post("/api/v1/cart/items", headers={"X-Cart-Token": token}, json={"sku": "SHIRT-M", "quantity": 2})

    response = client.post("/api/v1/auth/signup", headers={"X-Cart-Token": token},
                           json={"email": "fresh@example.com", "password": "long-enough-pw"})

    cart = client.get("/api/v1/cart", headers=token_headers(response)).json
    assert [(line["sku"], line["quantity"]) for line in cart["items"]] == [("SHIRT-M", 2)]
