"""Base classes every back-office view builds on: role walls, audit log, error flashing,
and the one unit of work every back-office change commits through."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from flask import abort, flash
from flask_admin import BaseView
from flask_admin.actions import action
from flask_admin.babel import gettext, lazy_gettext, ngettext
from flask_admin.contrib.sqla import ModelView, tools
from sqlalchemy import func, select

from admin.security import Access, Area, access_of, current_actor, refuse
from ecom.audit.services import record_change
from ecom.catalog.services import snapshot
from ecom.errors import EcomError, ValidationFailed
from ecom.extensions import db
from ecom.unit_of_work import unit_of_work as ecom_unit_of_work

log = logging.getLogger(__name__)

# View functions that change data; a read-only role gets 403 on them.
WRITE_VIEWS = frozenset({"create_view", "edit_view", "delete_view", "action_view", "ajax_update"})
MODEL_CAPABILITY = {"create_view": "can_create", "edit_view": "can_edit", "delete_view": "can_delete"}
# Never written to the audit log.
SECRET_FIELDS = frozenset({"hashed_password", "content"})


def flash_error(exc: EcomError) -> None:
    message = exc.message
    if isinstance(exc, ValidationFailed) and exc.errors:
        details = "; ".join(f"{field}: {' '.join(msgs)}" for field, msgs in exc.errors.items())
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


class StaffModelView(RoleWalled, ModelView):
    """A model list/form behind the role wall that audits every write and flashes domain errors."""

    page_size = 20
    can_set_page_size = True
    can_view_details = True
    # Read-only unless the role may edit this area (see the properties below).
    _can_create = True
    _can_edit = True
    _can_delete = True
    audit_entity: str | None = None
    # For lists that grow without bound: count the matches only up to this many; past it the
    # pager offers previous / next alone. An exact count(*) of a million orders costs ~100 ms
    # on every page view and grows with the table; this one stops after count_limit + 1 rows.
    count_limit: int | None = None

    def __init__(self, model, session=None, **kwargs):
        # The db object, not db.session: the session is looked up on every use.
        super().__init__(model, session or db, **kwargs)

    # -- listing
    @property
    def simple_list_pager(self):
        # True: Flask-Admin runs no count of its own (get_list below counts, up to the limit).
        return self.count_limit is not None

    def get_list(self, page, sort_column, sort_desc, search, filters, execute=True, page_size=None):
        count, rows = super().get_list(page, sort_column, sort_desc, search, filters, execute, page_size)
        if self.count_limit is not None and execute:
            count = self._count_up_to(self.count_limit, search, filters)
        return count, rows

    def _count_up_to(self, limit: int, search, filters) -> int | None:
        """The number of rows matching the search and filters; None when more than ``limit``."""
        _, query = super().get_list(None, None, False, search, filters, execute=False, page_size=0)
        key = self.model.__mapper__.primary_key[0]
        matches = query.with_entities(key).order_by(None).limit(limit + 1).subquery()
        count = db.session.scalar(select(func.count()).select_from(matches))
        return count if count <= limit else None

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

    # -- errors: a user's mistake is a message, never a 500
    def handle_view_exception(self, exc):
        if isinstance(exc, EcomError):
            flash_error(exc)
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
                flash(gettext(failure, error=str(exc)), "error")
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

    def delete_model(self, model):
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
                      model.id, before, self._audit_snapshot(model))

    def prepare_model(self, model, is_created: bool) -> None:
        """Hook: run the domain's normalisation (slugs, SKUs, price range) before the save."""

    def on_model_delete(self, model):
        record_change(current_actor(), "delete", self.entity_name, model.id,
                      self._audit_snapshot(model), None)


class ReadOnlyModelView(StaffModelView):
    """A ledger or log: listing and details only."""

    _can_create = False
    _can_edit = False
    _can_delete = False
