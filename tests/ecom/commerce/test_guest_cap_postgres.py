"""The per-address cap on open unpaid guest orders holds under concurrency on PostgreSQL:
guest checkouts from one address, each of its own cart, take their turn."""

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


@pytest.mark.parametrize("round_", range(3))
def test_concurrent_guest_checkouts_from_one_address_stop_at_the_cap(postgres, committed_db, monkeypatch,
                                                                     round_):
    # given six guest carts of one unit each, all from one address
    db = committed_db
    monkeypatch.setitem(postgres.config, "MAX_OPEN_GUEST_ORDERS_PER_IP", CAP)
    variant = stocked_variant(quantity=20)
    tokens = []
    for _ in range(6):
        with postgres.test_request_context():
            token = new_guest_token()
        cart = Cart(token=token)
        cart.items.append(CartItem(product_id=variant.product_id, variant_id=variant.id, sku=variant.sku,
                                   quantity=1, price=variant.price))
        db.session.add(cart)
        tokens.append(token)
    db.session.commit()

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
