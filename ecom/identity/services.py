"""Users, passwords and addresses.

Emails are stored lower-cased, which makes them unique case-insensitively.
Role changes, (de)activations and password resets are audited here with the
actor who asked, whoever calls (back office, CLI, API). Callers commit; these
functions only flush.

Sessions: a back-office session and an API token carry the user's
``session_version`` from when they were issued; ``end_sessions`` bumps it (at
sign-out, password change or reset, deactivation), which ends every one of
them at once. A back-office session also ends after ``ADMIN_SESSION_IDLE_MINUTES``
without a request (``session_is_idle``).
"""

from __future__ import annotations

import unicodedata
from collections.abc import Iterable

from email_validator import EmailNotValidError, validate_email
from sqlalchemy import func, select, update

from ecom.actor import Actor
from ecom.audit.services import record_change
from ecom.db import utcnow
from ecom.errors import AuthenticationFailed, DuplicateError, NotFound, ValidationFailed
from ecom.extensions import db
from ecom.identity.common_passwords import is_common_password
from ecom.identity.models import Address, AddressType, Role, User
from ecom.identity.passwords import MAX_PASSWORD_BYTES, hash_password, verify_password
from ecom.runtime import settings

MIN_PASSWORD_LENGTH = 8
BAD_CREDENTIALS = "Invalid email or password."
ADDRESS_FIELDS = ("address_type", "full_name", "street", "city", "state", "postal_code", "country", "phone")

# Verifying against a real hash when the email is unknown keeps the response
# time the same, so timing does not reveal which emails have accounts.
_DUMMY_HASH: list[str] = []


def normalise_email(email: str) -> str:
    """The canonical form of ``email``: NFKC-normalised (so compatibility look-alikes such as
    full-width letters become the plain ones), then validated and lower-cased. Accounts are
    unique by this form. Raises ValidationFailed."""
    try:
        compatible = unicodedata.normalize("NFKC", (email or "").strip())
        checked = validate_email(compatible, check_deliverability=False)
    except EmailNotValidError as exc:
        raise ValidationFailed("Invalid email address.", {"email": [str(exc)]}) from exc
    return unicodedata.normalize("NFKC", checked.normalized.lower())


def check_password_strength(password: str, field: str = "password") -> None:
    """Raises ValidationFailed for a password too short or too long for bcrypt, or one of the
    common passwords attackers try first (``ecom.identity.common_passwords``)."""
    if len(password or "") < MIN_PASSWORD_LENGTH:
        message = f"Password must be at least {MIN_PASSWORD_LENGTH} characters."
        raise ValidationFailed(message, {field: [message]})
    if is_common_password(password):
        message = "This password is too common; choose one that is harder to guess."
        raise ValidationFailed(message, {field: [message]})
    if len(password.encode("utf-8")) > MAX_PASSWORD_BYTES:
        # bcrypt would silently ignore everything past 72 bytes.
        message = f"Password must be at most {MAX_PASSWORD_BYTES} bytes (UTF-8)."
        raise ValidationFailed(message, {field: [message]})


def _check_role(role: str) -> str:
    if role not in {r.value for r in Role}:
        raise ValidationFailed(f"Unknown role '{role}'.", {"role": [f"Must be one of {', '.join(Role)}."]})
    return str(role)


def find_user_by_email(email: str) -> User | None:
    return db.session.scalar(
        select(User).where(User.email == unicodedata.normalize("NFKC", (email or "").strip()).lower()))


def create_user(email: str, password: str, full_name: str = "", role: str = Role.CUSTOMER, *,
                actor: Actor | None = None) -> User:
    """A new active user; audited when someone else creates it (``actor``: staff, the CLI, the
    demo seed), not on a customer's own sign-up. Raises ValidationFailed, DuplicateError
    (email taken)."""
    email = normalise_email(email)
    check_password_strength(password)
    role = _check_role(role)
    if find_user_by_email(email) is not None:
        raise DuplicateError("An account with this email already exists.")
    user = User(email=email, hashed_password=hash_password(password), full_name=(full_name or "").strip(),
                role=role, is_active=True)
    db.session.add(user)
    db.session.flush()
    if actor is not None:
        record_change(actor, "create", "users", user.id, None, {"email": user.email, "role": user.role})
    return user


def authenticate(email: str, password: str) -> User:
    """The active user with these credentials. Raises AuthenticationFailed (one message for all causes)."""
    user = find_user_by_email(email)
    if user is None:
        if not _DUMMY_HASH:
            _DUMMY_HASH.append(hash_password("not-a-real-password"))
        verify_password(password, _DUMMY_HASH[0])
        raise AuthenticationFailed(BAD_CREDENTIALS)
    if not verify_password(password, user.hashed_password) or not user.is_active:
        raise AuthenticationFailed(BAD_CREDENTIALS)
    user.last_login_at = utcnow()
    db.session.flush()
    return user


def end_sessions(user: User) -> None:
    """End every back-office session and API token of ``user`` issued so far."""
    # One UPDATE adding 1: two requests ending sessions at once both move the version on.
    user.session_version = User.session_version + 1
    db.session.flush()  # the attribute is expired and reloads with the new value


def _column_int(value: object) -> int | None:
    # Ids and versions as they come back from a cookie or a token: whole numbers a column holds.
    if isinstance(value, int) and not isinstance(value, bool) and 0 <= value < 2**31:
        return value
    return None


def user_for_credentials(user_id: object, version: object) -> User | None:
    """The active user ``user_id`` names, if ``version`` (an int) is still their session
    version, i.e. nothing ended their sessions since; None otherwise, also for malformed values."""
    user_id, version = _column_int(user_id), _column_int(version)
    if user_id is None or version is None:
        return None
    user = db.session.get(User, user_id)
    if user is None or not user.is_active or (user.session_version or 0) != version:
        return None
    return user


def user_for_session(value: str | None) -> User | None:
    """The user a back-office session names (``User.get_id``: "id:version"), if that session
    is still valid."""
    parts = (value or "").split(":")
    if len(parts) != 2 or not all(p.isascii() and p.isdigit() and len(p) <= 10 for p in parts):
        return None
    return user_for_credentials(int(parts[0]), int(parts[1]))


def session_is_idle(last_seen: object, now: float) -> bool:
    """Whether a back-office session last used at ``last_seen`` (epoch seconds; anything
    else counts as never) has been idle longer than ``ADMIN_SESSION_IDLE_MINUTES`` at ``now``."""
    if isinstance(last_seen, bool) or not isinstance(last_seen, int | float):
        return True
    return now - last_seen > int(settings()["ADMIN_SESSION_IDLE_MINUTES"]) * 60


def update_profile(user: User, *, full_name: str | None = None) -> User:
    """Change the user's own profile fields."""
    if full_name is not None:
        user.full_name = full_name.strip()
    db.session.flush()
    return user


def change_password(user: User, current_password: str, new_password: str) -> None:
    """A new password, checked against the current one; every session and token of ``user``
    ends, the caller's own included.

    Raises AuthenticationFailed (current password wrong), ValidationFailed (weak new one)."""
    if not verify_password(current_password, user.hashed_password):
        raise AuthenticationFailed("The current password is wrong.")
    check_password_strength(new_password, field="new_password")
    user.hashed_password = hash_password(new_password)
    end_sessions(user)


def reset_password(user: User, new_password: str, *, actor: Actor) -> User:
    """Set a new password without the old one (staff, CLI); audited without the password.
    Every session and token of ``user`` ends.

    Raises ValidationFailed (a weak password).
    """
    check_password_strength(new_password)
    user.hashed_password = hash_password(new_password)
    end_sessions(user)
    record_change(actor, "reset_password", "users", user.id, None, {"password": "(changed)"})
    return user


def _refuse_self_deactivation(user_ids, active: bool, actor: Actor) -> None:
    if not active and actor.user_id is not None and actor.user_id in user_ids:
        raise ValidationFailed("You cannot deactivate your own account.")


def _set_active(user: User, active: bool, actor: Actor) -> bool:
    """Flip the flag and audit it; False when the user already had it."""
    if user.is_active == active:
        return False
    user.is_active = active
    if not active:
        end_sessions(user)  # reactivated, they sign in afresh
    record_change(actor, "update", "users", user.id, {"is_active": not active}, {"is_active": active})
    return True


def set_users_active(user_ids: Iterable[int], active: bool, *, actor: Actor) -> int:
    """(De)activate accounts, each change audited; returns how many changed. A deactivated
    user's sessions and tokens end at once.

    Raises ValidationFailed, changing nobody, when the batch would deactivate
    ``actor``'s own account.
    """
    ids = {int(i) for i in user_ids}
    _refuse_self_deactivation(ids, bool(active), actor)
    if not ids:
        return 0
    users = db.session.scalars(select(User).where(User.id.in_(ids)).order_by(User.id)).all()
    changed = sum(_set_active(user, bool(active), actor) for user in users)
    db.session.flush()
    return changed


def set_user_role(user: User, role: str, *, actor: Actor) -> User:
    """Give ``user`` another role, audited.

    Raises ValidationFailed for an unknown role, or for an admin taking the
    admin role from themselves (nobody would be left to give it back); then
    nothing changes.
    """
    role = _check_role(role)
    if user.id == actor.user_id and role != Role.ADMIN:
        raise ValidationFailed("You cannot take the admin role from yourself.")
    if user.role != role:
        record_change(actor, "update", "users", user.id, {"role": user.role}, {"role": role})
        user.role = role
    db.session.flush()
    return user


# --- addresses ---------------------------------------------------------------


def list_addresses(user: User) -> list[Address]:
    return list(db.session.scalars(select(Address).where(Address.user_id == user.id).order_by(Address.id)))


def get_address(user: User, address_id: int) -> Address:
    """One of the user's addresses. Raises NotFound, also for another user's."""
    address = db.session.scalar(select(Address).where(Address.id == address_id, Address.user_id == user.id))
    if address is None:
        raise NotFound("Address not found.")
    return address


def _clean_address_fields(fields: dict) -> dict:
    cleaned = {key: value for key, value in fields.items() if key in ADDRESS_FIELDS}
    if "address_type" in cleaned and cleaned["address_type"] not in {t.value for t in AddressType}:
        raise ValidationFailed("Invalid address type.", {"address_type": ["Must be shipping or billing."]})
    if "country" in cleaned:
        country = (cleaned["country"] or "").strip().upper()
        if len(country) != 2 or not country.isascii() or not country.isalpha():
            raise ValidationFailed("Invalid country.", {"country": ["Must be an ISO 3166-1 alpha-2 code."]})
        cleaned["country"] = country
    return cleaned


def _clear_other_defaults(user_id: int, address_type: str, keep_id: int | None) -> None:
    # The partial unique index allows one default per type: unset the old one first.
    statement = update(Address).where(
        Address.user_id == user_id, Address.address_type == address_type, Address.is_default.is_(True)
    )
    if keep_id is not None:
        statement = statement.where(Address.id != keep_id)
    db.session.execute(statement.values(is_default=False), execution_options={"synchronize_session": "fetch"})


def add_address(user: User, *, is_default: bool = False, **fields) -> Address:
    """A new address of the user; ``is_default`` takes over from the type's previous default.

    Raises ValidationFailed.
    """
    cleaned = _clean_address_fields(fields)
    address = Address(user_id=user.id, is_default=False, **cleaned)
    db.session.add(address)
    db.session.flush()
    if is_default:
        _clear_other_defaults(user.id, address.address_type, keep_id=address.id)
        address.is_default = True
        db.session.flush()
    return address


def update_address(address: Address, *, is_default: bool | None = None, **fields) -> Address:
    """Change an address; a default that changes type becomes that type's default.

    Raises ValidationFailed.
    """
    cleaned = _clean_address_fields(fields)
    make_default = address.is_default if is_default is None else is_default
    address.is_default = False  # step aside while the type may change
    for key, value in cleaned.items():
        setattr(address, key, value)
    db.session.flush()
    if make_default:
        _clear_other_defaults(address.user_id, address.address_type, keep_id=address.id)
        address.is_default = True
        db.session.flush()
    return address


def delete_address(address: Address) -> None:
    db.session.delete(address)
    db.session.flush()


def count_users() -> int:
    return db.session.scalar(select(func.count(User.id))) or 0
