"""Stock locations under real concurrency on PostgreSQL: separate connections, real commits."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from ecom.commerce.models import Order
from ecom.errors import OutOfStock
from ecom.extensions import db
from ecom.inventory import services as stock
from ecom.inventory.models import Inventory, ReservationStatus, StockReservation
from ecom.stockroom import services as stockroom
from ecom.stockroom.models import PurchaseOrder, StockTransfer
from tests.ecom.inventory.test_concurrency import _run_in_threads
from tests.factories import UserFactory, VariantFactory, make_order
from tests.locations_support import CLERK, place, warehouse


def _reserve(order_id: int) -> str:
    try:
        stock.reserve_stock(db.session.get(Order, order_id), ttl_seconds=900)
        db.session.commit()
        return "reserved"
    except OutOfStock:
        db.session.rollback()
        return "out_of_stock"
    except Exception as exc:  # a deadlock or lock error would land here
        db.session.rollback()
        return f"error: {type(exc).__name__}: {exc}"


def _rows(variant_id: int) -> dict[int, tuple[int, int]]:
    db.session.expire_all()
    return {row.location_id: (row.quantity, row.reserved) for row in db.session.scalars(
        select(Inventory).where(Inventory.variant_id == variant_id))}


def _active_held(variant_id: int) -> dict[int, int]:
    return dict(db.session.execute(
        select(StockReservation.location_id, func.sum(StockReservation.quantity))
        .where(StockReservation.variant_id == variant_id, StockReservation.status == ReservationStatus.ACTIVE)
        .group_by(StockReservation.location_id)).all())


def test_fifty_shoppers_race_for_ten_units_over_three_locations(postgres, committed_db):
    # given 10 units spread 3 / 3 / 4 over three warehouses, and 50 orders of 2 units each
    locations = [warehouse(1), warehouse(2), warehouse(3)]
    variant = VariantFactory()
    for location, units in zip(locations, (3, 3, 4), strict=True):
        place(variant, location, units)
    user = UserFactory()
    order_ids = [make_order(user, [(variant, 2)]).id for _ in range(50)]
    db.session.commit()

    # when they all reserve at once
    outcomes = _run_in_threads(postgres, 50, lambda i: _reserve(order_ids[i]))

    # then exactly 10 units are held, by 5 orders, no location beyond its stock, no deadlock
    assert [o for o in outcomes if o.startswith("error")] == []
    assert outcomes.count("reserved") == 5 and outcomes.count("out_of_stock") == 45
    rows = _rows(variant.id)
    assert sum(reserved for _, reserved in rows.values()) == 10
    assert all(0 <= reserved <= quantity for quantity, reserved in rows.values())
    assert _active_held(variant.id) == {loc: reserved for loc, (_, reserved) in rows.items()}
    # and with 3 units per location, some 2-unit line had to be split over two locations
    per_order = db.session.execute(
        select(StockReservation.order_id, func.count()).group_by(StockReservation.order_id)).all()
    assert any(count == 2 for _, count in per_order)


def test_opposite_line_orders_over_locations_never_deadlock(postgres, committed_db):
    w1, w2 = warehouse(1), warehouse(2)
    a, b = VariantFactory(), VariantFactory()
    for variant in (a, b):
        place(variant, w1, 30)
        place(variant, w2, 30)
    user = UserFactory()
    # 40 orders of 2 units of each, half listing a first: every one splits once W1 runs low
    order_ids = [make_order(user, [(a, 2), (b, 2)] if i % 2 else [(b, 2), (a, 2)]).id for i in range(40)]
    db.session.commit()

    outcomes = _run_in_threads(postgres, 40, lambda i: _reserve(order_ids[i]))

    assert outcomes.count("reserved") == 30 and outcomes.count("out_of_stock") == 10, outcomes
    for variant in (a, b):
        assert _rows(variant.id) == {w1.id: (30, 30), w2.id: (30, 30)}


def test_transfers_and_receiving_racing_with_checkouts_keep_the_ledger_equal_to_on_hand(
        postgres, committed_db):
    # given stock at two warehouses, an empty third, five draft transfers W1 -> W3 and five
    # purchase orders into W2
    w1, w2, w3 = warehouse(1), warehouse(2), warehouse(3)
    variant = VariantFactory(sku="RACE-1")
    place(variant, w1, 20)
    place(variant, w2, 20)
    user = UserFactory()
    order_ids = [make_order(user, [(variant, 1)]).id for _ in range(30)]
    transfer_ids, po_ids = [], []
    for _ in range(5):
        transfer = stockroom.create_transfer(w1, w3, actor=CLERK)
        stockroom.add_transfer_line(transfer, "RACE-1", 2, actor=CLERK)
        transfer_ids.append(transfer.id)
        purchase_order = stockroom.create_purchase_order(w2, "Acme", actor=CLERK)
        stockroom.add_purchase_order_line(purchase_order, "RACE-1", 3, actor=CLERK)
        stockroom.place_purchase_order(purchase_order, actor=CLERK)
        po_ids.append(purchase_order.id)
    db.session.commit()

    def work(i):
        try:
            if i < 30:
                return _reserve(order_ids[i])
            if i < 35:
                transfer = db.session.get(StockTransfer, transfer_ids[i - 30])
                stockroom.send_transfer(transfer, actor=CLERK)
                db.session.commit()
                stockroom.receive_transfer(transfer, actor=CLERK)
                db.session.commit()
                return "transferred"
            purchase_order = db.session.get(PurchaseOrder, po_ids[i - 35])
            stockroom.receive_purchase_order(purchase_order, {"RACE-1": 3}, actor=CLERK)
            db.session.commit()
            return "received"
        except OutOfStock:
            db.session.rollback()
            return "out_of_stock"
        except Exception as exc:
            db.session.rollback()
            return f"error: {type(exc).__name__}: {exc}"

    # when checkouts, transfers and deliveries run together
    outcomes = _run_in_threads(postgres, 40, work)

    # then nothing failed but for want of stock, and at every location the ledger sums to on hand
    assert [o for o in outcomes if o.startswith("error")] == []
    assert outcomes.count("received") == 5
    rows = _rows(variant.id)
    for location in (w1, w2, w3):
        quantity, reserved = rows.get(location.id, (0, 0))
        assert stock.ledger_total(variant.id, location.id) == quantity
        assert 0 <= reserved <= quantity
    assert _active_held(variant.id) == {loc: r for loc, (_, r) in rows.items() if r}
    # every unit is somewhere: 40 on hand + 15 received, transfers only moved them
    moved = 2 * outcomes.count("transferred")
    assert sum(q for q, _ in rows.values()) == 55
    assert rows.get(w3.id, (0, 0))[0] == moved
    assert outcomes.count("reserved") == 30  # 55 units on hand: every checkout fitted


@pytest.mark.parametrize("senders", [6])
def test_two_clerks_sending_one_transfer_move_its_units_once(postgres, committed_db, senders):
    w1, w2 = warehouse(1), warehouse(2)
    variant = VariantFactory(sku="ONCE-1")
    place(variant, w1, 10)
    transfer = stockroom.create_transfer(w1, w2, actor=CLERK)
    stockroom.add_transfer_line(transfer, "ONCE-1", 4, actor=CLERK)
    db.session.commit()
    transfer_id = transfer.id

    def work(_):
        try:
            stockroom.send_transfer(db.session.get(StockTransfer, transfer_id), actor=CLERK)
            db.session.commit()
            return "sent"
        except Exception as exc:
            db.session.rollback()
            return type(exc).__name__

    outcomes = _run_in_threads(postgres, senders, work)

    assert outcomes.count("sent") == 1 and outcomes.count("InvalidTransition") == senders - 1
    assert _rows(variant.id)[w1.id] == (6, 0)
    assert stock.ledger_total(variant.id, w1.id) == 6
