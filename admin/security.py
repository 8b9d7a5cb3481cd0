"""Who may see and change what in the back office: the roles table of domain.md, once."""

from __future__ import annotations

from enum import StrEnum

from flask import abort, redirect, request, url_for
from flask_login import current_user

from ecom.actor import Actor
from ecom.identity.models import Role


class Access(StrEnum):
    READ = "read"
    ADJUST = "adjust"  # warehouse on inventory: stock counts only, through adjust_stock
    EDIT = "edit"


class Area(StrEnum):
    DASHBOARD = "dashboard"
    CATALOG = "catalog"  # categories, products, images, variants, reviews
    INVENTORY = "inventory"  # inventory, stock movements, reservations
    STORES = "stores"
    FULFILLMENT = "fulfillment"
    ORDERS = "orders"
    ADMINISTRATION = "administration"  # users and roles, audit log, jobs, notifications


ROLE_ACCESS: dict[Area, dict[Role, Access]] = {
    Area.DASHBOARD: {Role.ADMIN: Access.READ, Role.MERCHANDISER: Access.READ, Role.WAREHOUSE: Access.READ},
    Area.CATALOG: {Role.ADMIN: Access.EDIT, Role.MERCHANDISER: Access.EDIT, Role.WAREHOUSE: Access.READ},
    Area.INVENTORY: {Role.ADMIN: Access.EDIT, Role.MERCHANDISER: Access.EDIT, Role.WAREHOUSE: Access.ADJUST},
    Area.STORES: {Role.ADMIN: Access.EDIT, Role.MERCHANDISER: Access.EDIT, Role.WAREHOUSE: Access.READ},
    Area.FULFILLMENT: {Role.ADMIN: Access.EDIT, Role.MERCHANDISER: Access.READ, Role.WAREHOUSE: Access.EDIT},
    Area.ORDERS: {Role.ADMIN: Access.EDIT, Role.MERCHANDISER: Access.READ, Role.WAREHOUSE: Access.READ},
    Area.ADMINISTRATION: {Role.ADMIN: Access.EDIT},
}


def access_of(area: Area, user=None) -> Access | None:
    """The signed-in (or given) user's access to ``area``; None if none at all."""
    user = user if user is not None else current_user
    if not getattr(user, "is_authenticated", False) or not getattr(user, "is_active", False):
        return None
    try:
        role = Role(user.role)
    except ValueError:
        return None
    return ROLE_ACCESS[area].get(role)


def can_read(area: Area) -> bool:
    return access_of(area) is not None


def can_edit(area: Area) -> bool:
    return access_of(area) == Access.EDIT


def can_adjust(area: Area) -> bool:
    return access_of(area) in (Access.EDIT, Access.ADJUST)


def current_actor() -> Actor:
    return Actor.of_user(current_user)


def refuse():
    """Anonymous visitors go to the sign-in page; signed-in users without the right get 403."""
    if not current_user.is_authenticated:
        return redirect(url_for("admin.login_view", next=request.full_path.rstrip("?")))
    return abort(403)


def load_user(user_id: str):
    from ecom.extensions import db
    from ecom.identity.models import User

    try:
        user = db.session.get(User, int(user_id))
    except (TypeError, ValueError):
        return None
    return user if user is not None and user.is_active else None


def init_login(app) -> None:
    from ecom.extensions import login_manager

    # The API authenticates by token; the session-cookie loader is the back office's.
    if login_manager._user_callback is None:
        login_manager.user_loader(load_user)
    login_manager.login_view = "admin.login_view"
