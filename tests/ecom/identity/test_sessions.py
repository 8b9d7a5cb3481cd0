"""Sessions that end (sign-out, password change or reset, deactivation, idleness), the timing
guard of ``authenticate`` and the failed sign-in throttle."""

from __future__ import annotations

import pytest

from ecom.actor import SYSTEM
from ecom.errors import AuthenticationFailed
from ecom.identity import services
from ecom.identity.throttle import SignInThrottle
from tests.factories import TEST_PASSWORD, UserFactory

# --- session versions ------------------------------------------------------------------------

ENDINGS = {
    "sign-out": lambda user: services.end_sessions(user),
    "password change": lambda user: services.change_password(user, TEST_PASSWORD, "a-new-password"),
    "password reset": lambda user: services.reset_password(user, "a-new-password", actor=SYSTEM),
    "deactivation": lambda user: services.set_users_active([user.id], False, actor=SYSTEM),
}


@pytest.mark.parametrize("ending", list(ENDINGS))
def test_each_ending_refuses_the_sessions_issued_before_it(db, ending):
    # Given a session (and a token) issued to an active user
    user = UserFactory()
    old_session, old_version = user.get_id(), user.session_version
    assert services.user_for_session(old_session) is user

    # when their sessions end
    ENDINGS[ending](user)

    # then what was issued before names nobody, and the version moved on
    assert services.user_for_session(old_session) is None
    assert services.user_for_credentials(user.id, old_version) is None
    assert user.session_version == old_version + 1


def test_a_reactivated_user_gets_new_sessions_but_not_the_old_ones(db):
    user = UserFactory()
    old_session = user.get_id()
    services.set_users_active([user.id], False, actor=SYSTEM)
    services.set_users_active([user.id], True, actor=SYSTEM)

    assert services.user_for_session(old_session) is None
    assert services.user_for_session(user.get_id()) is user


def test_a_refused_password_change_keeps_the_sessions(db):
    user = UserFactory()
    session = user.get_id()

    with pytest.raises(AuthenticationFailed):
        services.change_password(user, "not-the-password", "a-new-password")

    assert services.user_for_session(session) is user


def test_a_role_change_keeps_the_sessions(db):
    # The back office reads the role on every request: no need to sign anybody out.
    user = UserFactory(role="merchandiser")
    session = user.get_id()

    services.set_user_role(user, "warehouse", actor=SYSTEM)

    assert services.user_for_session(session) is user


@pytest.mark.parametrize(
    "value",
    [None, "", "7", "7:", ":0", "7:0:0", "a:0", "7:x", "-7:0", "7:-1", "७:0", "99999999999:0",
     "7:99999999999", "7:\x000"],
)
def test_malformed_session_ids_name_nobody(db, value):
    UserFactory()

    assert services.user_for_session(value) is None


@pytest.mark.parametrize("version", ["0", 0.0, True, None, -1, 2**40])
def test_token_versions_must_be_whole_numbers_in_range(db, version):
    user = UserFactory()

    assert services.user_for_credentials(user.id, version) is None
    assert services.user_for_credentials(user.id, 0) is user


# --- idleness -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("seconds_ago", "idle"), [(0, False), (480 * 60, False), (480 * 60 + 1, True), (10**9, True)]
)
def test_a_session_is_idle_after_the_configured_minutes(app, seconds_ago, idle):
    with app.app_context():
        assert services.session_is_idle(1_000_000_000 - seconds_ago, 1_000_000_000) is idle


@pytest.mark.parametrize("last_seen", [None, "1000", True, [1]])
def test_a_session_without_a_readable_last_use_counts_as_idle(app, last_seen):
    with app.app_context():
        assert services.session_is_idle(last_seen, 1_000_000_000) is True


# --- authenticate's timing guard -----------------------------------------------------------------


def test_an_unknown_email_costs_a_bcrypt_check_like_a_wrong_password(db, monkeypatch):
    # Given identity's password check counted
    checks = []
    real_verify = services.verify_password
    monkeypatch.setattr(services, "verify_password",
                        lambda password, hashed: checks.append(hashed) or real_verify(password, hashed))
    UserFactory(email="known@example.com")

    # when an unknown email and a known one with a wrong password try to authenticate
    for email in ("unknown@example.com", "known@example.com"):
        with pytest.raises(AuthenticationFailed, match="Invalid email or password"):
            services.authenticate(email, "wrong-password")

    # then each ran one bcrypt verification (the unknown email against a dummy hash)
    assert len(checks) == 2 and all(hashed.startswith("$2b$") for hashed in checks)


def test_a_deactivated_user_is_refused_only_after_the_password_check(db, monkeypatch):
    checks = []
    real_verify = services.verify_password
    monkeypatch.setattr(services, "verify_password",
                        lambda password, hashed: checks.append(hashed) or real_verify(password, hashed))
    user = UserFactory(is_active=False)

    with pytest.raises(AuthenticationFailed, match="Invalid email or password"):
        services.authenticate(user.email, TEST_PASSWORD)

    assert len(checks) == 1


# --- the failed sign-in throttle -----------------------------------------------------------------


@pytest.fixture
def limits(app):
    names = ("LOGIN_RATE_LIMIT", "LOGIN_IP_RATE_LIMIT", "LOGIN_EMAIL_RATE_LIMIT")
    saved = {name: app.config[name] for name in names}
    app.config.update(LOGIN_RATE_LIMIT="2 per 5 minutes", LOGIN_IP_RATE_LIMIT="4 per 5 minutes",
                      LOGIN_EMAIL_RATE_LIMIT="3 per hour")
    with app.test_request_context():
        yield
    app.config.update(saved)


def _fail(email: str, client: str, times: int = 1) -> None:
    for _ in range(times):
        SignInThrottle(email, client).record_failure()


def test_the_throttle_holds_an_email_and_address_pair(limits):
    _fail("Owner@example.com", "203.0.113.1", 2)

    assert SignInThrottle("owner@example.com ", "203.0.113.1").wait_seconds() > 0
    assert SignInThrottle("owner@example.com", "198.51.100.2").wait_seconds() == 0
    assert SignInThrottle("other@example.com", "203.0.113.1").wait_seconds() == 0


def test_the_throttle_holds_an_address_across_emails(limits):
    for index in range(4):
        _fail(f"user{index}@example.com", "203.0.113.1")

    assert SignInThrottle("fresh@example.com", "203.0.113.1").wait_seconds() > 0
    assert SignInThrottle("fresh@example.com", "198.51.100.2").wait_seconds() == 0


def test_the_throttle_holds_an_email_across_addresses_at_its_ceiling(limits):
    for index in range(3):
        _fail("owner@example.com", f"203.0.113.{index + 1}")

    assert SignInThrottle("owner@example.com", "198.51.100.2").wait_seconds() > 0


def test_the_throttle_is_off_with_rate_limits_off(app, limits):
    app.config["RATELIMIT_ENABLED"] = False
    try:
        _fail("owner@example.com", "203.0.113.1", 5)
        assert SignInThrottle("owner@example.com", "203.0.113.1").wait_seconds() == 0
    finally:
        app.config["RATELIMIT_ENABLED"] = True
