"""Helpers for API tests: signed-in users and their Authorization headers.

The API rolls the session back on every error, which in the rollback-per-test
``db`` drops whatever was only flushed; so tests commit (a savepoint) the data
they set up before calling the API.
"""

from __future__ import annotations

import pytest

from storefront_api.security import issue_access_token
from tests.factories import UserFactory


def bearer(user) -> dict[str, str]:
    token, _ = issue_access_token(user)
    return {"Authorization": f"Bearer {token}"}


def saved(db, obj=None):
    db.session.commit()
    return obj


@pytest.fixture
def customer(db):
    return saved(db, UserFactory(full_name="Casey Customer"))


@pytest.fixture
def other_customer(db):
    return saved(db, UserFactory(full_name="Otto Other"))


@pytest.fixture
def auth(customer):
    return bearer(customer)


@pytest.fixture
def other_auth(other_customer):
    return bearer(other_customer)
