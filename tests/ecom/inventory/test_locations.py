"""Allocation over stock locations: priority order, splitting, pickup at the store only,
all or nothing; commit, release and return where the units were held."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from ecom.errors import Conflict, OutOfStock, ValidationFailed
from ecom.extensions import db
from ecom.inventory import services as stock
from ecom.inventory.models import ReservationStatus, StockMovement, StockReservation, available_units
from tests.factories import UserFactory, VariantFactory, make_order
from tests.locations_support import CLERK, place, row_at, store_location, warehouse


def _held(order) -> list[tuple[str, int, str]]:
    return [(r.location.code, r.quantity, r.status) for r in db.session.scalars(
        select(StockReservation).where(StockReservation.order_id == order.id)
        .order_by(StockReservation.location_id))]


@pytest.fixture
def three(db):
    """Three shipping warehouses, priorities 1, 2, 3, plus one that does not ship."""
    return (warehouse(1, code="W1"), warehouse(2, code="W2"), warehouse(3, code="W3"),
            warehouse(0, code="NOSHIP", ships=False))


def test_available_sums_the_active_shipping_locations_only(three):
    w1, w2, w3, noship = three
    variant = VariantFactory()
    for location, units in zip(three, (3, 4, 5, 100), strict=True):
        place(variant, location, units)
    assert available_units(variant) == 12
    w3.is_active = False
    db.session.flush()
    db.session.expire_all()
    assert available_units(variant) == 7
    assert available_units(variant, location_id=noship.id) == 100


def test_a_line_fills_the_first_location_before_the_next_and_splits_only_when_needed(three):
    w1, w2, w3, noship = three
    variant = VariantFactory()
    place(variant, w1, 3)
    place(variant, w2, 4)
    place(variant, w3, 10)
    place(variant, noship, 50)
    small = make_order(UserFactory(), [(variant, 2)])
    split = make_order(UserFactory(), [(variant, 6)])

    stock.reserve_stock(small, ttl_seconds=60)
    stock.reserve_stock(split, ttl_seconds=60)

    assert _held(small) == [("W1", 2, "active")]
    # W1 has 1 left, W2 4: the line is split over W1, W2 and W3 in priority order
    assert _held(split) == [("W1", 1, "active"), ("W2", 4, "active"), ("W3", 1, "active")]
    assert [(row_at(variant, loc).quantity, row_at(variant, loc).reserved) for loc in three] == [
        (3, 3), (4, 4), (10, 1), (50, 0)]


def test_all_or_nothing_names_every_short_line_and_writes_nothing(three):
    w1, w2, _, noship = three
    plenty, scarce = VariantFactory(sku="PLENTY"), VariantFactory(sku="SCARCE")
    place(plenty, w1, 10)
    place(scarce, w1, 1)
    place(scarce, w2, 1)
    place(scarce, noship, 30)  # not for shipping
    order = make_order(UserFactory(), [(plenty, 2), (scarce, 3)])

    with pytest.raises(OutOfStock) as caught:
        stock.reserve_stock(order, ttl_seconds=60)

    assert caught.value.shortages == {"SCARCE": 2}
    assert _held(order) == []
    assert row_at(plenty, w1).reserved == 0 and row_at(scarce, w1).reserved == 0


def test_commit_release_and_return_act_where_the_units_were_held(three):
    w1, w2, _, _ = three
    variant = VariantFactory()
    place(variant, w1, 2)
    place(variant, w2, 5)
    paid, unpaid = make_order(UserFactory(), [(variant, 3)]), make_order(UserFactory(), [(variant, 2)])
    stock.reserve_stock(paid, ttl_seconds=60)
    stock.reserve_stock(unpaid, ttl_seconds=60)

    stock.commit_stock(paid)
    stock.release_stock(unpaid, expired=True)
    assert (row_at(variant, w1).quantity, row_at(variant, w1).reserved) == (0, 0)
    assert (row_at(variant, w2).quantity, row_at(variant, w2).reserved) == (4, 0)
    assert stock.committed_units(paid) == {(variant.id, w1.id): 2, (variant.id, w2.id): 1}
    assert _held(unpaid) == [("W2", 2, ReservationStatus.EXPIRED)]

    stock.return_stock(paid, actor=CLERK)
    assert (row_at(variant, w1).quantity, row_at(variant, w2).quantity) == (2, 5)
    for location in (w1, w2):
        assert stock.ledger_total(variant.id, location.id) == row_at(variant, location).quantity


def test_a_pickup_order_reserves_at_its_store_only(three):
    w1, *_ = three
    store, shelf = store_location()
    variant = VariantFactory()
    place(variant, w1, 10)
    place(variant, shelf, 2)
    order = make_order(UserFactory(), [(variant, 2)])

    stock.reserve_stock(order, ttl_seconds=60, pickup_store_id=store.id)

    assert _held(order) == [(shelf.code, 2, "active")]
    assert row_at(variant, w1).reserved == 0
    # and the store's units are not offered for shipping
    assert available_units(variant) == 10
    assert stock.pickup_stock([variant.id]) == {variant.id: [{"store_id": store.id, "available": 0}]}


def test_a_pickup_at_a_store_without_stock_is_refused_and_writes_nothing(three):
    w1, *_ = three
    store, shelf = store_location()
    variant = VariantFactory(sku="AT-WAREHOUSE")
    place(variant, w1, 10)
    place(variant, shelf, 1)
    order = make_order(UserFactory(), [(variant, 2)])
    movements = db.session.scalar(select(func.count()).select_from(StockMovement))

    with pytest.raises(OutOfStock) as caught:
        stock.reserve_stock(order, ttl_seconds=60, pickup_store_id=store.id)

    assert caught.value.shortages == {"AT-WAREHOUSE": 1}
    assert store.name in str(caught.value)
    assert _held(order) == [] and row_at(variant, shelf).reserved == 0 and row_at(variant, w1).reserved == 0
    assert db.session.scalar(select(func.count()).select_from(StockMovement)) == movements


def test_a_store_without_click_and_collect_is_a_clear_error(three):
    from tests.factories import StoreFactory

    variant = VariantFactory()
    place(variant, three[0], 5)
    order = make_order(UserFactory(), [(variant, 1)])
    with pytest.raises(ValidationFailed) as caught:
        stock.reserve_stock(order, ttl_seconds=60, pickup_store_id=StoreFactory().id)
    assert "click & collect" in str(caught.value)
    assert _held(order) == []


@pytest.mark.parametrize("delta", [0, -0, True, 1.5])
def test_adjusting_by_a_non_whole_or_zero_amount_is_refused(three, delta):
    variant = VariantFactory()
    with pytest.raises(ValidationFailed):
        stock.adjust_stock(variant, delta, "correction", actor=CLERK, location=three[0])
    assert db.session.scalar(select(func.count()).select_from(StockMovement)
                             .where(StockMovement.variant_id == variant.id)) == 0


def test_receiving_into_an_inactive_location_is_refused(three):
    closed = warehouse(9, active=False)
    variant = VariantFactory()
    with pytest.raises(ValidationFailed):
        stock.receive_stock(variant, 5, actor=CLERK, location=closed)
    assert row_at(variant, closed) is None


def test_an_adjustment_cannot_take_units_reserved_at_that_location(three):
    w1, w2, *_ = three
    variant = VariantFactory()
    place(variant, w1, 2)
    place(variant, w2, 5)
    stock.reserve_stock(make_order(UserFactory(), [(variant, 2)]), ttl_seconds=60)
    with pytest.raises(Conflict):
        stock.adjust_stock(variant, -1, "damage", actor=CLERK, location=w1)
    stock.adjust_stock(variant, -1, "damage", actor=CLERK, location=w2)
    assert (row_at(variant, w1).quantity, row_at(variant, w2).quantity) == (2, 4)


def test_low_stock_is_per_location_and_names_it(three):
    from ecom.notifications.models import OutboxEvent

    w1, w2, *_ = three
    variant = VariantFactory(sku="LOWLOC")
    place(variant, w1, 10)
    place(variant, w2, 10)
    for location in (w1, w2):
        row_at(variant, location).low_stock_threshold = 5
    db.session.flush()

    stock.reserve_stock(make_order(UserFactory(), [(variant, 6)]), ttl_seconds=60)

    alerts = [e.payload["data"] for e in db.session.scalars(
        select(OutboxEvent).where(OutboxEvent.type == "LOW_STOCK"))]
    assert [(a["sku"], a["location"], a["available"]) for a in alerts] == [("LOWLOC", w1.name, 4)]
