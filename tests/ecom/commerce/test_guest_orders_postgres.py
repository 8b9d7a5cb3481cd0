"""Guest orders under concurrency on PostgreSQL: the per-address cap on open unpaid guest
orders holds (checkouts from one address, each of its own cart, take their turn); one
Idempotency-Key of a guest cart places one order; one claim wins."""

from __future__ import annotations

from collections import Counter

import pytest
from sqlalchemy import func, select

from ecom.commerce.cart import new_guest_token
from ecom.commerce.models import Cart, CartItem, Order
from ecom.commerce.status import OrderStatus
from ecom.inventory.models import Inventory
from tests.ecom.commerce.test_races_postgres import INTENT, fresh, run_together
from tests.factories import stocked_variant

ADDRESS = {"full_name": "Grace Guest", "street": "1 Main St", "city": "Springfield", "state": "IL",
           "postal_code": "62701", "country": "US"}
CAP = 2


def guest_carts(app, db, variant, count: int) -> list[str]:
    """``count`` stored guest carts of one unit of ``variant`` each; their tokens."""
    tokens = []
    for _ in range(count):
        with app.test_request_context():
            token = new_guest_token()
        cart = Cart(token=token)
        cart.items.append(CartItem(product_id=variant.product_id, variant_id=variant.id, sku=variant.sku,
                                   quantity=1, price=variant.price))
        db.session.add(cart)
        tokens.append(token)
    db.session.commit()
    return tokens


@pytest.mark.parametrize("round_", range(3))
def test_concurrent_guest_checkouts_from_one_address_stop_at_the_cap(postgres, committed_db, monkeypatch,
                                                                     round_):
    # given six guest carts of one unit each, all from one address
    db = committed_db
    monkeypatch.setitem(postgres.config, "MAX_OPEN_GUEST_ORDERS_PER_IP", CAP)
    variant = stocked_variant(quantity=20)
    tokens = guest_carts(postgres, db, variant, 6)

    # when they all check out at once
    def checkout(token):
        body = {"email": "g@example.com", "shipping_address": ADDRESS}
        return lambda client: client.post(INTENT, json=body, headers={"X-Cart-Token": token},
                                          environ_base={"REMOTE_ADDR": "198.51.100.20"})

    results = run_together(postgres, [checkout(token) for token in tokens])

    # then exactly CAP orders were placed, holding only their units; the rest were refused
    assert Counter(getattr(r, "status_code", repr(r)) for r in results) == Counter({201: CAP, 409: 6 - CAP})
    placed = fresh(db, select(func.count()).select_from(Order).where(Order.status == OrderStatus.CREATED))
    assert placed == CAP
    assert fresh(db, select(Inventory.reserved).where(Inventory.variant_id == variant.id)) == CAP


def test_one_idempotency_key_of_a_guest_cart_places_one_order_when_sent_at_once(postgres, committed_db):
    db = committed_db
    variant = stocked_variant(quantity=20)
    [token] = guest_carts(postgres, db, variant, 1)
    body = {"email": "g@example.com", "shipping_address": ADDRESS}
    headers = {"X-Cart-Token": token, "Idempotency-Key": "same-key"}
    results = run_together(postgres, [lambda c: c.post(INTENT, json=body, headers=headers) for _ in range(4)])
    statuses = Counter(getattr(r, "status_code", repr(r)) for r in results)
    # one placed it; the others got its answer (or were told it is still running: 409)
    assert statuses[201] >= 1 and set(statuses) <= {201, 409}
    answers = {r.get_json()["order"]["order_number"] for r in results if r.status_code == 201}
    tokens_shown = {r.get_json()["order_token"] for r in results if r.status_code == 201}
    assert len(answers) == 1 and len(tokens_shown) == 1
    assert fresh(db, select(func.count()).select_from(Order)) == 1


def test_two_shoppers_claiming_one_guest_order_at_once_one_wins(postgres, committed_db):
    from tests.ecom.commerce.test_races_postgres import bearer
    from tests.factories import UserFactory

    db = committed_db
    variant = stocked_variant(quantity=20)
    [token] = guest_carts(postgres, db, variant, 1)
    placed = postgres.test_client().post(INTENT, json={"email": "g@example.com", "shipping_address": ADDRESS},
                                         headers={"X-Cart-Token": token}).get_json()
    shoppers = [UserFactory() for _ in range(4)]
    db.session.commit()
    number, order_token = placed["order"]["order_number"], placed["order_token"]

    def claim(user):
        headers = {**bearer(user), "X-Order-Token": order_token}
        return lambda c: c.post(f"/api/v1/orders/{number}/claim", headers=headers)

    results = run_together(postgres, [claim(user) for user in shoppers])
    assert Counter(getattr(r, "status_code", repr(r)) for r in results) == Counter({200: 1, 409: 3})
    winner = next(user for user, r in zip(shoppers, results, strict=True) if r.status_code == 200)
    assert fresh(db, select(Order.user_id).where(Order.order_number == number)) == winner.id
