"""Role walls: exactly the roles table of domain.md."""

from __future__ import annotations

import re
import time

import pytest

from admin.security import LAST_SEEN
from tests.admin.conftest import new_client, sign_in
from tests.factories import TEST_PASSWORD, UserFactory

STAFF = ("admin", "merchandiser", "warehouse")
# endpoint -> roles that may open it (domain.md, "Roles in the back office").
READERS = {
    "category": STAFF, "product": STAFF, "variant": STAFF, "review": STAFF,
    "inventory": STAFF, "stockmovement": STAFF, "reservation": STAFF,
    "store": STAFF, "fulfillment": STAFF, "order": STAFF, "customer": STAFF,
    "stocklocation": STAFF, "transfer": STAFF, "purchaseorder": STAFF,
    "user": ("admin",), "notification": ("admin",), "jobs": ("admin",), "auditlog": ("admin",),
    # commerce-v2.md section 6: tax and shipping read by merchandisers, promotions edited by them
    "taxclass": ("admin", "merchandiser"), "taxrate": ("admin", "merchandiser"),
    "shippingzone": ("admin", "merchandiser"), "shippingmethod": ("admin", "merchandiser"),
    "promotion": ("admin", "merchandiser"), "vouchercode": ("admin", "merchandiser"),
    "pricecheck": ("admin", "merchandiser"),
}
# endpoint -> roles that may create/edit/delete or run bulk actions there.
EDITORS = {
    "category": ("admin", "merchandiser"), "product": ("admin", "merchandiser"),
    "variant": ("admin", "merchandiser"), "store": ("admin", "merchandiser"),
    "inventory": ("admin", "merchandiser"),
    # commerce-v2 §6: locations are the admin's; transfers and purchase orders everybody's
    "stocklocation": ("admin",),
    "taxclass": ("admin",), "taxrate": ("admin",), "shippingzone": ("admin",), "shippingmethod": ("admin",),
    "promotion": ("admin", "merchandiser"),
}
CASES = [(endpoint, role) for endpoint in READERS for role in (*STAFF, "customer")]


@pytest.mark.parametrize(("endpoint", "role"), CASES)
def test_list_pages_answer_by_role(as_role, endpoint, role):
    # Given a user of that role signed in, when they open the list page
    response = as_role(role).get(f"/admin/{endpoint}/")
    # then it is there for the roles the table allows and 403 for everybody else
    expected = 200 if role in READERS[endpoint] else 403
    assert response.status_code == expected


@pytest.mark.parametrize("role", STAFF)
def test_the_menu_shows_only_what_the_role_may_use(as_role, role):
    page = as_role(role).get("/admin/").get_data(as_text=True)
    for endpoint, readers in READERS.items():
        link = f'href="/admin/{endpoint}/"'
        assert (link in page) == (role in readers), f"{endpoint} menu item for {role}"


@pytest.mark.parametrize(("endpoint", "role"), [(e, r) for e in EDITORS for r in STAFF])
def test_create_forms_only_for_editors(as_role, endpoint, role):
    response = as_role(role).get(f"/admin/{endpoint}/new/")
    if endpoint == "inventory":  # inventory rows are never created by hand
        assert response.status_code in (302, 403)
    elif role in EDITORS[endpoint]:
        assert response.status_code == 200
    else:
        assert response.status_code == 403


@pytest.mark.parametrize("endpoint", ["product", "category", "store"])
def test_warehouse_cannot_post_writes_to_read_only_areas(as_role, endpoint):
    client = as_role("warehouse")
    assert client.post(f"/admin/{endpoint}/new/", data={"name": "x"}).status_code == 403
    refused = client.post(f"/admin/{endpoint}/action/", data={"action": "delete", "rowid": "1"})
    assert refused.status_code == 403


def test_merchandiser_cannot_run_fulfillment_actions_or_cancel_orders(as_role):
    client = as_role("merchandiser")
    refused = client.post("/admin/fulfillment/action/", data={"action": "packed", "rowid": "1"})
    assert refused.status_code == 403
    assert client.post("/admin/order/cancel/1", data={"reason": "x"}).status_code == 403
    assert client.post("/admin/order/refund/1", data={"amount": ""}).status_code == 403


def test_the_dashboard_is_for_all_staff_and_not_customers(as_role):
    for role in STAFF:
        assert as_role(role).get("/admin/").status_code == 200
    assert as_role("customer").get("/admin/").status_code == 403


@pytest.mark.parametrize("path", ["/admin/", "/admin/product/", "/admin/user/", "/admin/inventory/adjust/1"])
def test_anonymous_visitors_are_sent_to_the_login_page(client, path):
    response = client.get(path)
    assert response.status_code == 302
    assert response.headers["Location"].startswith("/admin/login")


def test_staff_sign_in_and_out(client, db):
    user = UserFactory(role="merchandiser", email="merch@shop.test")
    response = client.post("/admin/login?next=/admin/product/",
                           data={"email": "Merch@Shop.test", "password": TEST_PASSWORD})
    assert response.status_code == 302
    assert response.headers["Location"] == "/admin/product/"
    assert client.get("/admin/product/").status_code == 200
    assert user.last_login_at is not None
    client.get("/admin/logout")
    assert client.get("/admin/product/").status_code == 302


def test_sign_in_never_redirects_off_site(client, db):
    UserFactory(role="admin", email="boss@shop.test")
    response = client.post("/admin/login?next=https://evil.example/",
                           data={"email": "boss@shop.test", "password": TEST_PASSWORD})
    assert response.headers["Location"] == "/admin/"


def test_a_customers_right_password_is_answered_like_a_wrong_one(client, db):
    # Given a customer, when one sign-in has their right password and one a wrong one
    UserFactory(role="customer", email="shopper@shop.test")
    db.session.commit()  # a savepoint: the view's rollback after a refusal keeps the user
    right = client.post("/admin/login", data={"email": "shopper@shop.test", "password": TEST_PASSWORD})
    wrong = client.post("/admin/login", data={"email": "shopper@shop.test", "password": "not-the-password"})

    # then both get the same status and message: no "staff only" to confirm a guessed password
    assert (right.status_code, _login_error(right)) == (wrong.status_code, _login_error(wrong))
    assert (right.status_code, _login_error(right)) == (401, "Wrong email or password.")
    assert client.get("/admin/").status_code == 302  # still not signed in


@pytest.mark.parametrize("password", ["wrong-password", ""])
def test_wrong_password_is_refused(client, db, password):
    UserFactory(role="admin", email="boss@shop.test")
    response = client.post("/admin/login", data={"email": "boss@shop.test", "password": password})
    assert response.status_code == 401
    assert "Wrong email or password" in response.get_data(as_text=True)


def test_deactivated_staff_cannot_sign_in_and_lose_their_session(client, db):
    user = UserFactory(role="admin", email="gone@shop.test", is_active=False)
    response = client.post("/admin/login", data={"email": "gone@shop.test", "password": TEST_PASSWORD})
    assert response.status_code == 401
    assert "Wrong email or password" in response.get_data(as_text=True)
    assert user.last_login_at is None
    sign_in(client, user)
    assert client.get("/admin/").status_code == 302


def _login_error(response) -> str:
    return re.search(r'id="login-error">([^<]*)<', response.get_data(as_text=True)).group(1)


def test_unknown_email_and_wrong_password_answer_alike_through_identity(client, db, monkeypatch):
    # Given identity's password check counted
    from ecom.identity import services as identity

    checks = []

    def counted(password, hashed):
        checks.append(hashed)
        return real_verify(password, hashed)

    real_verify = identity.verify_password
    monkeypatch.setattr(identity, "verify_password", counted)
    UserFactory(role="admin", email="boss@shop.test")

    # when one sign-in names nobody and another gets the password wrong
    unknown = client.post("/admin/login", data={"email": "nobody@shop.test", "password": TEST_PASSWORD})
    wrong = client.post("/admin/login", data={"email": "boss@shop.test", "password": "not-the-password"})

    # then both get the same answer, and both paid for a bcrypt check (identity's timing guard)
    assert (unknown.status_code, _login_error(unknown)) == (wrong.status_code, _login_error(wrong))
    assert (unknown.status_code, _login_error(unknown)) == (401, "Wrong email or password.")
    assert len(checks) == 2 and all(h.startswith("$2b$") for h in checks)


def test_signing_in_is_recorded_by_identity(client, db, monkeypatch):
    from ecom.identity import services as identity

    calls = []
    real_authenticate = identity.authenticate
    monkeypatch.setattr("admin.home.authenticate",
                        lambda email, password: calls.append(email) or real_authenticate(email, password))
    user = UserFactory(role="warehouse", email="store@shop.test")

    response = client.post("/admin/login", data={"email": " Store@Shop.test", "password": TEST_PASSWORD})

    assert response.status_code == 302
    assert calls == [" Store@Shop.test"]
    assert user.last_login_at is not None  # set by identity.authenticate, committed by the view


def test_a_customer_refused_at_the_door_leaves_no_sign_in_behind(client, db):
    customer = UserFactory(role="customer", email="shopper@shop.test")
    db.session.commit()  # a savepoint: the view's rollback keeps the user

    response = client.post("/admin/login", data={"email": "shopper@shop.test", "password": TEST_PASSWORD})

    assert response.status_code == 401
    assert _login_error(response) == "Wrong email or password."
    db.session.refresh(customer)
    assert customer.last_login_at is None


def test_failed_sign_ins_are_rate_limited(app, db):
    UserFactory(role="admin", email="boss@shop.test")
    db.session.commit()
    client = app.test_client()
    app.config["LOGIN_RATE_LIMIT"] = "3 per 5 minutes"
    try:
        codes = [client.post("/admin/login", data={"email": "boss@shop.test", "password": "nope"}).status_code
                 for _ in range(4)]
        # Given three failures, even the right password now waits.
        good = client.post("/admin/login", data={"email": "boss@shop.test", "password": TEST_PASSWORD})
    finally:
        app.config["LOGIN_RATE_LIMIT"] = "10 per 5 minutes"
    assert codes == [401, 401, 401, 429]
    assert good.status_code == 429
    assert int(good.headers["Retry-After"]) > 0


@pytest.fixture
def account_ceiling(app):
    saved = app.config["LOGIN_EMAIL_RATE_LIMIT"]
    app.config["LOGIN_EMAIL_RATE_LIMIT"] = "3 per hour"
    yield
    app.config["LOGIN_EMAIL_RATE_LIMIT"] = saved


def test_failed_sign_ins_are_limited_per_account_across_addresses(app, db, account_ceiling):
    # Given failed sign-ins to one account from as many addresses as its ceiling allows
    UserFactory(role="admin", email="boss@shop.test")
    db.session.commit()  # a savepoint: the view's rollback after a refusal keeps the user
    client = new_client(app)
    for index in range(3):
        failed = client.post("/admin/login", data={"email": "Boss@shop.test", "password": "nope"},
                             environ_base={"REMOTE_ADDR": f"10.1.0.{index + 1}"})
        assert failed.status_code == 401

    # when one more comes from a fresh address, with the right password even
    late = client.post("/admin/login", data={"email": "boss@shop.test", "password": TEST_PASSWORD},
                       environ_base={"REMOTE_ADDR": "10.1.0.99"})

    # then it waits: guessing from many addresses is throttled too
    assert late.status_code == 429
    assert int(late.headers["Retry-After"]) > 0
    assert client.get("/admin/").status_code == 302


def test_a_customers_right_password_counts_as_a_failed_sign_in(app, db):
    # A customer's right password must not be told apart by the throttle either.
    UserFactory(role="customer", email="shopper@shop.test")
    db.session.commit()
    client = new_client(app)
    app.config["LOGIN_RATE_LIMIT"] = "2 per 5 minutes"
    try:
        codes = [client.post("/admin/login", data={"email": "shopper@shop.test", "password": TEST_PASSWORD})
                 .status_code for _ in range(3)]
    finally:
        app.config["LOGIN_RATE_LIMIT"] = "10 per 5 minutes"
    assert codes == [401, 401, 429]


# --- sessions end -------------------------------------------------------------------------


def _signed_in_copy(app, email="boss@shop.test", role="admin"):
    """A user signed in through the login form, and a second client holding a copy of the cookie."""
    user = UserFactory(role=role, email=email)
    original = new_client(app)
    response = original.post("/admin/login", data={"email": email, "password": TEST_PASSWORD})
    assert response.status_code == 302
    copy = new_client(app)
    copy.set_cookie("session", original.get_cookie("session").value)
    assert copy.get("/admin/").status_code == 200
    return user, original, copy


def test_a_copied_session_cookie_stops_working_after_sign_out(app, db):
    # Given a session cookie copied to another browser
    _, original, copy = _signed_in_copy(app)

    # when the user signs out
    original.get("/admin/logout")

    # then the copy no longer opens anything
    response = copy.get("/admin/")
    assert response.status_code == 302
    assert response.headers["Location"].startswith("/admin/login")
    # and signing in again works
    assert original.post("/admin/login", data={"email": "boss@shop.test", "password": TEST_PASSWORD}
                         ).status_code == 302
    assert original.get("/admin/").status_code == 200


def test_a_password_reset_ends_the_users_sessions(app, db, as_role):
    # Given a merchandiser signed in, when an admin resets their password in the back office
    user, _, copy = _signed_in_copy(app, email="merch@shop.test", role="merchandiser")
    db.session.commit()
    reset = as_role("admin").post(f"/admin/user/password/{user.id}",
                                  data={"password": "a-new-password", "confirm": "a-new-password"})
    assert reset.status_code == 302

    # then the merchandiser's session is over
    assert copy.get("/admin/product/").status_code == 302


def test_deactivation_ends_the_users_sessions(app, db, as_role):
    user, _, copy = _signed_in_copy(app, email="clerk@shop.test", role="warehouse")
    db.session.commit()

    as_role("admin").post("/admin/user/action/", data={"action": "deactivate", "rowid": str(user.id)})
    as_role("admin").post("/admin/user/action/", data={"action": "activate", "rowid": str(user.id)})

    # reactivated or not, the old session stays over
    assert copy.get("/admin/").status_code == 302


def _last_seen(client, seconds_ago: int) -> None:
    with client.session_transaction() as session:
        session[LAST_SEEN] = int(time.time()) - seconds_ago


def test_a_session_idle_for_longer_than_a_working_day_ends(app, db):
    # Given a session last used 481 minutes ago (the default allows 480)
    _, original, _ = _signed_in_copy(app)
    _last_seen(original, 481 * 60)

    # when it is used again, then it is sent to sign in
    response = original.get("/admin/")
    assert response.status_code == 302
    assert response.headers["Location"].startswith("/admin/login")
    assert original.get("/admin/").status_code == 302  # and stays signed out


def test_a_session_used_within_the_idle_window_stays_and_is_renewed(app, db):
    _, original, _ = _signed_in_copy(app)
    _last_seen(original, 479 * 60)

    assert original.get("/admin/").status_code == 200
    with original.session_transaction() as session:
        assert int(time.time()) - session[LAST_SEEN] < 479 * 60  # the clock started again


def test_the_idle_window_is_configurable(app, db):
    _, original, _ = _signed_in_copy(app)
    _last_seen(original, 11 * 60)
    app.config["ADMIN_SESSION_IDLE_MINUTES"] = 10
    try:
        assert original.get("/admin/").status_code == 302
    finally:
        app.config["ADMIN_SESSION_IDLE_MINUTES"] = 480


def test_a_session_cookie_without_a_version_is_refused(client, db):
    # What the back office wrote before sessions carried a version: the bare user id.
    user = UserFactory(role="admin", email="old@shop.test")
    with client.session_transaction() as session:
        session["_user_id"] = str(user.id)
        session[LAST_SEEN] = int(time.time())

    assert client.get("/admin/").status_code == 302


def test_the_login_form_refuses_a_post_without_csrf_token(database_url, tmp_path):
    from tests.conftest import make_test_app

    app = make_test_app(database_url, WTF_CSRF_ENABLED=True)
    client = app.test_client()
    response = client.post("/admin/login", data={"email": "a@b.c", "password": "x"})
    assert response.status_code == 400
    assert "CSRF" in response.get_data(as_text=True)
    # and the form carries a token to post back
    page = client.get("/admin/login").get_data(as_text=True)
    assert 'name="csrf_token"' in page


def test_admin_writes_without_csrf_token_are_refused(database_url):
    from tests.conftest import make_test_app

    app = make_test_app(database_url, WTF_CSRF_ENABLED=True)
    client = app.test_client()
    with app.app_context():
        from ecom.extensions import db as _db

        user = UserFactory(role="admin", email="csrf-admin@shop.test")
        _db.session.commit()
        try:
            sign_in(client, user)
            page = client.get("/admin/category/new/").get_data(as_text=True)
            assert 'name="csrf_token"' in page
            response = client.post("/admin/category/new/", data={"name": "No token"})
            assert response.status_code == 400
            from ecom.catalog.models import Category

            assert _db.session.scalar(_db.select(Category).where(Category.name == "No token")) is None
        finally:
            _db.session.delete(user)
            _db.session.commit()
