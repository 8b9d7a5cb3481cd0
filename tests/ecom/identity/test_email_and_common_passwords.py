"""Issue 18, point 15: look-alike email addresses are one account; common passwords are refused."""

from __future__ import annotations

import pytest

from ecom.actor import SYSTEM
from ecom.errors import DuplicateError, ValidationFailed
from ecom.identity.common_passwords import common_passwords, is_common_password
from ecom.identity.models import User
from ecom.identity.services import (
    authenticate,
    change_password,
    create_user,
    normalise_email,
    reset_password,
)
from tests.factories import TEST_PASSWORD, UserFactory


@pytest.mark.parametrize(("given", "canonical"), [
    ("Ada@Example.COM", "ada@example.com"),
    ("ａｄａ@example.com", "ada@example.com"),  # full-width letters
    ("ﬁnance@example.com", "finance@example.com"),  # the "fi" ligature
    ("ADA@ＥＸＡＭＰＬＥ.com", "ada@example.com"),
])
def test_emails_are_nfkc_normalised_and_lower_cased(given, canonical):
    assert normalise_email(given) == canonical


def test_a_look_alike_email_does_not_make_a_second_account(db):
    # given an account for ada@example.com
    create_user("ada@example.com", TEST_PASSWORD)
    # when someone signs up with a full-width look-alike
    with pytest.raises(DuplicateError):
        create_user("ａｄａ@example.com", TEST_PASSWORD)
    # then there is still one account, and the look-alike signs in to it
    assert db.session.query(User).filter(User.email.like("%example.com")).count() == 1
    assert authenticate("ＡＤＡ@example.com", TEST_PASSWORD).email == "ada@example.com"


@pytest.mark.parametrize("password", ["password123", "PASSWORD1", "qwertyuiop", "12345678", "iloveyou",
                                      "Ｐａｓｓｗｏｒｄ１"])
def test_common_passwords_are_refused_at_signup(db, password):
    with pytest.raises(ValidationFailed) as refused:
        create_user("new@example.com", password)

    assert "too common" in refused.value.message
    assert db.session.query(User).filter_by(email="new@example.com").count() == 0


def test_common_passwords_are_refused_on_change_and_reset(db):
    user = UserFactory()

    with pytest.raises(ValidationFailed):
        change_password(user, TEST_PASSWORD, "letmein123")
    with pytest.raises(ValidationFailed):
        reset_password(user, "football", actor=SYSTEM)


def test_an_uncommon_password_is_accepted(db):
    assert create_user("fine@example.com", "violet-kettle-harbour").email == "fine@example.com"


def test_the_list_is_shipped_and_sizeable():
    assert len(common_passwords()) >= 1000
    assert is_common_password("sunshine") and not is_common_password(TEST_PASSWORD)
