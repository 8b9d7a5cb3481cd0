"""Column helpers shared by every domain's models."""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import UTC, datetime
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from enum import StrEnum

from flask_sqlalchemy.session import Session as FlaskSession
from sqlalchemy import CheckConstraint, DateTime, Numeric
from sqlalchemy import event as sa_event
from sqlalchemy.orm import Mapped, mapped_column

MONEY = Numeric(12, 2, asdecimal=True)
CENT = Decimal("0.01")


def utcnow() -> datetime:
    return datetime.now(UTC)


def money(value) -> Decimal:
    """Round any number-like value to cents, half up. Never accepts float."""
    if isinstance(value, float):
        raise TypeError("money must not be a float; pass a Decimal or a string")
    return Decimal(value).quantize(CENT, rounding=ROUND_HALF_UP)


def storable_text(value: str) -> bool:
    """False for text PostgreSQL cannot store: NUL bytes and lone surrogates."""
    if "\x00" in value:
        return False
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def fits_numeric(value: Decimal, *, precision: int, scale: int) -> bool:
    """True when ``value`` is finite and, rounded to ``scale`` places, fits NUMERIC(precision, scale).

    PostgreSQL stores NaN in a NUMERIC column (and it compares above every number), and refuses
    a value with too many digits only when the row is written: check both before."""
    if not value.is_finite():
        return False
    try:
        rounded = value.quantize(Decimal(1).scaleb(-scale), rounding=ROUND_HALF_UP)
    except InvalidOperation:
        return False
    return abs(rounded) < Decimal(10) ** (precision - scale)


def as_utc(value: datetime | None) -> datetime | None:
    """SQLite hands back naive datetimes; treat them as the UTC they were stored as."""
    if value is not None and value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value


def Timestamp(**kwargs):  # noqa: N802 - reads like a column type
    return mapped_column(DateTime(timezone=True), **kwargs)


class TimestampMixin:
    created_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), default=utcnow, nullable=False
    )
    updated_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), default=utcnow, onupdate=utcnow, nullable=False
    )


def one_of(column: str, values: type[StrEnum] | list[str], name: str | None = None) -> CheckConstraint:
    """A CHECK that ``column`` holds one of the enum's values."""
    allowed = ", ".join(f"'{v}'" for v in (list(values)))
    return CheckConstraint(f"{column} IN ({allowed})", name=name or f"{column}_valid")


# GIN trigram indexes (pg_trgm) for the back office's ILIKE '%term%' searches (migration 0003).
TRIGRAM_INDEXES = frozenset({"ix_products_name_trgm", "ix_products_slug_trgm", "ix_variants_sku_trgm",
                             "ix_orders_order_number_trgm", "ix_orders_email_trgm",  # 0003
                             "ix_users_email_trgm", "ix_users_full_name_trgm", "ix_variants_name_trgm",
                             "ix_fulfillments_order_number_trgm", "ix_fulfillments_tracking_number_trgm",
                             "ix_audit_log_label_trgm"})  # 0013

# Objects that exist only on PostgreSQL and are created by migrations alone
# (the full-text search column and its GIN index, the trigram indexes): the
# models cannot express a dialect-specific generated column or operator class
# without SQLite growing a B-tree of the same name, so schema comparison skips them.
MIGRATION_ONLY = frozenset({"search_vector", "ix_products_search_vector", *TRIGRAM_INDEXES})


def include_in_autogenerate(obj, name, type_, reflected, compare_to) -> bool:
    return name not in MIGRATION_ONLY


_listen_lock = threading.Lock()


def listen_on_sessions(**listeners: Callable) -> None:
    """Attach session event listeners (``after_commit=fn``, ...) to every Flask-SQLAlchemy
    session, once per process however many apps are built."""
    with _listen_lock:
        for name, listener in listeners.items():
            if not sa_event.contains(FlaskSession, name, listener):
                sa_event.listen(FlaskSession, name, listener)


def locked_row(model, row_id):
    """The ``model`` row ``row_id`` with a row lock (SELECT ... FOR UPDATE) and fresh column
    values, or None. The one spelling of "lock this row and reread it"."""
    from sqlalchemy import select

    from ecom.extensions import db

    return db.session.scalar(select(model).where(model.id == row_id).with_for_update()
                             .execution_options(populate_existing=True))
