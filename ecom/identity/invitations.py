"""Staff accounts without a terminal: an admin invites a person, who sets their own password
from an emailed one-time link; any staff user can reset a forgotten password the same way.

The links carry a token signed with ``SECRET_KEY`` (itsdangerous, which Flask ships): the user
id and a fingerprint of the user's password hash and session version. It expires after its
purpose's lifetime, and it is single-use: setting the password changes the hash (and ends the
sessions), so the fingerprint no longer matches and the same link is refused. Emails go out
through the outbox after the commit (``STAFF_INVITED``, ``PASSWORD_RESET``).
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Callable
from enum import StrEnum

from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer

from ecom.actor import Actor
from ecom.audit.services import record_change
from ecom.errors import ValidationFailed
from ecom.extensions import db
from ecom.identity.models import STAFF_ROLES, User
from ecom.identity.passwords import hash_password
from ecom.identity.services import (
    _check_role,
    check_password_strength,
    create_user,
    end_sessions,
    find_user_by_email,
)
from ecom.notifications.models import EventType
from ecom.notifications.services import emit
from ecom.runtime import settings


class Purpose(StrEnum):
    INVITE = "invite"
    RESET = "reset"


# How long a link works, by purpose: an invitation waits for someone to read their mail.
LIFETIME_SECONDS = {Purpose.INVITE: 72 * 3600, Purpose.RESET: 3600}
BAD_LINK = ("This link has expired or was used already. Ask for a new one "
            "(“Forgot your password?” on the sign-in page, or an administrator).")

LinkFor = Callable[[str], str]  # token -> the absolute URL of the set-password page


def _serializer(purpose: Purpose) -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(settings()["SECRET_KEY"], salt=f"staff-password-{purpose}")


def _fingerprint(user: User) -> str:
    material = f"{user.hashed_password}:{user.session_version or 0}".encode()
    return hashlib.sha256(material).hexdigest()[:24]


def password_token(user: User, purpose: Purpose) -> str:
    """A signed token to set ``user``'s password, valid until it expires or the password changes."""
    return _serializer(purpose).dumps({"u": user.id, "f": _fingerprint(user)})


def user_for_token(token: str, purpose: Purpose) -> User:
    """The active staff user ``token`` is for. Raises ValidationFailed (BAD_LINK) when it is
    forged, expired, used, or its user is gone, deactivated or no longer staff."""
    try:
        payload = _serializer(purpose).loads(token or "", max_age=LIFETIME_SECONDS[purpose])
    except (SignatureExpired, BadSignature):
        raise ValidationFailed(BAD_LINK) from None
    if not isinstance(payload, dict) or not isinstance(payload.get("u"), int):
        raise ValidationFailed(BAD_LINK)
    user = db.session.get(User, payload["u"])
    if (user is None or not user.is_active or not user.is_staff
            or not secrets.compare_digest(str(payload.get("f")), _fingerprint(user))):
        raise ValidationFailed(BAD_LINK)
    return user


def set_password_with_token(token: str, purpose: Purpose, new_password: str) -> User:
    """Set the password the link is for; the link stops working and every session of the user
    ends. Audited as the user's own change. Raises ValidationFailed (bad link, weak password)."""
    user = user_for_token(token, purpose)
    check_password_strength(new_password)
    user.hashed_password = hash_password(new_password)
    end_sessions(user)
    record_change(Actor.of_user(user), f"set_password.{purpose}", "users", user.id, None,
                  {"password": "(set from an emailed link)"}, label=user.email)
    return user


def invite_staff(email: str, *, full_name: str, role: str, actor: Actor, link_for: LinkFor) -> User:
    """A new staff account with no usable password, and the email with its set-password link.
    Raises ValidationFailed (not a staff role, bad email), DuplicateError (email taken)."""
    if _check_role(role) not in STAFF_ROLES:
        raise ValidationFailed("Invite staff here (admin, merchandiser, warehouse); customers sign up "
                               "in the shop.", {"role": ["Not a staff role."]})
    # Nobody knows this password: the account is usable once its owner sets one from the link.
    user = create_user(email, secrets.token_urlsafe(32), full_name, role, actor=actor)
    _email_link(user, Purpose.INVITE, link_for, invited_by=actor.label)
    return user


def resend_invitation(user: User, *, actor: Actor, link_for: LinkFor) -> None:
    """Send a staff user a fresh set-password link (an invitation lost, or a reset on their behalf)."""
    if not user.is_staff or not user.is_active:
        raise ValidationFailed("Only active staff accounts get a set-password link.")
    _email_link(user, Purpose.INVITE, link_for, invited_by=actor.label)
    record_change(actor, "send_password_link", "users", user.id, None, {"link": "(emailed)"},
                  label=user.email)


def request_password_reset(email: str, *, link_for: LinkFor) -> bool:
    """Email a reset link if ``email`` is an active staff account. The caller says the same
    thing either way (no telling who has an account); True when a link was sent."""
    user = find_user_by_email(email)
    if user is None or not user.is_active or not user.is_staff:
        return False
    _email_link(user, Purpose.RESET, link_for)
    return True


def _email_link(user: User, purpose: Purpose, link_for: LinkFor, **extra) -> None:
    event = EventType.STAFF_INVITED if purpose == Purpose.INVITE else EventType.PASSWORD_RESET
    emit(event, {"user_email": user.email, "full_name": user.full_name, "role": user.role,
                 "link": link_for(password_token(user, purpose)),
                 "valid_hours": LIFETIME_SECONDS[purpose] // 3600, **extra})
