"""Rows a service decides to write, which a caller writing other rows may send along.

A service that owns a row's rule (an order's history, an outbox event) builds a ``RowWrite``:
the table, the values, and what it does once the row is written (``written``). Written on
its own it is one INSERT; a caller that inserts another row in the same transaction may send
it along with that statement instead (``commerce.sql.insert_persistent``: one round trip
for several rows on PostgreSQL), the values and the bookkeeping staying the owner's.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import cache

from sqlalchemy import Table, insert

from ecom.extensions import db


@dataclass(frozen=True)
class RowWrite:
    """One row of ``table`` (``values``: every column that is not filled in by the database),
    and what its owner does once it is written."""

    table: Table
    values: dict
    written: Callable[[], None] | None = None

    def insert(self) -> None:
        """Write the row with a statement of its own."""
        db.session.execute(_plain_insert(self.table), self.values)
        self.done()

    def done(self) -> None:
        """The row was written (by ``insert`` or along another statement)."""
        if self.written is not None:
            self.written()


@cache
def _plain_insert(table: Table):
    return insert(table)
