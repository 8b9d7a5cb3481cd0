"""ecom.commerce.sql.insert_persistent: rows written by one INSERT come back as objects the
session holds as loaded (persistent, unchanged, nothing lazy-loaded), with the values the
database stored."""

from __future__ import annotations

from decimal import Decimal

import pytest
from sqlalchemy import func, inspect, select
from sqlalchemy.exc import IntegrityError

from ecom.actor import SYSTEM
from ecom.catalog.cache_version import CATALOG_VERSION
from ecom.catalog.models import Review
from ecom.commerce.models import OrderEvent, OrderItem
from ecom.commerce.orders import creation_row
from ecom.commerce.sql import insert_or_nothing_statement, insert_persistent
from ecom.db import utcnow
from ecom.extensions import db as _db
from ecom.notifications.models import EventType, OutboxEvent
from ecom.notifications.outbox import PENDING_KEY
from ecom.notifications.services import event_row
from ecom.row_writes import RowWrite
from ecom.unit_of_work import rollback
from tests.commerce_support import statements_during
from tests.factories import make_order, stocked_variant


def _line(order, variant, **values) -> dict:
    return {"order_id": order.id, "product_id": variant.product_id, "variant_id": variant.id,
            "sku": variant.sku, "product_name": "Tee", "quantity": 2, "price": Decimal("10"),
            "line_total": Decimal("20"), **values}


def test_the_objects_are_persistent_unchanged_and_read_without_sql(db):
    variant = stocked_variant()
    order = make_order()

    items, statements = statements_during(lambda: insert_persistent(
        OrderItem, [_line(order, variant),
                    _line(order, variant, quantity=1, line_total=Decimal("10"), tax_rate=Decimal("0.19"))]))

    assert all(statement.startswith("INSERT INTO order_items") for statement in statements)
    if _db.session.get_bind().dialect.name == "postgresql":
        assert len(statements) == 1  # SQLite's RETURNING in parameter order takes one per row
    first, second = items
    assert [inspect(item).persistent for item in items] == [True, True]
    assert not _db.session.dirty and not _db.session.new
    # Python defaults filled in, Decimals at their column's scale: as the database has them.
    (values, reads) = statements_during(lambda: (second.quantity, second.discount, second.tax_rate,
                                                 second.variant_name, first.price, first.id < second.id))
    assert reads == []
    assert values == (1, Decimal("0.00"), Decimal("0.1900"), "", Decimal("10.00"), True)
    _db.session.expire_all()
    stored = _db.session.scalars(select(OrderItem).where(OrderItem.order_id == order.id)
                                 .order_by(OrderItem.id)).all()
    assert [(i.id, i.quantity, i.tax_rate, i.price) for i in stored] == [
        (first.id, 2, Decimal("0.0000"), Decimal("10.00")),
        (second.id, 1, Decimal("0.1900"), Decimal("10.00"))]


def test_a_change_to_an_object_is_written_by_the_next_flush(db):
    variant = stocked_variant()
    order = make_order()
    [item] = insert_persistent(OrderItem, [_line(order, variant)])

    item.product_name = "Renamed tee"
    _db.session.flush()
    _db.session.expire_all()

    assert _db.session.get(OrderItem, item.id).product_name == "Renamed tee"


def test_a_row_the_statement_did_not_insert_gives_no_object(db):
    first, clash = make_order(), make_order()
    statement = insert_or_nothing_statement(type(first), _db.session.get_bind().dialect.name,
                                            unique=("order_number",))
    row = {column: getattr(clash, column) for column in (
        "user_id", "status", "subtotal", "tax", "shipping_cost", "total", "currency",
        "shipping_address", "billing_address", "email")}

    assert insert_persistent(type(first), [{**row, "order_number": first.order_number}], statement) == []
    [order] = insert_persistent(type(first), [{**row, "order_number": "ORD-TEST-FRESH"}], statement)
    assert inspect(order).persistent and order.order_number == "ORD-TEST-FRESH"


def test_a_rollback_takes_the_objects_out_of_the_session(db):
    variant = stocked_variant()
    order = make_order()
    _db.session.commit()
    [item] = insert_persistent(OrderItem, [_line(order, variant)])

    rollback()

    assert item not in _db.session
    # SQLite hands the rolled-back id out again: the new row's object takes its place.
    [again] = insert_persistent(OrderItem, [_line(order, variant)])
    assert inspect(again).persistent and _db.session.get(OrderItem, again.id) is again


def _along(order) -> tuple[RowWrite, RowWrite]:
    return (creation_row(order, actor=SYSTEM),
            event_row(EventType.ORDER_PLACED, {"order_id": order.id}))


def test_rows_along_are_written_with_the_row_and_their_owners_told(db):
    variant = stocked_variant()
    order = make_order()
    history, event = _along(order)

    [item], statements = statements_during(lambda: insert_persistent(
        OrderItem, [_line(order, variant)], along=(history, event)))

    if _db.session.get_bind().dialect.name == "postgresql":
        assert len(statements) == 1 and statements[0].startswith("WITH along0 AS (INSERT INTO order_events")
    else:  # SQLite has no data-modifying CTE: a statement each, after the row
        assert [s.split(" (")[0] for s in statements] == [
            "INSERT INTO order_items", "INSERT INTO order_events", "INSERT INTO outbox_events"]
    assert inspect(item).persistent
    assert _db.session.scalars(select(OrderEvent.note).where(OrderEvent.order_id == order.id)).all() == [
        "order placed"]
    stored = _db.session.get(OutboxEvent, event.values["id"])
    assert stored.payload == {"type": "ORDER_PLACED", "data": {"order_id": order.id}}
    assert event.values["id"] in _db.session.info[PENDING_KEY]  # dispatched after the commit


def test_rows_along_are_not_written_when_the_statement_fails(db):
    order = make_order()
    history, event = _along(order)
    _db.session.commit()

    with pytest.raises(IntegrityError):
        insert_persistent(OrderItem, [{"order_id": order.id, "product_id": None, "sku": "X",
                                       "product_name": "Tee", "quantity": 0, "price": Decimal("1"),
                                       "line_total": Decimal("0")}], along=(history, event))
    rollback()

    assert _db.session.scalar(select(func.count()).select_from(OrderEvent)
                              .where(OrderEvent.order_id == order.id)) == 0
    assert _db.session.get(OutboxEvent, event.values["id"]) is None
    assert not _db.session.info.get(PENDING_KEY)


def test_a_catalog_row_along_still_makes_the_catalog_version_move(db):
    # The statement's own table is not the only one written: the CTEs' tables count too.
    variant = stocked_variant()
    order = make_order()
    review = RowWrite(Review.__table__, {"product_id": variant.product_id, "user_id": order.user_id,
                                         "rating": 5, "title": "Good", "comment": "",
                                         "verified_purchase": False, "is_hidden": False,
                                         "created_at": utcnow()})

    insert_persistent(OrderItem, [_line(order, variant)], along=(review,))

    assert CATALOG_VERSION.written(_db.session())
