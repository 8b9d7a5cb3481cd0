"""SQL helpers for the commerce package."""

from __future__ import annotations

from ecom.extensions import db


def insert_or_nothing(model, values: dict, *, unique: tuple[str, ...] | None = None):
    """``INSERT ... ON CONFLICT DO NOTHING`` for the session's database (PostgreSQL or SQLite):
    on a clash with any unique key, or only with the ``unique`` columns' one when given.

    On PostgreSQL a concurrent insert of the same key waits for the other
    transaction and then does nothing, which is what makes "at most once"
    hold across processes without a savepoint.
    """
    dialect = db.session.get_bind().dialect.name
    return insert_or_nothing_statement(model, dialect, unique=unique).values(**values)


def insert_or_nothing_statement(model, dialect: str, *, unique: tuple[str, ...] | None = None):
    """``insert_or_nothing`` for ``dialect`` without its values: built once, run with parameters."""
    if dialect == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    else:
        from sqlalchemy.dialects.sqlite import insert
    return insert(model).on_conflict_do_nothing(index_elements=unique)


def insert_unless_exists(model, **values) -> bool:
    """``INSERT ... ON CONFLICT DO NOTHING``; True when this call inserted the row."""
    key = list(model.__table__.primary_key.columns)
    return db.session.execute(insert_or_nothing(model, values).returning(*key)).first() is not None
