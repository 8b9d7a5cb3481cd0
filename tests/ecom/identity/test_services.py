"""Identity services: users, passwords, roles, addresses, and the create-user CLI."""

from __future__ import annotations

import pytest
from sqlalchemy.exc import IntegrityError

from ecom.actor import SYSTEM, Actor
from ecom.errors import AuthenticationFailed, DuplicateError, NotFound, ValidationFailed
from ecom.identity import services
from ecom.identity.models import Address, User
from ecom.identity.passwords import verify_password
from tests.factories import TEST_PASSWORD, AddressFactory, UserFactory

ADDRESS = {"full_name": "A", "street": "1 Main St", "city": "Town", "postal_code": "1", "country": "gb"}


def test_create_user_lower_cases_the_email_and_hashes_the_password(db):
    user = services.create_user("  Mixed.Case@Example.COM ", "long-enough-pw", full_name="M")

    assert user.email == "mixed.case@example.com"
    assert user.role == "customer" and user.is_active
    assert user.hashed_password != "long-enough-pw"
    assert verify_password("long-enough-pw", user.hashed_password)


def test_create_user_audits_an_account_someone_else_creates_but_not_a_sign_up(db):
    # when a customer signs up, and the CLI creates an admin
    services.create_user("self@example.com", "long-enough-pw")
    admin = services.create_user("ops@example.com", "long-enough-pw", role="admin", actor=Actor("system:cli"))

    # then only the second is audited, naming who created it and with which role
    from sqlalchemy import select

    from ecom.audit.models import AuditLog

    [entry] = db.session.scalars(select(AuditLog).where(AuditLog.entity == "users")).all()
    assert (entry.action, entry.actor, entry.entity_id) == ("create", "system:cli", str(admin.id))
    assert entry.changes == {"email": {"before": None, "after": "ops@example.com"},
                             "role": {"before": None, "after": "admin"}}


def test_create_user_refuses_a_duplicate_email_in_any_case(db):
    services.create_user("dup@example.com", "long-enough-pw")

    with pytest.raises(DuplicateError):
        services.create_user("DUP@example.com", "long-enough-pw")


@pytest.mark.parametrize(
    ("email", "password", "role", "field"),
    [
        ("bad-email", "long-enough-pw", "customer", "email"),
        ("a@example.com", "short", "customer", "password"),
        ("a@example.com", "ü" * 37, "customer", "password"),  # 37 chars, 74 bytes
        ("a@example.com", "long-enough-pw", "overlord", "role"),
    ],
)
def test_create_user_validation(db, email, password, role, field):
    with pytest.raises(ValidationFailed) as caught:
        services.create_user(email, password, role=role)

    assert field in caught.value.errors


def test_a_72_byte_password_is_accepted_and_verified(db):
    password = "ü" * 36  # exactly 72 bytes

    user = services.create_user("edge@example.com", password)

    assert services.authenticate("edge@example.com", password) is user


def test_the_database_refuses_a_mixed_case_email_written_around_the_services(db):
    with pytest.raises(IntegrityError):
        UserFactory(email="Shouty@Example.com")


def test_authenticate(db):
    user = UserFactory(email="me@example.com")

    assert services.authenticate("ME@example.com", TEST_PASSWORD) is user
    assert user.last_login_at is not None
    for email, password in [("me@example.com", "wrong"), ("ghost@example.com", TEST_PASSWORD)]:
        with pytest.raises(AuthenticationFailed, match="Invalid email or password"):
            services.authenticate(email, password)


def test_deactivated_users_cannot_authenticate(db):
    user = UserFactory()
    services.set_users_active([user.id], False, actor=SYSTEM)

    with pytest.raises(AuthenticationFailed):
        services.authenticate(user.email, TEST_PASSWORD)
    services.set_users_active([user.id], True, actor=SYSTEM)
    assert services.authenticate(user.email, TEST_PASSWORD) is user


def test_change_password_needs_the_current_one(db):
    user = UserFactory()

    with pytest.raises(AuthenticationFailed):
        services.change_password(user, "wrong", "new-long-password")
    with pytest.raises(ValidationFailed):
        services.change_password(user, TEST_PASSWORD, "short")
    services.change_password(user, TEST_PASSWORD, "new-long-password")
    assert verify_password("new-long-password", user.hashed_password)


def test_reset_password_and_set_role(db):
    user = UserFactory()

    services.reset_password(user, "reset-by-admin", actor=SYSTEM)
    services.set_user_role(user, "warehouse", actor=SYSTEM)

    assert verify_password("reset-by-admin", user.hashed_password)
    assert user.role == "warehouse"
    with pytest.raises(ValidationFailed):
        services.set_user_role(user, "emperor", actor=SYSTEM)


def test_at_most_one_default_address_per_type(db):
    user = UserFactory()
    first = services.add_address(user, address_type="shipping", is_default=True, **ADDRESS)
    billing = services.add_address(user, address_type="billing", is_default=True, **ADDRESS)

    second = services.add_address(user, address_type="shipping", is_default=True, **ADDRESS)

    db.session.refresh(first)
    assert (first.is_default, billing.is_default, second.is_default) == (False, True, True)
    assert second.country == "GB"


def test_changing_a_defaults_type_takes_over_that_types_default(db):
    user = UserFactory()
    shipping = services.add_address(user, address_type="shipping", is_default=True, **ADDRESS)
    billing = services.add_address(user, address_type="billing", is_default=True, **ADDRESS)

    services.update_address(shipping, address_type="billing")

    db.session.refresh(billing)
    assert shipping.is_default and shipping.address_type == "billing"
    assert not billing.is_default


def test_the_database_refuses_two_defaults_of_a_type(db):
    user = UserFactory()
    AddressFactory(user=user, is_default=True)

    with pytest.raises(IntegrityError):
        AddressFactory(user=user, is_default=True)


def test_get_address_of_another_user_is_not_found(db):
    theirs = AddressFactory()

    with pytest.raises(NotFound):
        services.get_address(UserFactory(), theirs.id)


def test_invalid_country_is_refused(db):
    with pytest.raises(ValidationFailed) as caught:
        services.add_address(UserFactory(), address_type="shipping", **dict(ADDRESS, country="GBR"))

    assert "country" in caught.value.errors


def test_delete_address(db):
    address = AddressFactory()

    services.delete_address(address)

    assert db.session.get(Address, address.id) is None


# --- CLI ----------------------------------------------------------------------


def test_create_user_cli_with_password(app, committed_db):
    result = app.test_cli_runner().invoke(
        args=["create-user", "Boss@Example.com", "--role", "admin", "--password", "admin-password"]
    )

    assert result.exit_code == 0, result.output
    user = committed_db.session.query(User).filter_by(email="boss@example.com").one()
    assert user.role == "admin"
    assert verify_password("admin-password", user.hashed_password)


def test_create_user_cli_prompts_for_the_password(app, committed_db):
    result = app.test_cli_runner().invoke(
        args=["create-user", "prompted@example.com", "--role", "merchandiser"],
        input="prompted-password\nprompted-password\n",
    )

    assert result.exit_code == 0, result.output
    user = committed_db.session.query(User).filter_by(email="prompted@example.com").one()
    assert verify_password("prompted-password", user.hashed_password)


def test_create_user_cli_reports_errors_without_a_traceback(app, committed_db):
    runner = app.test_cli_runner()
    runner.invoke(args=["create-user", "twice@example.com", "--password", "long-enough-pw"])

    result = runner.invoke(args=["create-user", "twice@example.com", "--password", "long-enough-pw"])
    short = runner.invoke(args=["create-user", "short@example.com", "--password", "short"])

    assert result.exit_code == 1 and "already exists" in result.output
    assert short.exit_code == 1 and "at least 8" in short.output


# --- guards: an admin cannot lock themselves out --------------------------------


def _user_audit_rows(db) -> int:
    from sqlalchemy import func, select

    from ecom.audit.models import AuditLog

    return db.session.scalar(select(func.count(AuditLog.id)).where(AuditLog.entity == "users"))


@pytest.mark.parametrize("role", ["merchandiser", "warehouse", "customer"])
def test_an_admin_cannot_take_the_admin_role_from_themselves(db, role):
    me = UserFactory(role="admin")

    with pytest.raises(ValidationFailed, match="admin role from yourself"):
        services.set_user_role(me, role, actor=Actor.of_user(me))

    assert me.role == "admin"
    assert _user_audit_rows(db) == 0


def test_an_admin_may_change_another_admins_role(db):
    me, other = UserFactory(role="admin"), UserFactory(role="admin")

    services.set_user_role(other, "warehouse", actor=Actor.of_user(me))

    assert other.role == "warehouse"


def test_nobody_can_deactivate_themselves(db):
    me = UserFactory(role="admin")

    with pytest.raises(ValidationFailed, match="cannot deactivate your own account"):
        services.set_users_active([me.id], False, actor=Actor.of_user(me))

    assert me.is_active is True
    assert _user_audit_rows(db) == 0


def test_a_bulk_deactivation_including_oneself_changes_nobody(db):
    me = UserFactory(role="admin")
    others = [UserFactory(), UserFactory()]

    with pytest.raises(ValidationFailed, match="cannot deactivate your own account"):
        services.set_users_active([others[0].id, me.id, others[1].id], False, actor=Actor.of_user(me))

    db.session.expire_all()
    assert [u.is_active for u in (me, *others)] == [True, True, True]
    assert _user_audit_rows(db) == 0


def test_a_bulk_deactivation_of_others_and_activating_oneself_are_fine(db):
    me = UserFactory(role="admin")
    others = [UserFactory(), UserFactory()]

    assert services.set_users_active([u.id for u in others], False, actor=Actor.of_user(me)) == 2
    assert services.set_users_active([me.id], True, actor=Actor.of_user(me)) == 0
    assert [u.is_active for u in others] == [False, False]
