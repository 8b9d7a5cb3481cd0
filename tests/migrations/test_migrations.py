"""Models and migrations never drift."""

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import create_engine, inspect, text

from ecom.db import TRIGRAM_INDEXES, include_in_autogenerate
from ecom.extensions import db


def _differences(engine):
    with engine.connect() as connection:
        context = MigrationContext.configure(
            connection,
            opts={"compare_type": True, "include_object": include_in_autogenerate},
        )
        return compare_metadata(context, db.metadata)


def test_migrated_schema_matches_the_models(app):
    with app.app_context():
        assert _differences(db.engine) == []


def test_migrations_build_the_same_schema_on_sqlite(tmp_path):
    from tests.conftest import _fresh_schema, make_test_app

    sqlite_app = make_test_app(f"sqlite:///{tmp_path / 'drift.sqlite3'}")
    _fresh_schema(sqlite_app)
    with sqlite_app.app_context():
        assert _differences(db.engine) == []
        inspector = inspect(db.engine)
        assert "stock_reservations" in inspector.get_table_names()
        indexes = {i["name"] for t in ("products", "variants", "orders") for i in inspector.get_indexes(t)}
    assert not indexes & TRIGRAM_INDEXES  # PostgreSQL-only: SQLite gets no stand-in B-trees


def test_postgres_has_the_full_text_search_column(postgres):
    with postgres.app_context():
        columns = {c["name"] for c in inspect(db.engine).get_columns("products")}
        indexes = {i["name"] for i in inspect(db.engine).get_indexes("products")}
    assert "search_vector" in columns
    assert "ix_products_search_vector" in indexes


def test_postgres_has_the_trigram_indexes_for_the_back_office_searches(postgres):
    with postgres.app_context():
        trigram = set(db.session.scalars(text(
            "SELECT indexname FROM pg_indexes WHERE indexdef LIKE '%USING gin (% gin_trgm_ops)'")))
        db.session.rollback()
    assert trigram == TRIGRAM_INDEXES


def test_every_domain_table_exists(app):
    expected = {
        "users", "addresses", "carts", "cart_items", "orders", "order_items", "order_events",
        "payments", "stripe_events", "categories", "products", "product_images", "variants",
        "inventory", "stock_reservations", "stock_movements", "reviews", "stores",
        "fulfillments", "outbox_events", "notifications", "audit_log",
    }
    with app.app_context():
        engine = create_engine(db.engine.url)
        assert expected <= set(inspect(engine).get_table_names())
        engine.dispose()
