"""SQL helpers for the commerce package."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from functools import cache

from sqlalchemy import Numeric, Table, bindparam, insert, inspect
from sqlalchemy.orm import make_transient_to_detached
from sqlalchemy.orm.instrumentation import manager_of_class

from ecom.cache_versions import WRITES
from ecom.extensions import db
from ecom.row_writes import RowWrite
from ecom.unit_of_work import after_rollback


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
    """``insert_or_nothing`` for ``dialect`` without its values: built once, run with parameters.
    ``model`` may be a table: then it runs as a plain Core INSERT, not the ORM's bulk insert."""
    if dialect == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    else:
        from sqlalchemy.dialects.sqlite import insert
    return insert(model).on_conflict_do_nothing(index_elements=unique)


def insert_unless_exists(model, **values) -> bool:
    """``INSERT ... ON CONFLICT DO NOTHING``; True when this call inserted the row."""
    key = list(model.__table__.primary_key.columns)
    return db.session.execute(insert_or_nothing(model, values).returning(*key)).first() is not None


@dataclass(frozen=True)
class _Column:
    """How ``insert_persistent`` fills one column: its attribute, its Python default, the
    scale PostgreSQL would round a Decimal to."""

    name: str
    attribute: str
    default: Callable[[], object] | None
    scale: Decimal | None

    def value(self, row: dict):
        value = row[self.name] if self.name in row else (self.default() if self.default else None)
        if self.scale is not None and isinstance(value, Decimal):
            return value.quantize(self.scale, rounding=ROUND_HALF_UP)  # as the column stores it
        return value


@cache
def _columns(model) -> tuple[_Column, ...]:
    mapper = inspect(model)
    columns = []
    for column in model.__table__.c:
        if column.primary_key:
            continue
        default = column.default
        if default is not None and default.is_callable:
            make = (lambda fn: lambda: fn(None))(default.arg)
        elif default is not None and default.is_scalar:
            make = (lambda constant: lambda: constant)(default.arg)
        elif default is None and column.server_default is None:
            make = None
        else:
            raise TypeError(f"{column}: insert_persistent fills in Python defaults only")
        scale = (Decimal(1).scaleb(-column.type.scale)
                 if isinstance(column.type, Numeric) and column.type.scale is not None else None)
        columns.append(_Column(column.name, mapper.get_property_by_column(column).key, make, scale))
    return tuple(columns)


def insert_persistent(model, rows: list[dict], statement=None, *, along: tuple[RowWrite, ...] = ()) -> list:
    """Insert ``rows`` of ``model`` (default statement: a plain INSERT) returning only their
    ids; the objects are built from the values written (Python column defaults filled in,
    Decimals rounded to their column's scale) and added to the session as persistent and
    unchanged, as if loaded: no unit of work, and no result columns to turn into objects,
    for rows every checkout writes. The objects come back in ``rows``' order; one row that
    the statement did not insert (``ON CONFLICT DO NOTHING``) gives an empty list.
    Relationships are not loaded (the caller sets what it knows with ``set_committed_value``).
    A rollback of the transaction takes them out of the session again.

    ``along``: rows other services built (``RowWrite``), written in the same statement on
    PostgreSQL (data-modifying CTEs: one round trip) when ``rows`` is one row and
    ``statement`` is the plain INSERT, else each with a statement of its own after it."""
    columns = _columns(model)
    written = [{column.name: column.value(row) for column in columns} for row in rows]
    in_one = (bool(along) and len(written) == 1 and statement is None
              and db.session.get_bind().dialect.name == "postgresql")
    if in_one:
        shapes = tuple((row.table, tuple(row.values)) for row in along)
        params = dict(written[0])
        for number, row in enumerate(along):
            params.update({f"along{number}_{name}": value for name, value in row.values.items()})
        ids = [db.session.execute(_returning_id_with(model, shapes), params,
                                  execution_options={WRITES: _tables_written(model, shapes)}).scalar_one()]
    elif len(written) == 1:
        new_id = db.session.execute(_returning_id(model, statement, many=False), written[0]).scalar()
        ids = [] if new_id is None else [new_id]
    else:
        ids = list(db.session.scalars(_returning_id(model, statement, many=True), written))
    for row in along:
        if in_one:
            row.done()
        else:
            row.insert()
    manager = manager_of_class(model)
    key = _primary_key(model).key
    objects = []
    for values, new_id in zip(written[:len(ids)], ids, strict=True):
        # As a query loads a row: the values straight into the new instance's state, no
        # attribute events; make_transient_to_detached then records them as loaded.
        instance = manager.new_instance()
        instance.__dict__.update({column.attribute: values[column.name] for column in columns})
        instance.__dict__[key] = new_id
        make_transient_to_detached(instance)
        db.session.add(instance)
        objects.append(instance)
    # The session takes them for rows that were there before its transaction: a rollback would
    # only expire them, leaving objects of rows that never were (whose ids SQLite hands out again).
    session = db.session()
    after_rollback(lambda: [session.expunge(instance) for instance in objects if instance in session])
    return objects


def _primary_key(model):
    return model.__table__.primary_key.columns.values()[0]


@cache
def _returning_id(model, statement, *, many: bool):
    """``statement`` (None: a plain INSERT into ``model``) returning the new rows' ids, built once."""
    statement = insert(model.__table__) if statement is None else statement
    return statement.returning(_primary_key(model), sort_by_parameter_order=many)


@cache
def _returning_id_with(model, shapes: tuple[tuple[Table, tuple[str, ...]], ...]):
    """A plain INSERT into ``model`` returning the new row's id, with an INSERT of each shape
    (table, columns) as a data-modifying CTE before it (PostgreSQL runs every one), built once."""
    ctes = [insert(table).values({name: bindparam(f"along{number}_{name}", type_=table.c[name].type)
                                  for name in names}).cte(f"along{number}")
            for number, (table, names) in enumerate(shapes)]
    return insert(model.__table__).add_cte(*ctes).returning(_primary_key(model))


@cache
def _tables_written(model, shapes) -> tuple[str, ...]:
    # Named for the cache versions: the statement's own table alone would hide the CTEs' ones.
    return (model.__table__.name, *(table.name for table, _ in shapes))
