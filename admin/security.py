"""Who may see and change what in the back office: the roles table of domain.md, once."""

from __future__ import annotations

import time
from enum import StrEnum

from flask import abort, redirect, request, session, url_for
from flask_login import current_user, login_user, logout_user

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
    LOCATIONS = "locations"  # stock locations (commerce-v2 §6)
    STOCKROOM = "stockroom"  # transfers, purchase orders, receiving (commerce-v2 §6)
    FULFILLMENT = "fulfillment"
    ORDERS = "orders"
    ADMINISTRATION = "administration"  # users and roles, audit log, jobs, notifications
    TAX_SHIPPING = "tax_shipping"  # tax classes and rates, shipping zones and methods
    PROMOTIONS = "promotions"  # sales, vouchers and their generated codes


ROLE_ACCESS: dict[Area, dict[Role, Access]] = {
    Area.DASHBOARD: {Role.ADMIN: Access.READ, Role.MERCHANDISER: Access.READ, Role.WAREHOUSE: Access.READ},
    Area.CATALOG: {Role.ADMIN: Access.EDIT, Role.MERCHANDISER: Access.EDIT, Role.WAREHOUSE: Access.READ},
    Area.INVENTORY: {Role.ADMIN: Access.EDIT, Role.MERCHANDISER: Access.EDIT, Role.WAREHOUSE: Access.ADJUST},
    Area.STORES: {Role.ADMIN: Access.EDIT, Role.MERCHANDISER: Access.EDIT, Role.WAREHOUSE: Access.READ},
    Area.LOCATIONS: {Role.ADMIN: Access.EDIT, Role.MERCHANDISER: Access.READ, Role.WAREHOUSE: Access.READ},
    Area.STOCKROOM: {Role.ADMIN: Access.EDIT, Role.MERCHANDISER: Access.EDIT, Role.WAREHOUSE: Access.EDIT},
    Area.FULFILLMENT: {Role.ADMIN: Access.EDIT, Role.MERCHANDISER: Access.READ, Role.WAREHOUSE: Access.EDIT},
    Area.ORDERS: {Role.ADMIN: Access.EDIT, Role.MERCHANDISER: Access.READ, Role.WAREHOUSE: Access.READ},
    Area.ADMINISTRATION: {Role.ADMIN: Access.EDIT},
    # commerce-v2.md section 6
    Area.TAX_SHIPPING: {Role.ADMIN: Access.EDIT, Role.MERCHANDISER: Access.READ},
    Area.PROMOTIONS: {Role.ADMIN: Access.EDIT, Role.MERCHANDISER: Access.EDIT},
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


# When the session last served a request (epoch seconds), for the idle expiry.
LAST_SEEN = "_last_seen"
# Refresh the stamp at most this often, rather than re-sign the cookie on every request.
LAST_SEEN_RESOLUTION_SECONDS = 60
SESSION_KEYS = ("_user_id", "_fresh", "_id", LAST_SEEN)


def start_session(user) -> None:
    """Sign ``user`` in to the back office (identity checked the credentials)."""
    login_user(user)
    session[LAST_SEEN] = int(time.time())


def end_session() -> None:
    """Sign this browser out (the caller ends the user's sessions with identity first)."""
    logout_user()
    session.pop(LAST_SEEN, None)


def load_user(session_id: str):
    """Flask-Login's loader: the user the session names, unless identity says the session
    ended (sign-out, password change or reset, deactivation) or it was idle too long."""
    from ecom.identity.services import session_is_idle, user_for_session

    now = time.time()
    last_seen = session.get(LAST_SEEN)
    user = None if session_is_idle(last_seen, now) else user_for_session(session_id)
    if user is None:
        for key in SESSION_KEYS:  # a dead session is dropped, not carried along
            session.pop(key, None)
        return None
    if now - last_seen >= LAST_SEEN_RESOLUTION_SECONDS:
        session[LAST_SEEN] = int(now)
    return user


def init_login(app) -> None:
    from ecom.extensions import login_manager

    # The API authenticates by token; the session-cookie loader is the back office's.
    if login_manager._user_callback is None:
        login_manager.user_loader(load_user)
    login_manager.login_view = "admin.login_view"
