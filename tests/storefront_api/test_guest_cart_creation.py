"""Issue 18, point 15: reading the cart stores nothing for a guest; the guest cart is stored
at its first write, under the token the read handed out (the contract's token flow kept)."""

from __future__ import annotations

import pytest

from ecom.commerce import cart as carts
from ecom.commerce.models import Cart, CartItem
from tests.commerce_support import count
from tests.factories import stocked_variant


@pytest.fixture
def mug(db):
    variant = stocked_variant(quantity=5, price="8.00", sku="MUG")
    db.session.commit()
    return variant


def test_token_less_reads_store_no_cart(client, db):
    # when a guest reads the cart a hundred times without a token
    answers = [client.get("/api/v1/cart") for _ in range(100)]
    # then each got an empty cart and a token, and no cart row exists
    assert all(a.status_code == 200 and a.json["items"] == [] for a in answers)
    assert all(a.json["token"] and a.headers["X-Cart-Token"] == a.json["token"] for a in answers)
    assert count(Cart) == 0


def test_the_first_write_stores_the_cart_under_the_token_read(client, db, mug):
    # given a token handed out by a read
    token = client.get("/api/v1/cart").json["token"]
    headers = {"X-Cart-Token": token}
    # when the guest adds a line, then reads again
    added = client.post("/api/v1/cart/items", headers=headers, json={"sku": "MUG", "quantity": 2})
    again = client.get("/api/v1/cart", headers=headers)
    # then one cart holds it under that token
    assert added.status_code == 201 and added.json["token"] == token
    assert again.json["id"] == added.json["id"] is not None
    assert [line["sku"] for line in again.json["items"]] == ["MUG"]
    assert count(Cart) == 1 and count(CartItem) == 1


def test_a_token_we_never_issued_is_still_404_and_stores_nothing(client, db, mug):
    forged = carts.new_guest_token().split(".")[0] + "." + "A" * 22

    for response in (client.get("/api/v1/cart", headers={"X-Cart-Token": forged}),
                     client.post("/api/v1/cart/items", headers={"X-Cart-Token": forged},
                                 json={"sku": "MUG", "quantity": 1})):
        assert response.status_code == 404
    assert count(Cart) == 0


def test_a_write_without_a_token_stores_a_cart_and_hands_out_its_token(client, db, mug):
    response = client.post("/api/v1/cart/items", json={"sku": "MUG", "quantity": 1})

    assert response.status_code == 201
    assert carts.issued_token(response.headers["X-Cart-Token"])
    assert count(Cart) == 1
