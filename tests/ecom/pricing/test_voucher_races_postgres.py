"""Voucher limits under concurrency on PostgreSQL: real commits, one connection per thread."""

from __future__ import annotations

import threading
from collections import Counter
from decimal import Decimal

from sqlalchemy import func, select

from ecom.commerce.models import Order
from ecom.commerce.status import OrderStatus
from ecom.errors import EcomError
from ecom.extensions import db as _db
from ecom.pricing.engine import AppliedPromotion, Quote
from ecom.pricing.models import Promotion, PromotionUse
from ecom.pricing.quote import Customer
from ecom.pricing.uses import claim_uses
from ecom.unit_of_work import unit_of_work
from tests.commerce_support import fill_cart
from tests.ecom.commerce.test_races_postgres import bearer, run_together
from tests.factories import UserFactory, make_order, stocked_variant
from tests.pricing_support import promotion, us_shop

_ZERO = Decimal("0.00")
INTENT = "/api/v1/checkout/payment-intent"
US_ADDRESS = {
    "full_name": "Sam Shopper",
    "street": "1 Main Street",
    "city": "Springfield",
    "state": "IL",
    "postal_code": "62701",
    "country": "US",
}


def active_uses(db, promotion_id: int) -> int:
    db.session.expire_all()
    return db.session.scalar(
        select(func.count(PromotionUse.id)).where(
            PromotionUse.promotion_id == promotion_id, PromotionUse.released_at.is_(None)
        )
    )


def test_fifty_checkouts_race_for_ten_uses_and_exactly_ten_orders_get_them(postgres, committed_db):
    # given a voucher with 10 uses and 50 shoppers, each with a cart, on separate connections
    db, app = committed_db, postgres
    us_shop()
    voucher = promotion("Launch", code="LAUNCH", value="10", usage_limit=10)
    variant = stocked_variant(quantity=500, price="20.00")
    shoppers = [UserFactory() for _ in range(50)]
    for shopper in shoppers:
        fill_cart(shopper, [(variant, 1)])
    db.session.commit()
    headers = [bearer(shopper) for shopper in shoppers]
    body = {"shipping_address": US_ADDRESS, "voucher_code": "launch"}

    # when all 50 pay at the same moment
    results = run_together(app, [lambda c, h=h: c.post(INTENT, json=body, headers=h) for h in headers])

    # then exactly 10 orders carry the voucher; the other 40 heard why, and nothing of theirs stayed
    statuses = Counter(getattr(r, "status_code", repr(r)) for r in results)
    assert statuses == {201: 10, 422: 40}, statuses
    refusals = {r.get_json()["errors"]["voucher_code"][0] for r in results if r.status_code == 422}
    assert refusals == {"This code has been used up."}
    db.session.expire_all()
    assert db.session.scalar(select(func.count(Order.id)).where(Order.voucher_code == "LAUNCH")) == 10
    assert db.session.scalar(select(func.count(Order.id))) == 10
    assert db.session.scalar(select(Promotion.times_used).where(Promotion.id == voucher.id)) == 10
    assert active_uses(db, voucher.id) == 10
    print(f"\nvoucher race: {dict(statuses)}")


def test_a_cancelled_order_gives_its_use_to_the_next_racer(postgres, committed_db):
    db, app = committed_db, postgres
    us_shop()
    voucher = promotion("One", code="ONE", usage_limit=1)
    variant = stocked_variant(quantity=50, price="20.00")
    first, *others = [UserFactory() for _ in range(6)]
    for shopper in (first, *others):
        fill_cart(shopper, [(variant, 1)])
    db.session.commit()
    body = {"shipping_address": US_ADDRESS, "voucher_code": "ONE"}
    placed = app.test_client().post(INTENT, json=body, headers=bearer(first)).get_json()["order"]

    # when its order is cancelled while five others try the code
    number, mine = placed["order_number"], bearer(first)
    calls = [lambda c: c.post(f"/api/v1/orders/{number}/cancel", headers=mine)]
    calls += [lambda c, h=bearer(u): c.post(INTENT, json=body, headers=h) for u in others]
    results = run_together(app, calls)

    # then the use is held by at most one order at any time, and never lost
    assert results[0].status_code == 200
    winners = [r for r in results[1:] if r.status_code == 201]
    assert len(winners) <= 1 and all(r.status_code in (201, 422) for r in results[1:])
    assert active_uses(db, voucher.id) == len(winners)
    assert db.session.scalar(select(Promotion.times_used).where(Promotion.id == voucher.id)) == len(winners)


def test_a_per_customer_limit_holds_under_concurrent_claims(postgres, committed_db):
    # given one customer with 10 orders being placed at once (as a guest's email would, where no
    # cart lock lines them up), and a voucher they may use twice
    db, app = committed_db, postgres
    voucher = promotion("Twice", code="TWICE", per_customer_limit=2)
    customer = UserFactory()
    orders = [make_order(customer, [], status=OrderStatus.CREATED) for _ in range(10)]
    db.session.commit()
    applied = AppliedPromotion(voucher.id, voucher.name, "TWICE", discount=_ZERO, limited=True)
    quote = Quote(
        lines=(),
        subtotal=_ZERO,
        discount_total=_ZERO,
        shipping_method=None,
        shipping_cost=_ZERO,
        shipping_tax=_ZERO,
        tax_total=_ZERO,
        total=_ZERO,
        currency="usd",
        prices_include_tax=False,
        voucher=applied,
        promotions=(applied,),
        shipping_methods=(),
    )
    who = Customer(user_id=customer.id, email=customer.email)
    barrier = threading.Barrier(len(orders))
    outcomes: list[str] = []

    def claim(order_id: int):
        with app.app_context():
            barrier.wait()
            try:
                with unit_of_work():
                    claim_uses(order_id, quote, customer=who)
                outcomes.append("taken")
            except EcomError as exc:
                outcomes.append(exc.reason if hasattr(exc, "reason") else type(exc).__name__)
            finally:
                _db.session.remove()

    threads = [threading.Thread(target=claim, args=(order.id,)) for order in orders]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)

    # then exactly two claims succeed
    assert Counter(outcomes) == {"taken": 2, "customer_limit": 8}
    assert active_uses(db, voucher.id) == 2
