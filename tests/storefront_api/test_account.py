"""The signed-in shopper's profile, password and addresses."""

from __future__ import annotations

import pytest

from ecom.identity.models import Address
from tests.factories import TEST_PASSWORD, AddressFactory

ADDRESS = {
    "address_type": "shipping",
    "full_name": "Casey Customer",
    "street": "1 Main Street",
    "city": "Springfield",
    "state": "IL",
    "postal_code": "62701",
    "country": "us",
}


def test_me_returns_the_contract_fields(client, auth, customer):
    response = client.get("/api/v1/me", headers=auth)

    assert response.status_code == 200
    assert set(response.json) == {"id", "email", "full_name", "role", "created_at"}
    assert response.json["email"] == customer.email


def test_patch_me_changes_the_name_only(client, auth, customer):
    response = client.patch("/api/v1/me", headers=auth, json={"full_name": "  Casey C.  "})

    assert response.status_code == 200
    assert response.json["full_name"] == "Casey C."
    assert response.json["role"] == "customer"


def test_patch_me_cannot_change_the_role(client, auth):
    response = client.patch("/api/v1/me", headers=auth, json={"full_name": "X", "role": "admin"})

    assert response.status_code == 422
    assert client.get("/api/v1/me", headers=auth).json["role"] == "customer"


def test_password_change_with_the_current_password(client, auth, customer):
    response = client.post(
        "/api/v1/me/password", headers=auth,
        json={"current_password": TEST_PASSWORD, "new_password": "brand-new-secret"},
    )

    assert response.status_code == 204
    assert response.data == b""
    old = client.post("/api/v1/auth/login", json={"email": customer.email, "password": TEST_PASSWORD})
    new = client.post("/api/v1/auth/login", json={"email": customer.email, "password": "brand-new-secret"})
    assert old.status_code == 401
    assert new.status_code == 200


def test_a_password_change_revokes_every_token_issued_before_it(client, auth, customer):
    # Given a token copied elsewhere (the same as the one changing the password)
    copied = dict(auth)

    # when the password changes
    changed = client.post("/api/v1/me/password", headers=auth,
                          json={"current_password": TEST_PASSWORD, "new_password": "brand-new-secret"})

    # then the old tokens answer 401, and a token from signing in afresh works
    assert changed.status_code == 204
    assert client.get("/api/v1/me", headers=copied).status_code == 401
    fresh = client.post("/api/v1/auth/login", json={"email": customer.email, "password": "brand-new-secret"})
    assert client.get("/api/v1/me", headers={"Authorization": f"Bearer {fresh.json['access_token']}"}
                      ).status_code == 200


def test_a_refused_password_change_leaves_the_token_working(client, auth):
    client.post("/api/v1/me/password", headers=auth,
                json={"current_password": "not-it-at-all", "new_password": "brand-new-secret"})

    assert client.get("/api/v1/me", headers=auth).status_code == 200


def test_password_change_with_a_wrong_current_password_is_401(client, auth, customer):
    response = client.post(
        "/api/v1/me/password", headers=auth,
        json={"current_password": "not-it-at-all", "new_password": "brand-new-secret"},
    )

    assert response.status_code == 401
    login = client.post("/api/v1/auth/login", json={"email": customer.email, "password": TEST_PASSWORD})
    assert login.status_code == 200


def test_guessing_the_current_password_with_a_token_is_throttled(app, client, auth, customer):
    # Given a token in a stranger's hands, and the sign-in limit of 3 failures
    saved = app.config["LOGIN_RATE_LIMIT"]
    app.config["LOGIN_RATE_LIMIT"] = "3 per 5 minutes"
    try:
        # when they guess the current password again and again
        codes = [client.post("/api/v1/me/password", headers=auth,
                             json={"current_password": f"guess-{n}", "new_password": "brand-new-secret"}
                             ).status_code for n in range(4)]
        right = client.post("/api/v1/me/password", headers=auth,
                            json={"current_password": TEST_PASSWORD, "new_password": "brand-new-secret"})
    finally:
        app.config["LOGIN_RATE_LIMIT"] = saved

    # then the guesses count as failed sign-ins, and even the right one waits
    assert codes == [401, 401, 401, 429]
    assert right.status_code == 429
    assert int(right.headers["Retry-After"]) > 0 and right.json["detail"]


def test_password_change_to_a_short_password_is_422(client, auth):
    response = client.post(
        "/api/v1/me/password", headers=auth, json={"current_password": TEST_PASSWORD, "new_password": "short"}
    )

    assert response.status_code == 422
    assert "new_password" in response.json["errors"]


def test_create_and_list_addresses(client, auth):
    created = client.post("/api/v1/me/addresses", headers=auth, json=ADDRESS)

    assert created.status_code == 201
    assert created.json["country"] == "US"
    assert created.json["is_default"] is False
    listed = client.get("/api/v1/me/addresses", headers=auth).json
    assert [a["id"] for a in listed["items"]] == [created.json["id"]]


def test_a_new_default_replaces_the_old_default_of_the_same_type_only(client, auth, db):
    first = client.post("/api/v1/me/addresses", headers=auth, json=dict(ADDRESS, is_default=True)).json
    billing = client.post(
        "/api/v1/me/addresses", headers=auth, json=dict(ADDRESS, address_type="billing", is_default=True)
    ).json
    second = client.post("/api/v1/me/addresses", headers=auth, json=dict(ADDRESS, is_default=True)).json

    listed = client.get("/api/v1/me/addresses", headers=auth).json["items"]
    defaults = {a["id"]: a["is_default"] for a in listed}
    assert defaults == {first["id"]: False, billing["id"]: True, second["id"]: True}


def test_patch_makes_an_address_the_default(client, auth):
    first = client.post("/api/v1/me/addresses", headers=auth, json=dict(ADDRESS, is_default=True)).json
    second = client.post("/api/v1/me/addresses", headers=auth, json=ADDRESS).json

    response = client.patch(f"/api/v1/me/addresses/{second['id']}", headers=auth, json={"is_default": True})

    assert response.status_code == 200
    assert response.json["is_default"] is True
    assert client.get(f"/api/v1/me/addresses/{first['id']}", headers=auth).json["is_default"] is False


def test_patch_changes_fields_and_clears_the_phone(client, auth):
    address = client.post("/api/v1/me/addresses", headers=auth, json=dict(ADDRESS, phone="555-1234")).json

    response = client.patch(
        f"/api/v1/me/addresses/{address['id']}", headers=auth, json={"city": "Shelbyville", "phone": None}
    )

    assert response.status_code == 200
    assert response.json["city"] == "Shelbyville"
    assert response.json["phone"] is None
    assert response.json["street"] == ADDRESS["street"]


def test_delete_an_address(client, auth, db):
    address = client.post("/api/v1/me/addresses", headers=auth, json=ADDRESS).json

    response = client.delete(f"/api/v1/me/addresses/{address['id']}", headers=auth)

    assert response.status_code == 204
    assert db.session.get(Address, address["id"]) is None


@pytest.mark.parametrize(
    ("change", "field"),
    [({"country": "USA"}, "country"), ({"address_type": "home"}, "address_type"), ({"street": ""}, "street"),
     ({"postal_code": "x" * 21}, "postal_code")],
)
def test_invalid_addresses_are_422(client, auth, change, field):
    response = client.post("/api/v1/me/addresses", headers=auth, json=dict(ADDRESS, **change))

    assert response.status_code == 422
    assert field in response.json["errors"]


def test_missing_address_fields_are_422(client, auth):
    response = client.post("/api/v1/me/addresses", headers=auth, json={"address_type": "shipping"})

    assert response.status_code == 422
    assert {"full_name", "street", "city", "postal_code", "country"} <= set(response.json["errors"])


@pytest.mark.parametrize("method", ["get", "patch", "delete"])
def test_another_users_address_is_404_and_untouched(client, db, auth, other_customer, method):
    theirs = AddressFactory(user=other_customer, city="Theirsville")
    db.session.commit()

    url = f"/api/v1/me/addresses/{theirs.id}"
    response = getattr(client, method)(url, headers=auth, json={"city": "Mine"})

    assert response.status_code == 404
    assert response.json == {"detail": "Address not found."}
    db.session.expire_all()
    assert db.session.get(Address, theirs.id).city == "Theirsville"


def test_addresses_need_authentication(client, db):
    assert client.get("/api/v1/me/addresses").status_code == 401
    assert client.post("/api/v1/me/addresses", json=ADDRESS).status_code == 401
