# ruff: noqa: E501  (the seed rows read best one to a line)
"""Migration 0008 moves the single stock pool into the default warehouse without losing a
unit, a reservation or a ledger row: run on a populated database at 0006, then compared."""

from __future__ import annotations

import os

import pytest
from sqlalchemy import create_engine, make_url, text

from ecom.config import _normalise_db_url
from ecom.extensions import db

SEED = """
INSERT INTO users (id, email, hashed_password, full_name, role, is_active, created_at, updated_at, session_version)
VALUES (1, 'a@example.com', 'x', 'A', 'customer', true, CURRENT_TIMESTAMP, CURRENT_TIMESTAMP, 0);
INSERT INTO categories (id, name, slug, description, display_order, created_at, updated_at)
VALUES (1, 'C', 'c', '', 0, CURRENT_TIMESTAMP, CURRENT_TIMESTAMP);
INSERT INTO products (id, category_id, name, slug, description, base_price, is_active, featured, created_at, updated_at)
VALUES (1, 1, 'P', 'p', '', 10, true, false, CURRENT_TIMESTAMP, CURRENT_TIMESTAMP);
INSERT INTO variants (id, product_id, sku, name, price, attributes, is_active, created_at, updated_at) VALUES
 (1, 1, 'A-1', 'A', 10, '{}', true, CURRENT_TIMESTAMP, CURRENT_TIMESTAMP),
 (2, 1, 'B-1', 'B', 10, '{}', true, CURRENT_TIMESTAMP, CURRENT_TIMESTAMP),
 (3, 1, 'C-1', 'C', 10, '{}', true, CURRENT_TIMESTAMP, CURRENT_TIMESTAMP);
INSERT INTO inventory (id, variant_id, quantity, reserved, low_stock_threshold, low_stock_alerted, updated_at) VALUES
 (1, 1, 7, 2, 5, false, CURRENT_TIMESTAMP), (2, 2, 40, 0, 5, false, CURRENT_TIMESTAMP),
 (3, 3, 0, 0, 5, true, CURRENT_TIMESTAMP);
INSERT INTO orders (id, user_id, order_number, status, subtotal, tax, shipping_cost, total, currency,
                    shipping_address, billing_address, email, created_at, updated_at) VALUES
 (1, 1, 'ORD-1', 'created', 20, 0, 0, 20, 'usd', '{}', '{}', 'a@example.com', CURRENT_TIMESTAMP, CURRENT_TIMESTAMP),
 (2, 1, 'ORD-2', 'shipped', 30, 0, 0, 30, 'usd', '{}', '{}', 'a@example.com', CURRENT_TIMESTAMP, CURRENT_TIMESTAMP);
INSERT INTO order_items (id, order_id, variant_id, sku, product_name, variant_name, quantity, price, line_total) VALUES
 (1, 1, 1, 'A-1', 'P', 'A', 2, 10, 20), (2, 2, 1, 'A-1', 'P', 'A', 1, 10, 10), (3, 2, 2, 'B-1', 'P', 'B', 2, 10, 20);
INSERT INTO stock_reservations (id, order_id, variant_id, quantity, status, expires_at, created_at, updated_at) VALUES
 (1, 1, 1, 2, 'active', CURRENT_TIMESTAMP, CURRENT_TIMESTAMP, CURRENT_TIMESTAMP),
 (2, 2, 1, 1, 'committed', CURRENT_TIMESTAMP, CURRENT_TIMESTAMP, CURRENT_TIMESTAMP),
 (3, 2, 2, 2, 'committed', CURRENT_TIMESTAMP, CURRENT_TIMESTAMP, CURRENT_TIMESTAMP);
INSERT INTO stock_movements (id, variant_id, delta, reason, note, created_at) VALUES
 (1, 1, 8, 'received', '', CURRENT_TIMESTAMP), (2, 1, -1, 'sale', '', CURRENT_TIMESTAMP),
 (3, 2, 42, 'received', '', CURRENT_TIMESTAMP), (4, 2, -2, 'sale', '', CURRENT_TIMESTAMP),
 (5, 3, 3, 'received', '', CURRENT_TIMESTAMP), (6, 3, -3, 'damage', '', CURRENT_TIMESTAMP);
INSERT INTO fulfillments (id, order_id, order_number, status, carrier, tracking_number, created_at, updated_at)
VALUES (1, 2, 'ORD-2', 'shipped', 'DHL', 'T1', CURRENT_TIMESTAMP, CURRENT_TIMESTAMP);
"""


def _totals(conn) -> dict:
    one = lambda sql: conn.execute(text(sql)).all()  # noqa: E731
    return {
        "stock": one("SELECT variant_id, quantity, reserved FROM inventory ORDER BY variant_id"),
        "reservations": one("SELECT id, order_id, variant_id, quantity, status FROM stock_reservations ORDER BY id"),
        "movements": one("SELECT id, variant_id, delta, reason FROM stock_movements ORDER BY id"),
        "ledger": one("SELECT variant_id, sum(delta) FROM stock_movements GROUP BY variant_id ORDER BY variant_id"),
        "fulfillments": one("SELECT id, order_id, status, tracking_number FROM fulfillments ORDER BY id"),
    }


def _migrate_populated(url: str) -> tuple[dict, dict, object]:
    from flask_migrate import upgrade

    from tests.conftest import make_test_app

    app = make_test_app(url)
    with app.app_context():
        engine = db.engine
        if engine.dialect.name == "postgresql":
            with engine.begin() as conn:
                conn.execute(text("DROP SCHEMA public CASCADE; CREATE SCHEMA public"))
        upgrade(revision="0006")
        with engine.begin() as conn:
            for statement in filter(str.strip, SEED.split(";")):
                conn.execute(text(statement))
        with engine.connect() as conn:
            before = _totals(conn)
        upgrade()
        with engine.connect() as conn:
            after = _totals(conn)
            located = {
                table: conn.execute(text(
                    f"SELECT DISTINCT l.code FROM {table} t JOIN stock_locations l ON l.id = t.location_id")).all()
                for table in ("inventory", "stock_reservations", "stock_movements", "fulfillments")}
            lines = conn.execute(text(
                "SELECT fulfillment_id, order_item_id, quantity FROM fulfillment_lines ORDER BY order_item_id")).all()
            main = conn.execute(text(
                "SELECT kind, ships_orders, is_active FROM stock_locations WHERE code = 'MAIN'")).one()
        db.session.remove()
        engine.dispose()
    return before, after, (located, lines, main)


def _check(before, after, extra):
    located, lines, main = extra
    # nothing lost or changed: units, holds, ledger rows, shipments
    assert after == before
    # every row is at the default warehouse, which ships
    assert all(codes == [("MAIN",)] for codes in located.values()), located
    assert tuple(main) == ("warehouse", True, True)
    # the ledger still sums to on-hand at that location
    assert [(v, q) for v, q, _ in after["stock"] if q] == [tuple(row) for row in after["ledger"] if row[1]]
    # the existing shipment sends every line of its order
    assert [tuple(line) for line in lines] == [(1, 2, 1), (1, 3, 2)]


def test_the_migration_keeps_every_unit_on_sqlite(tmp_path):
    _check(*_migrate_populated(f"sqlite:///{tmp_path / 'populated.sqlite3'}"))


def test_the_migration_keeps_every_unit_on_postgres():
    base = os.environ.get("TEST_DATABASE_URL")
    if not base:
        pytest.skip("TEST_DATABASE_URL (PostgreSQL) not set")
    url = make_url(_normalise_db_url(base))
    name = f"{url.database}_migration_{os.environ.get('PYTEST_XDIST_WORKER', 'main')}"
    admin = create_engine(url.set(database="postgres"), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        if not conn.scalar(text("SELECT 1 FROM pg_database WHERE datname = :n"), {"n": name}):
            conn.execute(text(f'CREATE DATABASE "{name}"'))
    admin.dispose()
    _check(*_migrate_populated(url.set(database=name).render_as_string(hide_password=False)))


def test_the_downgrade_folds_locations_back_into_one_row_per_variant(tmp_path):
    from flask_migrate import downgrade, upgrade

    from tests.conftest import make_test_app

    url = f"sqlite:///{tmp_path / 'roundtrip.sqlite3'}"
    before, _, _ = _migrate_populated(url)
    app = make_test_app(url)
    with app.app_context():
        # a second warehouse holding more units of A-1
        with db.engine.begin() as conn:
            conn.execute(text("INSERT INTO stock_locations (code, name, kind, address, ships_orders, accepts_pickup, "
                              "priority, is_active, created_at, updated_at) VALUES ('EAST', 'East', 'warehouse', '', "
                              "true, false, 20, true, CURRENT_TIMESTAMP, CURRENT_TIMESTAMP)"))
            conn.execute(text("INSERT INTO inventory (variant_id, location_id, quantity, reserved, low_stock_threshold, "
                              "low_stock_alerted, updated_at) SELECT 1, id, 5, 0, 5, false, CURRENT_TIMESTAMP "
                              "FROM stock_locations WHERE code = 'EAST'"))
        downgrade(revision="0006")
        with db.engine.connect() as conn:
            stock = conn.execute(text("SELECT variant_id, quantity, reserved FROM inventory ORDER BY variant_id")).all()
        upgrade()
        db.session.remove()
        db.engine.dispose()
    assert [tuple(row) for row in stock] == [(1, 12, 2), (2, 40, 0), (3, 0, 0)]
