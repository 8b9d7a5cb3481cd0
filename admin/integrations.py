"""Calls into services other areas own, in one place.

Where such a service has not landed yet, a small local stand-in writes the
same change (and is marked as such) so the back office works meanwhile.
"""

from __future__ import annotations

from ecom.actor import Actor
from ecom.audit.services import record_change
from ecom.catalog.models import Review
from ecom.errors import ValidationFailed
from ecom.extensions import db
from ecom.identity.models import Role, User


def set_review_hidden(review: Review, hidden: bool, *, actor: Actor) -> Review:
    """Hide or show a review through the catalog's review service."""
    before = {"is_hidden": review.is_hidden}
    try:
        from ecom.catalog import reviews
    except ImportError:  # stand-in until ecom/catalog/reviews.py lands
        review.is_hidden = hidden
        db.session.flush()
    else:
        (reviews.hide_review if hidden else reviews.show_review)(review, actor=actor)
    record_change(actor, "update", "reviews", review.id, before, {"is_hidden": review.is_hidden})
    return review


def _identity_services():
    try:
        from ecom.identity import services
    except ImportError:  # stand-in until ecom/identity/services.py lands
        return None
    return services


def set_user_role(user: User, role: str, *, actor: Actor) -> User:
    """Change a user's role. Raises ValidationFailed for an unknown role or demoting oneself."""
    services = _identity_services()
    before = {"role": user.role}
    if services is not None and hasattr(services, "set_user_role"):
        services.set_user_role(user, role, actor=actor)
    else:
        if role not in set(Role):
            raise ValidationFailed(f"Unknown role '{role}'.", {"role": ["Pick a listed role."]})
        if user.id == actor.user_id and role != Role.ADMIN:
            raise ValidationFailed("You cannot take the admin role from yourself.")
        user.role = role
        db.session.flush()
    record_change(actor, "update", "users", user.id, before, {"role": user.role})
    return user


def set_user_active(user: User, active: bool, *, actor: Actor) -> User:
    """Activate or deactivate an account. Raises ValidationFailed when deactivating oneself."""
    services = _identity_services()
    before = {"is_active": user.is_active}
    if services is not None and hasattr(services, "set_user_active"):
        services.set_user_active(user, active, actor=actor)
    else:
        if user.id == actor.user_id and not active:
            raise ValidationFailed("You cannot deactivate your own account.")
        user.is_active = active
        db.session.flush()
    record_change(actor, "update", "users", user.id, before, {"is_active": user.is_active})
    return user


def reset_password(user: User, new_password: str, *, actor: Actor) -> User:
    """Give a user a new password (hash never shown or logged). Raises ValidationFailed."""
    services = _identity_services()
    if services is not None and hasattr(services, "reset_password"):
        services.reset_password(user, new_password, actor=actor)
    else:
        from ecom.identity.passwords import MAX_PASSWORD_BYTES, hash_password

        if len(new_password) < 8 or len(new_password.encode()) > MAX_PASSWORD_BYTES:
            raise ValidationFailed("Passwords need 8 to 72 characters.", {"password": ["Too short or long."]})
        user.hashed_password = hash_password(new_password)
        db.session.flush()
    record_change(actor, "reset_password", "users", user.id, None, {"password": "(changed)"})
    return user
