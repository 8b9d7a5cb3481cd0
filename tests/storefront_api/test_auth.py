"""Sign-up, sign-in, bearer tokens and the rate limits on them."""

from __future__ import annotations

from datetime import timedelta

import jwt
import pytest

from ecom.db import utcnow
from ecom.extensions import limiter
from ecom.identity.models import User
from tests.conftest import make_test_app
from tests.factories import TEST_PASSWORD, UserFactory
from tests.storefront_api.conftest import bearer

SECRET = "test-jwt-secret-0123456789abcdefghij"


def signup(client, email="new@example.com", password="s3cret-pass", **extra):
    return client.post(
        "/api/v1/auth/signup", json={"email": email, "password": password, "full_name": "New Person"}, **extra
    )


def login(client, email, password=TEST_PASSWORD, **extra):
    return client.post("/api/v1/auth/login", json={"email": email, "password": password}, **extra)


# --- signup ---------------------------------------------------------------------------


def test_signup_creates_a_customer_and_answers_with_a_working_token(client, db):
    response = signup(client, email="New.Person@Example.COM")

    assert response.status_code == 201
    body = response.json
    assert body["token_type"] == "bearer"
    assert body["expires_in"] == 3600
    assert body["user"]["email"] == "new.person@example.com"
    assert body["user"]["role"] == "customer"
    me = client.get("/api/v1/me", headers={"Authorization": f"Bearer {body['access_token']}"})
    assert me.status_code == 200
    assert me.json["id"] == body["user"]["id"]
    assert body["user"]["created_at"].endswith("Z")


def test_signup_with_an_existing_email_in_any_case_is_409(client, db):
    UserFactory(email="taken@example.com")
    db.session.commit()

    response = signup(client, email="TAKEN@example.com")

    assert response.status_code == 409
    assert db.session.query(User).filter_by(email="taken@example.com").count() == 1


@pytest.mark.parametrize(
    ("email", "password", "field"),
    [("new@example.com", "short", "password"), ("not-an-email", "long-enough-1", "email")],
)
def test_signup_refuses_weak_password_and_invalid_email_with_422(client, db, email, password, field):
    response = signup(client, email=email, password=password)

    assert response.status_code == 422
    assert field in response.json["errors"]


def test_signup_refuses_a_password_bcrypt_would_truncate(client, db):
    # 30 three-byte characters: 30 characters, 90 bytes.
    response = signup(client, password="€" * 30)

    assert response.status_code == 422
    assert "72 bytes" in response.json["errors"]["password"][0]


def test_token_claims_are_sub_ver_iat_exp_with_hs256(client, db):
    body = signup(client).json

    header = jwt.get_unverified_header(body["access_token"])
    claims = jwt.decode(body["access_token"], SECRET, algorithms=["HS256"])
    assert header["alg"] == "HS256"
    assert claims["sub"] == str(body["user"]["id"])
    assert claims["ver"] == 0  # the user's session version: a password change moves it on
    assert claims["exp"] - claims["iat"] == 3600


# --- login ----------------------------------------------------------------------------


def test_login_with_right_credentials_answers_a_token(client, customer):
    response = login(client, customer.email.upper())

    assert response.status_code == 200
    assert response.json["user"]["email"] == customer.email
    assert customer.last_login_at is not None


@pytest.mark.slow
def test_login_failure_message_is_the_same_for_unknown_email_and_wrong_password(client, customer):
    wrong_password = login(client, customer.email, "wrong-password")
    unknown_email = login(client, "nobody@example.com")

    assert wrong_password.status_code == unknown_email.status_code == 401
    assert wrong_password.json == unknown_email.json
    assert wrong_password.headers["WWW-Authenticate"] == "Bearer"


def test_deactivated_user_cannot_log_in(client, db):
    user = UserFactory(is_active=False)
    db.session.commit()

    assert login(client, user.email).status_code == 401


# --- the JWT 401 matrix ---------------------------------------------------------------


def _claims(user_id, **changes):
    now = utcnow()
    claims = {"sub": str(user_id), "ver": 0, "iat": now, "exp": now + timedelta(hours=1)}
    claims.update(changes)
    return {k: v for k, v in claims.items() if v is not None}


def _unsigned(claims) -> str:
    return jwt.encode(claims, None, algorithm="none")


TOKENS = {
    "garbage": lambda uid: "not.a.jwt",
    "wrong signature": lambda uid: jwt.encode(_claims(uid), "another-secret-0123456789abcdef", "HS256"),
    "alg none": lambda uid: _unsigned(_claims(uid)),
    "HS512": lambda uid: jwt.encode(_claims(uid), SECRET, algorithm="HS512"),
    "missing exp": lambda uid: jwt.encode(_claims(uid, exp=None), SECRET, algorithm="HS256"),
    "expired": lambda uid: jwt.encode(
        _claims(uid, exp=utcnow() - timedelta(seconds=5)), SECRET, algorithm="HS256"
    ),
    "unknown user": lambda uid: jwt.encode(_claims(uid + 1000), SECRET, algorithm="HS256"),
    "non-numeric sub": lambda uid: jwt.encode(_claims(uid, sub="admin"), SECRET, algorithm="HS256"),
    "missing ver": lambda uid: jwt.encode(_claims(uid, ver=None), SECRET, algorithm="HS256"),
    "stale ver": lambda uid: jwt.encode(_claims(uid, ver=1), SECRET, algorithm="HS256"),
    "string ver": lambda uid: jwt.encode(_claims(uid, ver="0"), SECRET, algorithm="HS256"),
    "huge ver": lambda uid: jwt.encode(_claims(uid, ver=2**70), SECRET, algorithm="HS256"),
}


@pytest.mark.parametrize("kind", list(TOKENS))
def test_bad_tokens_are_401_with_www_authenticate(client, customer, kind):
    token = TOKENS[kind](customer.id)

    response = client.get("/api/v1/me", headers={"Authorization": f"Bearer {token}"})

    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"] == "Bearer"
    assert response.json["detail"]


def test_a_valid_token_of_the_same_shape_is_accepted(client, customer):
    # The control for the matrix above: only the broken part makes those fail.
    token = jwt.encode(_claims(customer.id), SECRET, algorithm="HS256")

    assert client.get("/api/v1/me", headers={"Authorization": f"Bearer {token}"}).status_code == 200


def test_no_token_is_401(client, db):
    response = client.get("/api/v1/me")

    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"] == "Bearer"


def test_another_scheme_is_401(client, customer):
    response = client.get("/api/v1/me", headers={"Authorization": "Basic dXNlcjpwYXNz"})

    assert response.status_code == 401


def test_a_deactivated_users_token_stops_working(client, db, customer):
    headers = bearer(customer)
    customer.is_active = False
    db.session.commit()

    assert client.get("/api/v1/me", headers=headers).status_code == 401


def test_a_password_reset_by_staff_revokes_the_users_tokens(client, db, customer):
    # Given a token issued before an admin resets the password
    from ecom.actor import Actor
    from ecom.identity.services import reset_password

    headers = bearer(customer)
    assert client.get("/api/v1/me", headers=headers).status_code == 200

    # when the reset is committed
    reset_password(customer, "reset-by-staff-1", actor=Actor("admin@shop.test", user_id=None))
    db.session.commit()

    # then the token is refused, and a token issued now works
    assert client.get("/api/v1/me", headers=headers).status_code == 401
    assert client.get("/api/v1/me", headers=bearer(customer)).status_code == 200


def test_a_deactivated_and_reactivated_users_old_token_stays_revoked(client, db, customer):
    from ecom.actor import SYSTEM
    from ecom.identity.services import set_users_active

    headers = bearer(customer)
    set_users_active([customer.id], False, actor=SYSTEM)
    set_users_active([customer.id], True, actor=SYSTEM)
    db.session.commit()

    assert client.get("/api/v1/me", headers=headers).status_code == 401


def test_a_bad_token_is_refused_even_where_auth_is_optional(client, db):
    response = client.get("/api/v1/cart", headers={"Authorization": "Bearer garbage"})

    assert response.status_code == 401


# --- rate limits --------------------------------------------------------------------------


LIMITS = ("LOGIN_RATE_LIMIT", "LOGIN_IP_RATE_LIMIT", "LOGIN_EMAIL_RATE_LIMIT", "SIGNUP_RATE_LIMIT")


@pytest.fixture
def small_limits(app):
    saved = {name: app.config[name] for name in LIMITS}
    app.config.update({
        "LOGIN_RATE_LIMIT": "3 per 5 minutes",  # per email and client address
        "LOGIN_IP_RATE_LIMIT": "3 per 5 minutes",
        "LOGIN_EMAIL_RATE_LIMIT": "5 per hour",  # per email from anywhere
        "SIGNUP_RATE_LIMIT": "2 per hour",
    })
    yield
    app.config.update(saved)


def test_a_strangers_failed_logins_do_not_lock_the_owner_out(client, customer, small_limits):
    # Given a stranger who failed to sign in as the customer until throttled
    stranger = {"REMOTE_ADDR": "203.0.113.66"}
    for _ in range(3):
        assert login(client, customer.email, "guess", environ_base=stranger).status_code == 401
    assert login(client, customer.email, "guess", environ_base=stranger).status_code == 429

    # when the owner signs in from their own address
    owner = login(client, customer.email, environ_base={"REMOTE_ADDR": "198.51.100.7"})

    # then they get in, while the stranger still waits, even with the right password
    assert owner.status_code == 200
    blocked = login(client, customer.email, environ_base=stranger)
    assert blocked.status_code == 429
    assert int(blocked.headers["Retry-After"]) > 0
    assert blocked.json["detail"]


def test_sign_ins_are_throttled_in_memory_while_the_limit_storage_is_down(client, customer, small_limits,
                                                                          monkeypatch):
    # Given a rate-limit storage (Redis) that refuses every call
    class Unreachable:
        def __getattr__(self, name):
            raise ConnectionError("rate limit storage down")

    monkeypatch.setattr(limiter, "_limiter", Unreachable())

    # when failed sign-ins come, then they are answered and throttled from memory, never a 500
    codes = [login(client, customer.email, "wrong").status_code for _ in range(4)]
    assert codes == [401, 401, 401, 429]
    assert login(client, customer.email, environ_base={"REMOTE_ADDR": "198.51.100.7"}).status_code == 200


def test_a_throttled_login_runs_no_password_check(client, customer, small_limits, monkeypatch):
    # Given the per email-and-address counter full
    for _ in range(3):
        login(client, customer.email, "guess")
    checks = []
    monkeypatch.setattr("storefront_api.auth.authenticate", lambda *args: checks.append(args))

    # when one more sign-in comes, then it waits without spending a bcrypt check
    assert login(client, customer.email).status_code == 429
    assert checks == []


@pytest.mark.slow
def test_failed_logins_per_email_are_limited_with_retry_after(client, customer, small_limits):
    for _ in range(3):
        assert login(client, customer.email, "wrong-password").status_code == 401

    blocked = login(client, customer.email, TEST_PASSWORD)

    assert blocked.status_code == 429
    assert int(blocked.headers["Retry-After"]) > 0
    assert blocked.is_json and blocked.json["detail"]


@pytest.mark.slow
def test_the_email_ceiling_holds_across_client_ips(client, customer, small_limits):
    # Given failures spread over as many addresses as the per-email ceiling allows
    for index in range(5):
        login(client, customer.email, "wrong", environ_base={"REMOTE_ADDR": f"10.0.0.{index + 1}"})

    # then a sign-in from yet another address waits, even with the right password
    blocked = login(client, customer.email, environ_base={"REMOTE_ADDR": "10.0.0.99"})

    assert blocked.status_code == 429


@pytest.mark.slow
def test_failed_logins_per_ip_are_limited_across_emails(client, db, small_limits):
    for index in range(3):
        assert login(client, f"nobody{index}@example.com", "wrong").status_code == 401

    blocked = login(client, "someone-else@example.com", "wrong")

    assert blocked.status_code == 429
    assert "Retry-After" in blocked.headers


@pytest.mark.slow
def test_successful_logins_do_not_count_towards_the_limit(client, customer, small_limits):
    for _ in range(5):
        assert login(client, customer.email).status_code == 200

    assert login(client, customer.email, "wrong").status_code == 401


def test_signups_per_ip_are_limited(client, db, small_limits):
    assert signup(client, email="one@example.com").status_code == 201
    assert signup(client, email="two@example.com").status_code == 201

    blocked = signup(client, email="three@example.com")

    assert blocked.status_code == 429
    assert int(blocked.headers["Retry-After"]) > 0
    assert db.session.query(User).filter_by(email="three@example.com").count() == 0


@pytest.mark.slow
def test_the_login_limit_lives_in_redis_and_holds_across_app_instances(app, committed_db, redis_url):
    from tests.factories import UserFactory as Users

    user = Users(email="limited@example.com")
    committed_db.session.commit()
    config = {
        "REDIS_URL": redis_url,
        "RATELIMIT_STORAGE_URI": redis_url,
        "LOGIN_RATE_LIMIT": "2 per 5 minutes",
    }
    try:
        first = make_test_app(app.config["SQLALCHEMY_DATABASE_URI"], **config)
        for _ in range(2):
            assert login(first.test_client(), user.email, "wrong").status_code == 401

        # A second instance gets a storage of its own: only Redis can carry the count over.
        second = make_test_app(app.config["SQLALCHEMY_DATABASE_URI"], **config)
        blocked = login(second.test_client(), user.email)

        assert blocked.status_code == 429
        assert "Retry-After" in blocked.headers
        import redis

        assert redis.Redis.from_url(redis_url).keys("*login*")
    finally:
        limiter.init_app(app)  # back to the session app's in-memory storage
