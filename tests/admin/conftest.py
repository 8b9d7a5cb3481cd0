"""Back-office fixtures: staff users of every role and signed-in clients."""

from __future__ import annotations

import pytest
from flask import g, has_app_context
from flask.testing import FlaskClient
from flask_sqlalchemy.session import Session as FlaskSQLAlchemySession
from sqlalchemy import event

from ecom.extensions import db as _db
from tests.factories import UserFactory

ROLES = ("admin", "merchandiser", "warehouse")


class _ConnectionBoundSession(FlaskSQLAlchemySession):
    # Flask-SQLAlchemy's get_bind picks the engine by table and ignores ``bind``;
    # then a commit in a test would really commit. Keep every statement on the
    # test's connection so the outer rollback undoes it.
    def get_bind(self, *args, **kwargs):
        return self.bind if self.bind is not None else super().get_bind(*args, **kwargs)


def _sqlite_savepoints(engine) -> None:
    """pysqlite's own transaction handling breaks SAVEPOINT; let SQLAlchemy emit BEGIN itself.

    (The recipe from SQLAlchemy's SQLite dialect documentation.)
    """
    if engine.dialect.name != "sqlite" or getattr(engine, "_admin_tests_savepoints", False):
        return

    @event.listens_for(engine, "connect")
    def _no_pysqlite_transactions(dbapi_connection, record):
        dbapi_connection.isolation_level = None

    @event.listens_for(engine, "begin")
    def _begin(connection):
        connection.exec_driver_sql("BEGIN")

    engine._admin_tests_savepoints = True
    engine.dispose()


@pytest.fixture
def db(app):
    """Rollback-per-test db whose commits (including those inside views) are savepoints."""
    with app.app_context():
        _sqlite_savepoints(_db.engine)
        connection = _db.engine.connect()
        outer = connection.begin()
        original = _db.session
        _db.session = _db._make_scoped_session(
            {"bind": connection, "join_transaction_mode": "create_savepoint",
             "class_": _ConnectionBoundSession}
        )
        try:
            yield _db
        finally:
            _db.session.remove()
            _db.session = original
            outer.rollback()
            connection.close()


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
        session["_user_id"] = str(user.id)
        session["_fresh"] = True


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
