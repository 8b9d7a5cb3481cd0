"""The bench's SQL data generator: a small dataset on the test database (PostgreSQL only)."""

from __future__ import annotations

import pytest

from bench import datagen
from ecom.commerce.models import Order

pytestmark = pytest.mark.slow


def test_a_generated_dataset_keeps_every_index_and_constraint(postgres, committed_db):
    engine = committed_db.engine
    with engine.connect() as conn:
        indexes = datagen.deferrable_indexes(conn)
    assert "ix_orders_order_number_trgm" in indexes  # the migrations' indexes, trigram ones too

    generation = datagen.ensure_dataset(engine, products=30, orders=40, log=lambda _: None)

    assert generation is not None and set(generation.index_s) == set(indexes)
    with engine.connect() as conn:
        assert datagen.deferrable_indexes(conn) == indexes  # dropped for the load, built again the same
        assert [datagen.count(conn, t) for t in ("products", "variants", "orders", "order_items")] == [
            30, 90, 40, 80]
    seventh = committed_db.select(Order).where(Order.order_number == "ORD-B000000007")
    assert committed_db.session.scalar(seventh) is not None
    assert datagen.ensure_dataset(engine, products=30, orders=40, log=lambda _: None) is None  # reused
