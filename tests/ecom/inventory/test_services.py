"""Two-phase inventory: reserve, commit, release, return, adjust, low-stock alerts."""

import pytest
from sqlalchemy import select, text
from sqlalchemy.exc import IntegrityError

from ecom.actor import Actor
from ecom.errors import Conflict, OutOfStock, ValidationFailed
from ecom.inventory import services as stock
from ecom.inventory.models import Inventory, ReservationStatus, StockMovement, StockReservation
from ecom.notifications.models import OutboxEvent
from tests.factories import InventoryFactory, VariantFactory, make_order, stocked_variant

CLERK = Actor("clerk@example.com", None)
TTL = 900


def _inventory(db, variant):
    db.session.flush()
    return db.session.scalar(
        select(Inventory).where(Inventory.variant_id == variant.id)
        .execution_options(populate_existing=True))


def _low_stock_events(db):
    return db.session.scalars(select(OutboxEvent).where(OutboxEvent.type == "LOW_STOCK")).all()


def test_reserve_holds_every_line(db):
    a, b = stocked_variant(5), stocked_variant(3)
    order = make_order(lines=[(a, 2), (b, 3)])

    stock.reserve_stock(order, ttl_seconds=TTL)

    reservations = db.session.scalars(select(StockReservation).where(StockReservation.order_id == order.id)
                                      .order_by(StockReservation.variant_id)).all()
    assert [(r.variant_id, r.quantity, r.status) for r in reservations] == [
        (a.id, 2, "active"), (b.id, 3, "active")]
    assert (_inventory(db, a).reserved, _inventory(db, a).available) == (2, 3)
    assert _inventory(db, b).available == 0


def test_reserve_is_all_or_nothing_and_names_short_skus(db):
    plenty, scarce = stocked_variant(10), stocked_variant(1)
    order = make_order(lines=[(plenty, 2), (scarce, 2)])

    with pytest.raises(OutOfStock) as raised:
        stock.reserve_stock(order, ttl_seconds=TTL)

    assert raised.value.shortages == {scarce.sku: 1}
    assert scarce.sku in str(raised.value)
    assert _inventory(db, plenty).reserved == 0
    assert db.session.query(StockReservation).count() == 0


def test_reserve_gives_back_lines_already_held_and_names_every_short_sku(db):
    first, short, plenty, also_short = (stocked_variant(10), stocked_variant(1), stocked_variant(10),
                                        stocked_variant(0))
    order = make_order(lines=[(first, 2), (short, 2), (plenty, 1), (also_short, 1)])

    with pytest.raises(OutOfStock) as raised:
        stock.reserve_stock(order, ttl_seconds=TTL)

    assert raised.value.shortages == {short.sku: 1, also_short.sku: 0}
    assert [_inventory(db, v).reserved for v in (first, short, plenty, also_short)] == [0, 0, 0, 0]
    assert db.session.query(StockReservation).count() == 0


def test_reserve_refreshes_the_inventory_the_session_already_holds(db):
    variant = stocked_variant(5)
    held = db.session.scalar(select(Inventory).where(Inventory.variant_id == variant.id))

    stock.reserve_stock(make_order(lines=[(variant, 2)]), ttl_seconds=TTL)

    assert (held.reserved, held.available) == (2, 3)


def test_reserve_sums_lines_of_the_same_variant(db):
    variant = stocked_variant(3)
    order = make_order(lines=[(variant, 2), (variant, 2)])
    with pytest.raises(OutOfStock):
        stock.reserve_stock(order, ttl_seconds=TTL)


def test_variant_without_inventory_row_is_out_of_stock(db):
    variant = VariantFactory()
    order = make_order(lines=[(variant, 1)])
    with pytest.raises(OutOfStock) as raised:
        stock.reserve_stock(order, ttl_seconds=TTL)
    assert raised.value.shortages == {variant.sku: 0}


def test_commit_takes_units_once(db):
    variant = stocked_variant(10)
    order = make_order(lines=[(variant, 4)])
    stock.reserve_stock(order, ttl_seconds=TTL)

    assert stock.commit_stock(order) is True
    assert stock.commit_stock(order) is False

    inventory = _inventory(db, variant)
    assert (inventory.quantity, inventory.reserved) == (6, 0)
    sales = db.session.scalars(select(StockMovement).where(StockMovement.reason == "sale")).all()
    assert [(m.delta, m.order_id) for m in sales] == [(-4, order.id)]


def test_release_gives_units_back_once_and_never_touches_committed(db):
    variant = stocked_variant(10)
    unpaid, paid = make_order(lines=[(variant, 3)]), make_order(lines=[(variant, 2)])
    stock.reserve_stock(unpaid, ttl_seconds=TTL)
    stock.reserve_stock(paid, ttl_seconds=TTL)
    stock.commit_stock(paid)

    assert stock.release_stock(unpaid) == 3
    assert stock.release_stock(unpaid) == 0
    assert stock.release_stock(paid) == 0

    inventory = _inventory(db, variant)
    assert (inventory.quantity, inventory.reserved) == (8, 0)


def test_release_marks_expired_when_asked(db):
    variant = stocked_variant(5)
    order = make_order(lines=[(variant, 1)])
    stock.reserve_stock(order, ttl_seconds=TTL)
    stock.release_stock(order, expired=True)
    assert db.session.scalar(select(StockReservation.status)) == ReservationStatus.EXPIRED


def test_late_commit_rereserves_when_stock_allows(db):
    variant = stocked_variant(5)
    order = make_order(lines=[(variant, 2)])
    stock.reserve_stock(order, ttl_seconds=TTL)
    stock.release_stock(order, expired=True)

    assert stock.commit_stock(order) is True
    assert (_inventory(db, variant).quantity, _inventory(db, variant).reserved) == (3, 0)


def test_late_commit_without_stock_raises_and_changes_nothing(db):
    variant = stocked_variant(2)
    late = make_order(lines=[(variant, 2)])
    stock.reserve_stock(late, ttl_seconds=TTL)
    stock.release_stock(late, expired=True)
    rival = make_order(lines=[(variant, 2)])
    stock.reserve_stock(rival, ttl_seconds=TTL)

    with pytest.raises(OutOfStock):
        stock.commit_stock(late)
    assert (_inventory(db, variant).quantity, _inventory(db, variant).reserved) == (2, 2)


def test_return_puts_committed_units_back_once(db):
    variant = stocked_variant(5)
    order = make_order(lines=[(variant, 2)])
    stock.reserve_stock(order, ttl_seconds=TTL)
    stock.commit_stock(order)

    assert stock.return_stock(order, actor=CLERK) == 2
    assert stock.return_stock(order, actor=CLERK) == 0
    assert _inventory(db, variant).quantity == 5


def test_adjust_writes_a_movement_and_ledger_matches_quantity(db):
    variant = VariantFactory()
    stock.receive_stock(variant, 12, actor=CLERK, note="PO-1")
    stock.adjust_stock(variant, -2, "damage", actor=CLERK, note="dropped")
    order = make_order(lines=[(variant, 3)])
    stock.reserve_stock(order, ttl_seconds=TTL)
    stock.commit_stock(order)

    assert _inventory(db, variant).quantity == 7
    assert stock.ledger_total(variant.id) == 7


@pytest.mark.parametrize("delta", [0, 1.5, True])
def test_adjust_refuses_non_integer_or_zero(db, delta):
    variant = stocked_variant(5)
    with pytest.raises(ValidationFailed):
        stock.adjust_stock(variant, delta, "adjustment", actor=CLERK)


def test_adjust_refuses_system_reasons(db):
    with pytest.raises(ValidationFailed):
        stock.adjust_stock(stocked_variant(5), -1, "sale", actor=CLERK)
    with pytest.raises(ValidationFailed):
        stock.adjust_stock(stocked_variant(5), -1, "bogus", actor=CLERK)


def test_adjust_refuses_negative_result_and_changes_nothing(db):
    variant = stocked_variant(3)
    with pytest.raises(Conflict, match="only 3 on hand"):
        stock.adjust_stock(variant, -4, "correction", actor=CLERK)
    assert _inventory(db, variant).quantity == 3
    assert db.session.query(StockMovement).count() == 0


def test_adjust_refuses_going_below_reserved(db):
    variant = stocked_variant(5)
    stock.reserve_stock(make_order(lines=[(variant, 4)]), ttl_seconds=TTL)
    with pytest.raises(Conflict, match="reserved"):
        stock.adjust_stock(variant, -2, "correction", actor=CLERK)


def test_receive_requires_positive_quantity(db):
    with pytest.raises(ValidationFailed):
        stock.receive_stock(VariantFactory(), 0, actor=CLERK)


def test_low_stock_fires_once_per_crossing(db):
    variant = VariantFactory()
    InventoryFactory(variant=variant, quantity=10, low_stock_threshold=3)
    for _ in range(3):  # 10 -> 7 -> 4 -> 1 available: crosses once, at 1
        stock.reserve_stock(make_order(lines=[(variant, 3)]), ttl_seconds=TTL)
    assert len(_low_stock_events(db)) == 1
    stock.reserve_stock(make_order(lines=[(variant, 1)]), ttl_seconds=TTL)  # still low
    assert len(_low_stock_events(db)) == 1

    stock.receive_stock(variant, 20, actor=CLERK)  # recovers: re-armed
    stock.adjust_stock(variant, -20, "damage", actor=CLERK)  # crosses again
    events = _low_stock_events(db)
    assert len(events) == 2
    assert events[0].payload["data"]["sku"] == variant.sku


def test_low_stock_fires_for_a_row_this_session_never_loaded(db):
    # given stock whose inventory row is not in the session (another request created it)
    variant = VariantFactory()
    row = InventoryFactory(variant=variant, quantity=5, low_stock_threshold=2)
    order = make_order(lines=[(variant, 4)])
    db.session.flush()
    db.session.expunge(row)
    # when a reservation takes it below the threshold
    stock.reserve_stock(order, ttl_seconds=TTL)
    # then the alert names the SKU and location, and the row is marked alerted
    [event] = _low_stock_events(db)
    assert (event.payload["data"]["sku"], event.payload["data"]["available"]) == (variant.sku, 1)
    assert event.payload["data"]["location"]
    assert _inventory(db, variant).low_stock_alerted is True


def test_a_loaded_inventory_row_sees_what_the_reservation_took(db):
    variant = stocked_variant(5)
    row = db.session.scalar(select(Inventory).where(Inventory.variant_id == variant.id))
    stock.reserve_stock(make_order(lines=[(variant, 2)]), ttl_seconds=TTL)
    # no refresh: the object in the identity map was told
    assert (row.reserved, row.available) == (2, 3)


def test_overdue_order_ids_lists_only_expired_active(db):
    variant = stocked_variant(10)
    overdue, fresh = make_order(lines=[(variant, 1)]), make_order(lines=[(variant, 1)])
    stock.reserve_stock(overdue, ttl_seconds=-1)
    stock.reserve_stock(fresh, ttl_seconds=TTL)
    assert stock.overdue_order_ids() == [overdue.id]


@pytest.mark.parametrize(
    "statement",
    [
        "UPDATE inventory SET quantity = -1 WHERE id = :id",
        "UPDATE inventory SET reserved = quantity + 1 WHERE id = :id",
        "UPDATE inventory SET reserved = -1 WHERE id = :id",
    ],
)
def test_database_refuses_writes_around_the_services(db, statement):
    inventory = InventoryFactory(quantity=5)
    with pytest.raises(IntegrityError), db.session.begin_nested():
        db.session.execute(text(statement), {"id": inventory.id})
