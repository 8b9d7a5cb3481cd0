"""ecom.commerce.sql.insert_persistent: rows written by one INSERT come back as objects the
session holds as loaded (persistent, unchanged, nothing lazy-loaded), with the values the
database stored."""

from __future__ import annotations

from decimal import Decimal

from sqlalchemy import inspect, select

from ecom.commerce.models import OrderItem
from ecom.commerce.sql import insert_or_nothing_statement, insert_persistent
from ecom.extensions import db as _db
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
