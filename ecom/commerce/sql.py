"""SQL helpers for the commerce package."""

from __future__ import annotations

from ecom.extensions import db


def insert_unless_exists(model, **values) -> bool:
    """``INSERT ... ON CONFLICT DO NOTHING``; True when this call inserted the row.

    On PostgreSQL a concurrent insert of the same key waits for the other
    transaction and then does nothing, which is what makes "at most once"
    hold across processes without a savepoint.
    """
    dialect = db.session.get_bind().dialect.name
    if dialect == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    else:
        from sqlalchemy.dialects.sqlite import insert
    key = list(model.__table__.primary_key.columns)
    statement = insert(model).values(**values).on_conflict_do_nothing().returning(*key)
    return db.session.execute(statement).first() is not None
