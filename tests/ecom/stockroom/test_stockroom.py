"""Transfers and purchase orders: the units they move, the ledger they write, the input
they refuse (with nothing written)."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from ecom.audit.models import AuditLog
from ecom.errors import Conflict, InvalidTransition, NotFound, OutOfStock, ValidationFailed
from ecom.extensions import db
from ecom.inventory import services as stock
from ecom.inventory.models import StockMovement, available_units
from ecom.stockroom import services as stockroom
from ecom.stockroom.status import PURCHASE_ORDER_ALLOWED, TRANSFER_ALLOWED
from tests.factories import UserFactory, VariantFactory, make_order
from tests.locations_support import CLERK, place, row_at, warehouse


def _movements(variant) -> list[tuple[int, int, str]]:
    return [(m.location_id, m.delta, m.reason) for m in db.session.scalars(
        select(StockMovement).where(StockMovement.variant_id == variant.id).order_by(StockMovement.id))]


def _ledger_agrees(variant, *locations) -> bool:
    def on_hand(location):
        row = row_at(variant, location)
        return row.quantity if row else 0

    return all(stock.ledger_total(variant.id, loc.id) == on_hand(loc) for loc in locations)


@pytest.fixture
def two(db):
    return warehouse(1, code="FROM"), warehouse(2, code="TO")


def test_a_transfer_takes_units_out_counts_them_nowhere_in_transit_and_puts_them_in(two):
    source, destination = two
    variant = VariantFactory(sku="T-1")
    place(variant, source, 10)
    transfer = stockroom.create_transfer(source, destination, actor=CLERK, note="restock")
    # scanned twice: one line of 4
    stockroom.add_transfer_line(transfer, "T-1", 3, actor=CLERK)
    stockroom.add_transfer_line(transfer, " T-1 ", "1", actor=CLERK)
    assert [(line.variant_id, line.quantity) for line in transfer.lines] == [(variant.id, 4)]

    stockroom.send_transfer(transfer, actor=CLERK)
    assert transfer.status == "in_transit" and transfer.sent_at
    assert row_at(variant, source).quantity == 6 and row_at(variant, destination) is None
    assert available_units(db.session.get(type(variant), variant.id)) == 6  # in transit: nowhere

    stockroom.receive_transfer(transfer, actor=CLERK)
    assert transfer.status == "received" and transfer.received_at
    assert (row_at(variant, source).quantity, row_at(variant, destination).quantity) == (6, 4)
    assert _movements(variant)[1:] == [(source.id, -4, "transfer_out"), (destination.id, 4, "transfer_in")]
    assert _ledger_agrees(variant, source, destination)
    assert db.session.scalar(select(func.count()).select_from(AuditLog)
                             .where(AuditLog.entity == "stock_transfers")) >= 4


def test_transferring_more_than_is_available_is_refused_and_nothing_moves(two):
    source, destination = two
    variant = VariantFactory(sku="T-2")
    place(variant, source, 5)
    # 2 of the 5 are held for an unpaid order: 3 can travel
    stock.reserve_stock(make_order(UserFactory(), [(variant, 2)]), ttl_seconds=60)
    transfer = stockroom.create_transfer(source, destination, actor=CLERK)
    stockroom.add_transfer_line(transfer, "T-2", 4, actor=CLERK)
    before = _movements(variant)

    with pytest.raises(OutOfStock) as caught:
        stockroom.send_transfer(transfer, actor=CLERK)

    assert caught.value.shortages == {"T-2": 3}
    db.session.refresh(transfer)
    assert transfer.status == "draft" and _movements(variant) == before
    assert (row_at(variant, source).quantity, row_at(variant, source).reserved) == (5, 2)


@pytest.mark.parametrize("quantity", [0, -3, "0", "-1", "abc", 1.5, None, True, 10**9])
def test_bad_quantities_are_refused_on_every_scanned_line(two, quantity):
    source, destination = two
    variant = VariantFactory(sku="T-3")
    place(variant, source, 5)
    transfer = stockroom.create_transfer(source, destination, actor=CLERK)
    purchase_order = stockroom.create_purchase_order(destination, "Acme", actor=CLERK)
    with pytest.raises(ValidationFailed):
        stockroom.add_transfer_line(transfer, "T-3", quantity, actor=CLERK)
    with pytest.raises(ValidationFailed):
        stockroom.add_purchase_order_line(purchase_order, "T-3", quantity, actor=CLERK)
    assert transfer.lines == [] and purchase_order.lines == []


def test_unknown_skus_and_odd_documents_are_clear_errors(two):
    source, destination = two
    with pytest.raises(ValidationFailed):
        stockroom.create_transfer(source, source, actor=CLERK)
    with pytest.raises(ValidationFailed):
        stockroom.create_transfer(source, None, actor=CLERK)
    with pytest.raises(ValidationFailed):
        stockroom.create_purchase_order(destination, "  ", actor=CLERK)
    transfer = stockroom.create_transfer(source, destination, actor=CLERK)
    with pytest.raises(NotFound):
        stockroom.add_transfer_line(transfer, "NO-SUCH-SKU", 1, actor=CLERK)
    with pytest.raises(ValidationFailed):
        stockroom.send_transfer(transfer, actor=CLERK)  # no lines
    stockroom.cancel_transfer(transfer, actor=CLERK)
    with pytest.raises(Conflict):
        stockroom.add_transfer_line(transfer, VariantFactory().sku, 1, actor=CLERK)
    with pytest.raises(InvalidTransition):
        stockroom.send_transfer(transfer, actor=CLERK)


def test_a_purchase_order_receives_partial_then_more_than_ordered_with_a_warning(two):
    _, destination = two
    a, b = VariantFactory(sku="PO-A"), VariantFactory(sku="PO-B")
    purchase_order = stockroom.create_purchase_order(destination, "Acme Ltd", actor=CLERK)
    stockroom.add_purchase_order_line(purchase_order, "PO-A", 10, actor=CLERK)
    stockroom.add_purchase_order_line(purchase_order, "PO-B", 5, actor=CLERK)
    with pytest.raises(InvalidTransition):
        stockroom.receive_purchase_order(purchase_order, {"PO-A": 1}, actor=CLERK)  # still a draft
    stockroom.place_purchase_order(purchase_order, actor=CLERK)

    first = stockroom.receive_purchase_order(purchase_order, {"PO-A": 4}, actor=CLERK)
    assert purchase_order.status == "partially_received" and first.warnings == []
    second = stockroom.receive_purchase_order(purchase_order, {"PO-A": 8, "PO-B": 5}, actor=CLERK)

    assert purchase_order.status == "received" and purchase_order.received_at
    assert second.warnings == ["PO-A: received 12 of 10 ordered (2 more)."]
    assert [(line.quantity_ordered, line.quantity_received)
            for line in purchase_order.lines] == [(10, 12), (5, 5)]
    assert (row_at(a, destination).quantity, row_at(b, destination).quantity) == (12, 5)
    assert [(d, r) for _, d, r in _movements(a)] == [(4, "received"), (8, "received")]
    assert _ledger_agrees(a, destination) and _ledger_agrees(b, destination)
    with pytest.raises(InvalidTransition):
        stockroom.receive_purchase_order(purchase_order, {"PO-A": 1}, actor=CLERK)


def test_receiving_into_an_inactive_location_is_refused_and_writes_nothing(two):
    _, destination = two
    variant = VariantFactory(sku="PO-C")
    purchase_order = stockroom.create_purchase_order(destination, "Acme", actor=CLERK)
    stockroom.add_purchase_order_line(purchase_order, "PO-C", 5, actor=CLERK)
    stockroom.place_purchase_order(purchase_order, actor=CLERK)
    destination.is_active = False
    db.session.flush()

    with pytest.raises(ValidationFailed) as caught:
        stockroom.receive_purchase_order(purchase_order, {"PO-C": 5}, actor=CLERK)

    assert "inactive" in str(caught.value)
    db.session.refresh(purchase_order)
    assert purchase_order.status == "ordered" and purchase_order.lines[0].quantity_received == 0
    assert _movements(variant) == [] and row_at(variant, destination) is None


@pytest.mark.parametrize("received", [{"PO-D": 0}, {"PO-D": -2}, {"NOT-ON-IT": 1}, {}])
def test_bad_receipts_are_refused_and_write_nothing(two, received):
    _, destination = two
    variant = VariantFactory(sku="PO-D")
    VariantFactory(sku="NOT-ON-IT")
    purchase_order = stockroom.create_purchase_order(destination, "Acme", actor=CLERK)
    stockroom.add_purchase_order_line(purchase_order, "PO-D", 5, actor=CLERK)
    stockroom.place_purchase_order(purchase_order, actor=CLERK)
    with pytest.raises(ValidationFailed):
        stockroom.receive_purchase_order(purchase_order, received, actor=CLERK)
    assert purchase_order.status == "ordered" and _movements(variant) == []


def test_cancelled_purchase_orders_keep_what_was_received(two):
    _, destination = two
    variant = VariantFactory(sku="PO-E")
    purchase_order = stockroom.create_purchase_order(destination, "Acme", actor=CLERK)
    stockroom.add_purchase_order_line(purchase_order, "PO-E", 5, actor=CLERK)
    stockroom.place_purchase_order(purchase_order, actor=CLERK)
    stockroom.receive_purchase_order(purchase_order, {"PO-E": 2}, actor=CLERK)
    stockroom.cancel_purchase_order(purchase_order, actor=CLERK)
    assert purchase_order.status == "cancelled" and row_at(variant, destination).quantity == 2


@pytest.mark.parametrize("table", [TRANSFER_ALLOWED, PURCHASE_ORDER_ALLOWED])
def test_the_tables_end_in_final_states(table):
    finals = [status for status, targets in table.items() if not targets]
    assert {str(s) for s in finals} == ({"received", "cancelled"})
