"""Stock under real concurrency on PostgreSQL: separate connections, real commits."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
from sqlalchemy import select

from ecom.actor import Actor
from ecom.commerce.models import Order
from ecom.errors import OutOfStock
from ecom.extensions import db
from ecom.inventory import services as stock
from ecom.inventory.models import Inventory
from tests.factories import UserFactory, VariantFactory, make_order

CLERK = Actor("clerk@example.com", None)


def _run_in_threads(app, count, work):
    """Run ``work(i)`` in ``count`` threads that start together, each with its own session."""
    barrier = threading.Barrier(count)

    def worker(i):
        with app.app_context():
            barrier.wait()
            try:
                return work(i)
            finally:
                db.session.remove()

    with ThreadPoolExecutor(max_workers=count) as pool:
        return list(pool.map(worker, range(count)))


def _stocked(quantity: int):
    variant = VariantFactory()
    stock.receive_stock(variant, quantity, actor=CLERK)
    return variant


def _reserve(order_id: int) -> str:
    try:
        order = db.session.get(Order, order_id)
        stock.reserve_stock(order, ttl_seconds=900)
        db.session.commit()
        return "reserved"
    except OutOfStock:
        db.session.rollback()
        return "out_of_stock"
    except Exception as exc:  # a deadlock or lock error would land here
        db.session.rollback()
        return f"error: {type(exc).__name__}: {exc}"


def _inventory(variant_id: int) -> Inventory:
    db.session.expire_all()
    return db.session.scalar(select(Inventory).where(Inventory.variant_id == variant_id))


def test_fifty_shoppers_race_for_ten_units(postgres, committed_db):
    variant = _stocked(10)
    user = UserFactory()
    order_ids = [make_order(user, [(variant, 1)]).id for _ in range(50)]
    db.session.commit()

    outcomes = _run_in_threads(postgres, 50, lambda i: _reserve(order_ids[i]))

    assert outcomes.count("reserved") == 10
    assert outcomes.count("out_of_stock") == 40
    assert [o for o in outcomes if o.startswith("error")] == []
    inventory = _inventory(variant.id)
    assert (inventory.quantity, inventory.reserved) == (10, 10)
    assert 0 <= inventory.reserved <= inventory.quantity


def test_opposite_line_orders_never_deadlock(postgres, committed_db):
    a, b = _stocked(100), _stocked(100)
    user = UserFactory()
    # Half the orders list a then b, half b then a: naive locking would deadlock.
    order_ids = [
        make_order(user, [(a, 1), (b, 1)] if i % 2 else [(b, 1), (a, 1)]).id for i in range(40)
    ]
    db.session.commit()

    outcomes = _run_in_threads(postgres, 40, lambda i: _reserve(order_ids[i]))

    assert outcomes == ["reserved"] * 40
    assert _inventory(a.id).reserved == 40
    assert _inventory(b.id).reserved == 40


def test_commit_and_release_racing_twice_change_stock_once(postgres, committed_db):
    variant = _stocked(10)
    user = UserFactory()
    paid, cancelled = make_order(user, [(variant, 3)]), make_order(user, [(variant, 2)])
    stock.reserve_stock(paid, ttl_seconds=900)
    stock.reserve_stock(cancelled, ttl_seconds=900)
    db.session.commit()
    paid_id, cancelled_id = paid.id, cancelled.id

    def work(i):
        order = db.session.get(Order, paid_id if i % 2 else cancelled_id)
        # The order row is the serialisation point, as in the checkout flow.
        db.session.execute(select(Order).where(Order.id == order.id).with_for_update())
        if i % 2:
            stock.commit_stock(order)
        else:
            stock.release_stock(order)
        db.session.commit()

    _run_in_threads(postgres, 4, work)

    inventory = _inventory(variant.id)
    assert (inventory.quantity, inventory.reserved) == (7, 0)
    assert stock.ledger_total(variant.id) == inventory.quantity


@pytest.mark.parametrize("threads", [20])
def test_concurrent_adjustments_keep_the_ledger_equal_to_quantity(postgres, committed_db, threads):
    variant = _stocked(50)
    db.session.commit()
    variant_id = variant.id

    def work(i):
        v = db.session.get(type(variant), variant_id)
        stock.adjust_stock(v, 1 if i % 2 else -1, "correction", actor=CLERK)
        db.session.commit()

    _run_in_threads(postgres, threads, work)

    assert _inventory(variant_id).quantity == 50
    assert stock.ledger_total(variant_id) == 50
