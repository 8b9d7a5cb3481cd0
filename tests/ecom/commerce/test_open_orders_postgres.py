"""Issue 18, point 5 on PostgreSQL: concurrent payment intents on one cart never leave two
open unpaid orders (the cart's row lock puts them one after the other)."""

from __future__ import annotations

from collections import Counter

import pytest
from sqlalchemy import func, select

from ecom.commerce.models import Order
from ecom.commerce.status import OrderStatus
from ecom.inventory.models import Inventory
from tests.commerce_support import ADDRESS, fill_cart
from tests.ecom.commerce.test_races_postgres import INTENT, bearer, fresh, run_together
from tests.factories import UserFactory, stocked_variant


@pytest.mark.parametrize("round_", range(3))
def test_concurrent_payment_intents_on_one_cart_leave_one_open_order(postgres, committed_db, round_):
    # given a shopper's cart of 2 units
    db = committed_db
    variant = stocked_variant(quantity=10)
    shopper = UserFactory()
    fill_cart(shopper, [(variant, 2)])
    db.session.commit()
    headers = bearer(shopper)
    # when four payment intents for it are opened at once
    results = run_together(postgres, [
        (lambda c: c.post(INTENT, json={"shipping_address": ADDRESS}, headers=headers)) for _ in range(4)
    ])
    # then each succeeded in turn, and exactly one order is open, holding its 2 units
    assert Counter(getattr(r, "status_code", repr(r)) for r in results) == Counter({201: 4})
    open_orders = fresh(db, select(func.count()).select_from(Order)
                        .where(Order.user_id == shopper.id, Order.status == OrderStatus.CREATED))
    assert open_orders == 1
    inventory = fresh(db, select(Inventory).where(Inventory.variant_id == variant.id))
    assert (inventory.quantity, inventory.reserved) == (10, 2)
