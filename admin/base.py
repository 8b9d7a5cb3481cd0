"""Base classes every back-office view builds on: role walls, audit log, error flashing,
and the one unit of work every back-office change commits through."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation

from flask import Flask, abort, flash, g, request
from flask_admin import BaseView, expose
from flask_admin.actions import action
from flask_admin.babel import gettext, lazy_gettext, ngettext
from flask_admin.contrib.sqla import ModelView, tools
from sqlalchemy import BigInteger, Integer, Numeric, and_, false, func, literal, or_, select, text, union_all
from sqlalchemy.exc import DataError, IntegrityError, SQLAlchemyError
from sqlalchemy.sql import operators
from sqlalchemy.sql.elements import UnaryExpression

from admin.formatting import DETAIL_FORMATTERS, LIST_FORMATTERS
from admin.security import Access, Area, access_of, current_actor, refuse
from ecom.audit.services import record_change
from ecom.catalog.services import snapshot
from ecom.db import fits_numeric, storable_text
from ecom.errors import EcomError, ValidationFailed
from ecom.extensions import db
from ecom.unit_of_work import unit_of_work as ecom_unit_of_work
from shop.input_guard import MAX_DB_INTEGER, all_storable, db_id

log = logging.getLogger(__name__)

# View functions that change data; a read-only role gets 403 on them.
WRITE_VIEWS = frozenset({"create_view", "edit_view", "delete_view", "action_view", "ajax_update"})
MODEL_CAPABILITY = {"create_view": "can_create", "edit_view": "can_edit", "delete_view": "can_delete"}
# Never written to the audit log.
SECRET_FIELDS = frozenset({"hashed_password", "content"})
# The CSV import's upload limit; every other back-office request keeps MAX_CONTENT_LENGTH.
MAX_IMPORT_BYTES = 20 * 1024 * 1024
IMPORT_ENDPOINT = "product.import_view"
MULTIPART_OVERHEAD_BYTES = 64 * 1024
# Past this page a list has nothing to show, and page x page size would overflow an OFFSET.
MAX_LIST_PAGE = 100_000
# Query and form values naming row ids: each must be an id an INTEGER key can hold.
ID_ARGS = ("id", "rowid", "list_form_pk")
# What the database said is never shown: it holds SQL and data. These say what went wrong.
DB_ERROR_MESSAGES = [
    (IntegrityError, "The change conflicts with existing data (a duplicate, or a row still in use)."),
    (DataError, "A value is out of range or not allowed here."),
    (SQLAlchemyError, "The database refused the change."),
]


def database_error_message(exc: SQLAlchemyError) -> str:
    """A message for the back office about a database error; its details go to the log."""
    log.warning("database error in the back office: %s", exc.__class__.__name__, exc_info=exc)
    return next(message for kind, message in DB_ERROR_MESSAGES if isinstance(exc, kind))


# -- the one guard of what a back-office request carries (path, query, form), before any view


def init_guards(app: Flask, view_endpoints: set[str]) -> None:
    """Register the back office's request guards on ``app``.

    The upload limit goes first among the app's before-request functions: CSRF protection
    reads the form (and so the body) in its own, earlier one.
    """
    app.before_request_funcs.setdefault(None, []).insert(0, _allow_import_upload)

    @app.before_request
    def guard_backoffice_input():
        if request.blueprint in view_endpoints:
            refuse_unusable_input()


def _allow_import_upload():
    if request.endpoint == IMPORT_ENDPOINT:
        request.max_content_length = MAX_IMPORT_BYTES + MULTIPART_OVERHEAD_BYTES
    else:
        from admin.views.product_media import UPLOAD_ENDPOINTS, upload_request_limit

        if request.endpoint in UPLOAD_ENDPOINTS:
            from flask import current_app

            request.max_content_length = upload_request_limit(current_app)


def refuse_unusable_input() -> None:
    """404 for a path or id naming no row, 400 for text no column can store or a page past the end.

    Text: NUL bytes and lone surrogates anywhere in the path, query or form. Ids: ``id``,
    ``rowid``, ``list_form_pk`` and each of the comma-separated ``ids`` must fit an INTEGER key.
    """
    for value in (request.view_args or {}).values():
        if isinstance(value, int) and not 0 <= value <= MAX_DB_INTEGER:
            abort(404)
        if isinstance(value, str) and not storable_text(value):
            abort(404)
    for source in (request.args, request.form):
        for name, values in source.lists():
            if not storable_text(name) or not all_storable(values):
                abort(400, description="The request holds characters that are not allowed.")
    for name in ID_ARGS:
        for value in request.args.getlist(name) + request.form.getlist(name):
            if db_id(value) is None:
                abort(404)
    ids = request.args.get("ids")
    if ids is not None and any(db_id(part) is None for part in ids.split(",") if part.strip()):
        abort(404)
    page = request.args.get("page")
    if page is not None and (db_id(page) is None or db_id(page) > MAX_LIST_PAGE):
        abort(404, description="No such page.")


def _filter_value_fits(column, value: str) -> bool:
    """False for a number the filtered column cannot hold (NaN, infinite, out of its range)."""
    column_type = getattr(column, "type", None)
    if not isinstance(column_type, Integer | Numeric):
        return True
    for part in value.split(","):
        try:
            number = Decimal(part.strip())
        except InvalidOperation:
            continue  # not a number: Flask-Admin's own validation refuses it
        if isinstance(column_type, Integer):
            if not number.is_finite() or not -MAX_DB_INTEGER <= number <= MAX_DB_INTEGER:
                return False
        elif not fits_numeric(number, precision=column_type.precision or 38,
                                  scale=column_type.scale or 0):
            return False
    return True


def flash_error(exc: EcomError) -> None:
    message = exc.message
    if isinstance(exc, ValidationFailed) and exc.errors:
        # One message per error: details the message says already are not repeated.
        details = "; ".join(f"{field}: {' '.join(fresh)}" for field, msgs in exc.errors.items()
                            if (fresh := [m for m in msgs if m not in message]))
        if details:
            message = f"{message} ({details})"
    flash(message, "error")


@dataclass
class Outcome:
    ok: bool = False


@contextmanager
def unit_of_work() -> Iterator[Outcome]:
    """One commit for a back-office action; a domain error is rolled back and flashed.

    ``outcome.ok`` tells the caller, after the block, whether the change was committed.
    """
    outcome = Outcome()
    try:
        with ecom_unit_of_work():
            yield outcome
        outcome.ok = True
    except EcomError as exc:
        flash_error(exc)
    except (IntegrityError, DataError) as exc:
        # A value the checks let through that the database refused: rolled back, and said so
        # without the SQL.
        flash(database_error_message(exc), "error")


class RoleWalled:
    """Mixin: visible and reachable only for roles with access to ``area``."""

    area: Area = Area.ADMINISTRATION
    # The access needed to change things here (ADJUST lets the warehouse through on inventory).
    write_access: tuple[Access, ...] = (Access.EDIT,)

    def is_accessible(self) -> bool:
        return access_of(self.area) is not None

    def is_visible(self) -> bool:
        return self.is_accessible()

    def inaccessible_callback(self, name, **kwargs):
        return refuse()

    def may_write(self) -> bool:
        return access_of(self.area) in self.write_access

    def _handle_view(self, name, **kwargs):
        refused = super()._handle_view(name, **kwargs)
        if refused is not None:
            return refused
        if name in WRITE_VIEWS and not self.may_write():
            abort(403)
        if not getattr(self, MODEL_CAPABILITY.get(name, "_"), True):
            abort(403)  # a ledger or queue that nobody creates or edits rows of by hand
        return None


class StaffView(RoleWalled, BaseView):
    """A custom page (dashboard widgets, jobs) behind the role wall."""


def prefix_range(column, start: str):
    """``column`` is ``start`` or begins with it, as a range its B-tree index serves (a LIKE
    prefix is not index-served under a C.UTF-8 collation; ILIKE '%term%' reads every row).

    For generated identifiers (order, RMA numbers, voucher codes) of letters, digits and
    dashes, every one of which sorts below "~"; any other text matches nothing.
    """
    if not (start and all(c.isascii() and (c.isalnum() or c == "-") for c in start)):
        return false()
    return and_(column >= start, column < f"{start}~", column.like(f"{start}%"))


def identifier_start(search: str, implied: str) -> str:
    """The start of an identifier as typed (any case, with or without its ``implied`` prefix)."""
    start = search.strip().upper()
    return start if start.startswith(implied) else implied + start


def _searched(condition, query, count_query, joins, count_joins):
    """Flask-Admin's ``_apply_search`` answer for a search that is ``condition``: the list and
    its count both filtered by it."""
    query = query.filter(condition)
    if count_query is not None:
        count_query = count_query.filter(condition)
    return query, count_query, joins, count_joins


class PrefixSearch:
    """The search box finds rows whose ``prefix_search_field`` is the term or starts with it.

    For generated identifiers (voucher codes, RMA numbers): a clerk types one, or its start,
    which the column's unique index serves as a range (``prefix_range``).
    """

    prefix_search_field = ""  # the model attribute searched
    prefix_search_implied = ""  # tried before the term when the term does not start with it
    search_placeholder_text = "Number, or how it starts"

    def search_placeholder(self):
        return self.search_placeholder_text

    def _apply_search(self, query, count_query, joins, count_joins, search):
        column = getattr(self.model, self.prefix_search_field)
        condition = prefix_range(column, identifier_start(search, self.prefix_search_implied))
        return _searched(condition, query, count_query, joins, count_joins)


class ExactFirstSearch:
    """The search box looks for the term typed whole first, each way over a B-tree, and
    searches inside the columns (Flask-Admin's ILIKE '%term%' on ``column_searchable_list``)
    only when nothing matched that way.

    ILIKE '%term%' is served by trigram indexes, whose posting lists are as long as the table
    for the trigrams every email or order number shares (``@example.com``, ``ORD-``): seconds
    of index reading at a million orders for the one order a clerk pasted. Typed whole:
    - an identifier (``exact_search_codes``): the term, or how it starts (``prefix_range``),
      with ``exact_search_code_implied`` put before a term that does not start with it;
    - an email (``exact_search_emails``): the same email in any case (an index on lower());
    - anything else (``exact_search_equals``): the term as typed or in capitals.
    A term found that way hides the rows that only contain it ("ann@shop.example" does not
    list "joann@shop.example"); any other term is searched inside the columns as before.
    """

    exact_search_codes: tuple[str, ...] = ()
    exact_search_code_implied = ""
    exact_search_emails: tuple[str, ...] = ()
    exact_search_equals: tuple[str, ...] = ()

    def _exact_condition(self, term: str):
        """The OR of the ways ``term`` can be typed whole; None when it cannot (spaces, empty)."""
        if not term or any(c.isspace() for c in term):
            return None
        model = self.model
        start = identifier_start(term, self.exact_search_code_implied)
        ways = [prefix_range(getattr(model, name), start) for name in self.exact_search_codes]
        ways += [func.lower(getattr(model, name)) == func.lower(term) for name in self.exact_search_emails]
        as_typed = list(dict.fromkeys((term, term.upper())))
        ways += [getattr(model, name).in_(as_typed) for name in self.exact_search_equals]
        return or_(*ways) if ways else None

    def _matches_exactly(self, term: str, condition) -> bool:
        """Whether any row has ``term`` typed whole; asked once per request (the list and its
        count both search)."""
        key = (self.endpoint, term)
        answers = g.setdefault("exact_search_matches", {})
        if key not in answers:
            key_column = self.model.__mapper__.primary_key[0]
            answers[key] = db.session.scalar(select(key_column).where(condition).limit(1)) is not None
        return answers[key]

    def _apply_search(self, query, count_query, joins, count_joins, search):
        term = search.strip()
        condition = self._exact_condition(term)
        if condition is None or not self._matches_exactly(term, condition):
            return super()._apply_search(query, count_query, joins, count_joins, search)
        return _searched(condition, query, count_query, joins, count_joins)


class StaffModelView(RoleWalled, ModelView):
    """A model list/form behind the role wall that audits every write and flashes domain errors."""

    page_size = 20
    can_set_page_size = True
    # Money with its currency sign, times to the minute in the user's zone (admin.formatting).
    column_type_formatters = LIST_FORMATTERS
    column_type_formatters_detail = DETAIL_FORMATTERS
    can_view_details = True
    # Read-only unless the role may edit this area (see the properties below).
    _can_create = True
    _can_edit = True
    _can_delete = True
    audit_entity: str | None = None
    # Every list counts its matches only up to this many; past it the pager offers previous /
    # next alone and the tab says "more than 10,000" (or, for a whole table on PostgreSQL, the
    # planner's estimate: "about 1,000,000"). An exact count(*) of a million orders costs
    # ~100 ms on every page view and grows with the table; this one stops after count_limit + 1
    # rows. None: Flask-Admin's exact count.
    count_limit: int | None = 10_000

    def __init__(self, model, session=None, **kwargs):
        # The db object, not db.session: the session is looked up on every use.
        super().__init__(model, session or db, **kwargs)

    # -- listing
    def _get_filter_groups(self):
        # Flask-Admin asks a filter for its choices once, at start-up, before any database is at
        # hand: a filter whose choices are rows (stock locations) would render as a bare text box
        # wanting an id. Such a filter (``options_from_database``) is asked again on every list.
        groups = super()._get_filter_groups()
        for items in (groups or {}).values():
            for item in items:  # copies (non_lazy), so this request's alone
                flt = self._filters[item["index"]]
                if getattr(flt, "options_from_database", False):
                    item["options"] = [(key, str(label)) for key, label in flt.get_options(self)] or None
        return groups

    @property
    def simple_list_pager(self):
        # True: Flask-Admin runs no count of its own (get_list below counts, up to the limit).
        return self.count_limit is not None

    def get_list(self, page, sort_column, sort_desc, search, filters, execute=True, page_size=None):
        count, rows = super().get_list(page, sort_column, sort_desc, search, filters, execute, page_size)
        if self.count_limit is not None and execute:
            size = self.page_size if page_size is None else page_size
            if not page and size and len(rows) < size:
                count = len(rows)  # a first page that is not full holds every match: no count
            else:
                count = self._count_up_to(self.count_limit, search, filters)
        return count, rows

    def _count_up_to(self, limit: int, search, filters) -> int | None:
        """The number of rows matching the search and filters; None when more than ``limit``
        (then ``g.list_count_label`` says how many, as well as it can without counting)."""
        _, query = super().get_list(None, None, False, search, filters, execute=False, page_size=0)
        key = self.model.__mapper__.primary_key[0]
        matches = query.with_entities(key).order_by(None).limit(limit + 1).subquery()
        count = db.session.scalar(select(func.count()).select_from(matches))
        if count <= limit:
            return count
        estimate = self._estimated_rows() if query.whereclause is None else None
        g.list_count_label = (f"about {estimate:,}" if estimate is not None and estimate > limit
                              else f"more than {limit:,}")
        return None

    def _estimated_rows(self) -> int | None:
        """The planner's row estimate of the whole table (kept by VACUUM / ANALYZE); None off
        PostgreSQL or before the table was first analysed."""
        if db.session.get_bind().dialect.name != "postgresql":
            return None
        estimate = db.session.scalar(select(func.cast(text("reltuples"), BigInteger))
                                     .select_from(text("pg_class"))
                                     .where(text("oid = CAST(:table AS regclass)"))
                                     .params(table=self.model.__table__.name))
        return int(estimate) if estimate is not None and estimate >= 0 else None

    def render(self, template, **kwargs):
        # Over the count limit the list tab says how many it can ("List (more than 10,000)").
        if template == self.list_template and kwargs.get("count") is None and "list_count_label" in g:
            kwargs["count"] = g.list_count_label
        return super().render(template, **kwargs)

    def _apply_sorting(self, query, joins, sort_column, sort_desc):
        query, joins = super()._apply_sorting(query, joins, sort_column, sort_desc)
        key = self.model.__mapper__.primary_key
        if len(key) != 1:
            return query, joins
        if sort_column is None:
            default = list(self._get_default_order())
            if default and default[-1][0] is key[0]:
                return query, joins  # already ends in the key
            sort_desc = default[-1][2] if default else False
        # Rows that tie on the sort column need a fixed order, or pages repeat and skip them.
        # In the sort's direction, so that an index ending in the key serves both.
        return query.order_by(key[0].desc() if sort_desc else key[0].asc()), joins

    def _apply_pagination(self, query, page, page_size):
        page_size = self.page_size if page_size is None else page_size
        key = self.model.__mapper__.primary_key
        if not (page and page_size) or len(key) != 1:
            return super()._apply_pagination(query, page, page_size)
        # A later page skips page x page_size rows. Skip them over the keys alone - an index
        # holding the sort column and the key (ix_orders_created_id) gives those without
        # reading the table - then load the page's rows by key, in the same order.
        keys = query.with_entities(key[0]).limit(page_size).offset(page * page_size).subquery()
        return query.filter(key[0].in_(select(keys.c[0]))).limit(page_size)

    # Flask-Admin reads these as attributes; answering per request hides buttons a role may not use.
    @property
    def can_create(self):
        return self._can_create and self.may_write()

    @can_create.setter
    def can_create(self, value):
        self._can_create = value

    @property
    def can_edit(self):
        return self._can_edit and self.may_write()

    @can_edit.setter
    def can_edit(self, value):
        self._can_edit = value

    @property
    def can_delete(self):
        return self._can_delete and self.may_write()

    @can_delete.setter
    def can_delete(self, value):
        self._can_delete = value

    def is_action_allowed(self, name):
        return self.may_write() and super().is_action_allowed(name)

    def _get_list_filter_args(self):
        filters = super()._get_list_filter_args()
        if not filters:
            return filters
        kept = []
        for idx, name, value in filters:
            if _filter_value_fits(getattr(self._filters[idx], "column", None), value):
                kept.append((idx, name, value))
            else:
                flash(f"The filter value {value!r} is out of range; the filter was ignored.", "error")
        return kept

    # -- errors: a user's mistake is a message, never a 500 (and never the database's SQL)
    def handle_view_exception(self, exc):
        if isinstance(exc, EcomError):
            flash_error(exc)
            return True
        if isinstance(exc, IntegrityError | DataError):
            flash(database_error_message(exc), "error")
            return True
        return super().handle_view_exception(exc)

    # -- audit
    @property
    def entity_name(self) -> str:
        return self.audit_entity or self.model.__tablename__

    def _audit_snapshot(self, model) -> dict:
        return {k: v for k, v in snapshot(model).items() if k not in SECRET_FIELDS}

    # -- saving: Flask-Admin's create/update/delete commit the session themselves; these do the
    # same steps inside ecom's unit of work, so a form save commits (and runs its after-commit
    # work) like every other back-office change.
    def _save(self, work: Callable[[], object], failure: str) -> bool:
        """Run ``work`` in one unit of work; on any error it is rolled back and flashed."""
        try:
            with ecom_unit_of_work():
                work()
        except Exception as exc:
            if not self.handle_view_exception(exc):
                flash(gettext(failure, error="See the server log for details."), "error")
                log.exception("Failed to save %s.", self.entity_name)
            return False
        return True

    def create_model(self, form):
        model = self.build_new_instance()

        def create():
            form.populate_obj(model)
            db.session.add(model)
            self._on_model_change(form, model, True)

        if not self._save(create, "Failed to create record. %(error)s"):
            return False
        self.after_model_change(form, model, True)
        return model

    def update_model(self, form, model):
        self._before = self._audit_snapshot(model)

        def update():
            form.populate_obj(model)
            self._on_model_change(form, model, False)

        if not self._save(update, "Failed to update record. %(error)s"):
            return False
        self.after_model_change(form, model, False)
        return True

    # -- deleting what history refers to: explained, with the way out, never a database error
    def delete_refusal(self, model):
        """Hook: an ``ecom.catalog.deletion.Refusal`` when ``model`` must not be deleted."""
        return None

    def way_out_url(self, model, refusal) -> str | None:
        """Hook: where the refusal page's way out (deactivate, move) is done."""
        return None

    @expose("/delete/", methods=("POST",))
    def delete_view(self):
        response = super().delete_view()
        refused = g.pop("delete_refused", None)
        if refused is None:
            return response
        model, refusal = refused
        return self.render("admin/cannot_delete.html", model=model, refusal=refusal,
                           way_out_url=self.way_out_url(model, refusal))

    def delete_model(self, model):
        refusal = self.delete_refusal(model)
        if refusal is not None:
            g.delete_refused = (model, refusal)
            return False
        if not self._save(lambda: self.remove_model(model), "Failed to delete record. %(error)s"):
            return False
        self.after_model_delete(model)
        return True

    def remove_model(self, model) -> None:
        """Delete ``model`` (inside the unit of work); a view may call its domain's service instead."""
        self.on_model_delete(model)
        db.session.flush()
        db.session.delete(model)
        db.session.flush()

    def _rows_of(self, ids) -> list:
        """The rows the list's checkboxes named (ids arrive as text)."""
        key = self.model.__mapper__.primary_key
        if len(key) != 1:
            return tools.get_query_for_ids(self.get_query(), self.model, ids).all()
        # Typed, or PostgreSQL refuses to compare an integer key with text.
        wanted = [key[0].type.python_type(i) for i in ids]
        return self.get_query().filter(key[0].in_(wanted)).order_by(key[0]).all()

    @action("delete", lazy_gettext("Delete"),
            lazy_gettext("Are you sure you want to delete selected records?"))
    def action_delete(self, ids):
        """The bulk delete: every selected row or, when one cannot go, none of them."""
        deleted: list = []
        refusals = [refusal for model in self._rows_of(ids)
                    if (refusal := self.delete_refusal(model)) is not None]
        if refusals:
            for refusal in refusals:
                flash(refusal.message, "error")
            flash("Nothing was deleted.", "error")
            return

        def remove_all():
            for model in self._rows_of(ids):
                self.remove_model(model)
                deleted.append(model)

        if self._save(remove_all, "Failed to delete records. %(error)s"):
            for model in deleted:
                self.after_model_delete(model)
            flash(ngettext("Record was successfully deleted.",
                           "%(count)s records were successfully deleted.",
                           len(deleted), count=len(deleted)), "success")

    def on_model_change(self, form, model, is_created):
        self.prepare_model(model, is_created)
        db.session.flush()
        before = None if is_created else getattr(self, "_before", None)
        record_change(current_actor(), "create" if is_created else "update", self.entity_name,
                      model.id, before, self._audit_snapshot(model), label=str(model))

    def prepare_model(self, model, is_created: bool) -> None:
        """Hook: run the domain's normalisation (slugs, SKUs, price range) before the save."""

    def on_model_delete(self, model):
        record_change(current_actor(), "delete", self.entity_name, model.id,
                      self._audit_snapshot(model), None, label=str(model))


def ranked_page(query, rank_column, ranks: dict[str, int], then: list, page: int | None, page_size: int):
    """``query`` limited to page ``page`` of its rows in the order (rank of ``rank_column``'s
    value, then the ``then`` columns), without sorting every row.

    A rank computed from a column (failures first, open work first) is held by no index, so
    ``ORDER BY CASE ...`` sorts every matching row for a page of 20. Here each value's rows
    are read in the ``then`` order off an index that starts with the column (``(status,
    created_at, id)``), at most as many as the page needs (each stops after offset + page
    size), and only those are sorted by rank. ``ranks`` must name every value the column can
    hold; ``then`` ends in the primary key.
    """
    key = query.column_descriptions[0]["entity"].__mapper__.primary_key[0]
    wanted = ((page or 0) + 1) * page_size
    columns = [column.element if _is_desc(column) else column for column in then]
    branches = []
    for value, rank in ranks.items():
        # Its own subquery: a member of a UNION may not carry ORDER BY / LIMIT on SQLite.
        branch = (query.order_by(None).filter(rank_column == value)
                  .with_entities(*(column.label(f"c{i}") for i, column in enumerate(columns)))
                  .order_by(*then).limit(wanted).subquery())
        branches.append(select(literal(rank, Integer).label("rank"), *branch.c))
    merged = union_all(*branches).subquery()
    order = [merged.c.rank] + [merged.c[f"c{i}"].desc() if _is_desc(column) else merged.c[f"c{i}"]
                               for i, column in enumerate(then)]
    keys = (select(merged.c[f"c{len(columns) - 1}"]).order_by(*order)
            .limit(page_size).offset((page or 0) * page_size))
    return query.filter(key.in_(keys)).limit(page_size)


def _is_desc(column) -> bool:
    return isinstance(column, UnaryExpression) and column.modifier is operators.desc_op


class ReadOnlyModelView(StaffModelView):
    """A ledger or log: listing and details only."""

    _can_create = False
    _can_edit = False
    _can_delete = False
