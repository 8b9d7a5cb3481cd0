"""Back-office fixtures: staff users of every role and signed-in clients."""

from __future__ import annotations

import time

import pytest
from flask import g, has_app_context
from flask.testing import FlaskClient

from admin.security import LAST_SEEN
from tests.factories import UserFactory

ROLES = ("admin", "merchandiser", "warehouse")


class AdminClient(FlaskClient):
    """A test client that does not reuse the signed-in user cached on ``g``.

    Requests made while a test holds an app context share its ``g``, where
    Flask-Login caches the user; each request must load its own.
    """

    def open(self, *args, **kwargs):
        if has_app_context():
            g.pop("_login_user", None)
        return super().open(*args, **kwargs)


def new_client(app) -> AdminClient:
    return AdminClient(app, app.response_class, use_cookies=True)


@pytest.fixture
def client(app, db):
    return new_client(app)


def sign_in(client, user) -> None:
    """Put ``user`` in the session as Flask-Login would after a sign-in."""
    with client.session_transaction() as session:
        session["_user_id"] = user.get_id()
        session["_fresh"] = True
        session[LAST_SEEN] = int(time.time())


@pytest.fixture
def staff(db):
    """One user per role, keyed by role."""
    users = {role: UserFactory(role=role, email=f"{role}@shop.test") for role in (*ROLES, "customer")}
    db.session.commit()  # a savepoint: a view's rollback after a refused change keeps them
    return users


@pytest.fixture
def as_role(app, db, staff):
    """as_role("warehouse") -> a test client signed in with that role."""

    def make(role: str):
        client = new_client(app)
        sign_in(client, staff[role])
        return client

    return make


@pytest.fixture
def make_order(db):
    """make_order("paid") -> an order walked to that status through the real services."""
    from ecom.commerce.demo import create_demo_order
    from tests.factories import stocked_variant

    def make(status: str = "paid", quantity: int = 2):
        customer = UserFactory()
        variant = stocked_variant(quantity=20, price="15.00")
        order = create_demo_order(customer, [(variant, quantity)], status=status)
        db.session.commit()
        return order

    return make
