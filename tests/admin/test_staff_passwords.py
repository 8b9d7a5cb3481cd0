"""Staff accounts without a terminal: invited by an admin, password set from an emailed
one-time link; a forgotten password reset the same way. Tokens are signed, expire, work once."""

from __future__ import annotations

import re

import pytest
from sqlalchemy import select

from admin.passwords import RESET_SENT
from ecom.audit.models import AuditLog
from ecom.identity import invitations
from ecom.identity.models import User
from ecom.notifications.models import Notification, OutboxEvent
from tests.admin.conftest import new_client

NEW_PASSWORD = "lantern-harbour-velvet"


def _emailed_link(db, recipient: str, event_type: str) -> str:
    """The set-password link of the latest such email to ``recipient`` (from the outbox row)."""
    events = db.session.scalars(select(OutboxEvent).where(OutboxEvent.type == event_type)
                                .order_by(OutboxEvent.created_at)).all()
    data = [e.payload["data"] for e in events if e.payload["data"]["user_email"] == recipient]
    assert data, f"no {event_type} email to {recipient}"
    return data[-1]["link"]


def _path(link: str) -> str:
    return re.sub(r"^https?://[^/]+", "", link)


def _sign_in(app, email, password):
    return new_client(app).post("/admin/login", data={"email": email, "password": password})


def test_an_admin_invites_staff_who_set_their_password_from_the_link(app, as_role, db):
    # When an admin invites a warehouse clerk
    response = as_role("admin").post("/admin/user/invite", data={
        "email": "New.Clerk@Shop.example.com", "full_name": "New Clerk", "role": "warehouse"},
        follow_redirects=True)
    assert "was invited as warehouse" in response.get_data(as_text=True)
    user = db.session.scalar(select(User).where(User.email == "new.clerk@shop.example.com"))
    assert user.role == "warehouse" and user.is_active

    # Then they get an email with a one-time link, which the invitation's audit entry names
    link = _emailed_link(db, "new.clerk@shop.example.com", "STAFF_INVITED")
    assert link.startswith("http://localhost/admin/password/invite/")
    assert db.session.scalar(select(Notification).where(
        Notification.recipient == "new.clerk@shop.example.com"))
    assert db.session.scalar(select(AuditLog).where(AuditLog.entity == "users", AuditLog.action == "create",
                                                    AuditLog.entity_id == str(user.id)))
    # Nobody can sign in before the password is set
    assert _sign_in(app, "new.clerk@shop.example.com", NEW_PASSWORD).status_code == 401

    # When they open the link and choose a password
    visitor = new_client(app)
    page = visitor.get(_path(link))
    assert page.status_code == 200 and "new.clerk@shop.example.com" in page.get_data(as_text=True)
    done = visitor.post(_path(link), data={"password": NEW_PASSWORD, "confirm": NEW_PASSWORD})
    assert done.status_code == 302 and done.headers["Location"].endswith("/admin/login")

    # Then they can sign in, and the link does not work a second time
    assert _sign_in(app, "new.clerk@shop.example.com", NEW_PASSWORD).status_code == 302
    again = new_client(app).post(_path(link), data={"password": "another-pass-phrase", "confirm":
                                                    "another-pass-phrase"})
    assert again.status_code == 410 and "expired or was used already" in again.get_data(as_text=True)
    assert _sign_in(app, "new.clerk@shop.example.com", "another-pass-phrase").status_code == 401


def test_only_staff_roles_are_invited_and_only_by_admins(as_role, db):
    refused = as_role("admin").post("/admin/user/invite",
                                    data={"email": "c@shop.example.com", "role": "customer"},
                                    follow_redirects=True)
    assert "Not a valid choice" in refused.get_data(as_text=True)
    assert as_role("merchandiser").get("/admin/user/invite").status_code == 403
    assert db.session.scalar(select(User).where(User.email == "c@shop.example.com")) is None


def test_a_forgotten_password_is_reset_from_the_emailed_link(app, db, staff):
    visitor = new_client(app)

    response = visitor.post("/admin/password/forgot", data={"email": "merchandiser@shop.test"},
                            follow_redirects=True)

    assert RESET_SENT in response.get_data(as_text=True)
    link = _emailed_link(db, "merchandiser@shop.test", "PASSWORD_RESET")
    assert "/admin/password/reset/" in link
    visitor.post(_path(link), data={"password": NEW_PASSWORD, "confirm": NEW_PASSWORD})
    assert _sign_in(app, "merchandiser@shop.test", NEW_PASSWORD).status_code == 302


@pytest.mark.parametrize("email", ["nobody@shop.test", "customer@shop.test"])
def test_a_reset_for_an_unknown_or_customer_email_says_the_same_and_sends_nothing(app, db, staff, email):
    response = new_client(app).post("/admin/password/forgot", data={"email": email}, follow_redirects=True)

    assert RESET_SENT in response.get_data(as_text=True)
    assert db.session.scalars(select(OutboxEvent).where(OutboxEvent.type == "PASSWORD_RESET")).all() == []


def test_an_expired_or_forged_link_is_refused(app, db, staff, monkeypatch):
    with app.test_request_context():
        token = invitations.password_token(staff["warehouse"], invitations.Purpose.RESET)
    visitor = new_client(app)

    forged = visitor.get(f"/admin/password/reset/{token[:-2]}xx")
    other_purpose = visitor.get(f"/admin/password/invite/{token}")
    monkeypatch.setitem(invitations.LIFETIME_SECONDS, invitations.Purpose.RESET, -1)
    expired = visitor.post(f"/admin/password/reset/{token}", data={"password": NEW_PASSWORD,
                                                                   "confirm": NEW_PASSWORD})

    assert [forged.status_code, other_purpose.status_code, expired.status_code] == [410, 410, 410]
    assert _sign_in(app, "warehouse@shop.test", NEW_PASSWORD).status_code == 401


def test_a_weak_password_is_refused_and_the_link_still_works(app, db, staff):
    with app.test_request_context():
        token = invitations.password_token(staff["warehouse"], invitations.Purpose.RESET)
    visitor = new_client(app)

    weak = visitor.post(f"/admin/password/reset/{token}",
                        data={"password": "password", "confirm": "password"})

    assert weak.status_code == 200 and "too common" in weak.get_data(as_text=True)
    assert visitor.get(f"/admin/password/reset/{token}").status_code == 200


def test_the_sent_link_is_not_shown_to_other_admins(app, as_role, db, staff):
    new_client(app).post("/admin/password/forgot", data={"email": "merchandiser@shop.test"})
    link = _emailed_link(db, "merchandiser@shop.test", "PASSWORD_RESET")
    sent = db.session.scalar(select(Notification).where(Notification.event_type == "PASSWORD_RESET"))

    page = as_role("admin").get(f"/admin/notification/details/?id={sent.id}").get_data(as_text=True)

    assert "not shown" in page and _path(link) not in page
