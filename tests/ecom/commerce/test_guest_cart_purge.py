"""Abandoned guest carts are purged; shoppers' carts and live guest carts stay."""

from __future__ import annotations

from datetime import timedelta

from ecom.commerce.cart import add_item, create_guest_cart, get_or_create_user_cart, purge_guest_carts
from ecom.commerce.models import Cart, CartItem
from ecom.db import utcnow
from tests.factories import UserFactory, stocked_variant


def aged(cart: Cart, days: float, *, lines_too: bool = True) -> Cart:
    then = utcnow() - timedelta(days=days)
    cart.updated_at = cart.created_at = then
    if lines_too:
        for line in cart.items:
            line.updated_at = line.created_at = then
    return cart


def remaining(db) -> set[int]:
    db.session.expire_all()
    return set(db.session.scalars(db.select(Cart.id)))


def test_empty_guest_carts_go_after_a_day_idle_filled_ones_after_thirty(db):
    variant = stocked_variant(quantity=20)
    fresh_empty = create_guest_cart()
    aged(create_guest_cart(), 2)  # an empty one, two days old
    week_old_filled = create_guest_cart()
    add_item(week_old_filled, variant.sku, 1)
    aged(week_old_filled, 7)
    month_old_filled = create_guest_cart()
    add_item(month_old_filled, variant.sku, 2)
    aged(month_old_filled, 31)
    db.session.flush()

    assert purge_guest_carts() == 2

    assert remaining(db) == {fresh_empty.id, week_old_filled.id}
    assert db.session.scalar(db.select(db.func.count()).select_from(CartItem)) == 1


def test_a_recently_changed_line_keeps_an_old_guest_cart(db):
    variant = stocked_variant(quantity=20)
    cart = create_guest_cart()
    add_item(cart, variant.sku, 1)
    aged(cart, 40, lines_too=False)  # the cart row is old, its line was touched today
    db.session.flush()

    assert purge_guest_carts() == 0
    assert remaining(db) == {cart.id}


def test_shoppers_carts_are_never_purged(db):
    cart = aged(get_or_create_user_cart(UserFactory()), 400)
    db.session.flush()

    assert purge_guest_carts() == 0
    assert remaining(db) == {cart.id}


def test_purges_in_batches_until_none_is_left(db):
    for _ in range(5):
        aged(create_guest_cart(), 3)
    db.session.flush()

    assert purge_guest_carts(batch=2) == 5
    assert remaining(db) == set()


def test_a_purged_token_names_an_empty_cart_again(client, db):
    token = client.get("/api/v1/cart").json["token"]
    aged(create_guest_cart(token), 2)
    db.session.commit()
    purge_guest_carts()
    db.session.commit()

    response = client.get("/api/v1/cart", headers={"X-Cart-Token": token})

    assert response.status_code == 200 and response.json["items"] == [] and response.json["id"] is None
    assert db.session.scalar(db.select(Cart).where(Cart.token == token)) is None


def test_purge_command_reports_the_count(app, db):
    aged(create_guest_cart(), 2)
    db.session.commit()

    result = app.test_cli_runner().invoke(args=["purge-guest-carts"])

    assert result.exit_code == 0, result.output
    assert "purged 1 guest cart(s)" in result.output
