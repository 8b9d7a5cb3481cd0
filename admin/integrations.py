"""Calls into services other areas own, plus the back office's own guard rails and audit rows."""

from __future__ import annotations

from ecom.actor import Actor
from ecom.audit.services import record_change
from ecom.catalog import reviews
from ecom.catalog.models import Review
from ecom.errors import ValidationFailed
from ecom.identity import services as identity
from ecom.identity.models import Role, User


def set_review_hidden(review: Review, hidden: bool, *, actor: Actor) -> Review:
    """Hide or show a review (the product's rating follows). Audited."""
    before = {"is_hidden": review.is_hidden}
    (reviews.hide_review if hidden else reviews.show_review)(review)
    record_change(actor, "update", "reviews", review.id, before, {"is_hidden": review.is_hidden})
    return review


def set_user_role(user: User, role: str, *, actor: Actor) -> User:
    """Change a user's role. Raises ValidationFailed for an unknown role or an admin demoting themselves."""
    if user.id == actor.user_id and role != Role.ADMIN:
        raise ValidationFailed("You cannot take the admin role from yourself.")
    before = {"role": user.role}
    identity.set_user_role(user, role)
    record_change(actor, "update", "users", user.id, before, {"role": user.role})
    return user


def set_user_active(user: User, active: bool, *, actor: Actor) -> User:
    """Activate or deactivate an account. Raises ValidationFailed when deactivating oneself."""
    if user.id == actor.user_id and not active:
        raise ValidationFailed("You cannot deactivate your own account.")
    before = {"is_active": user.is_active}
    identity.set_user_active(user, active)
    record_change(actor, "update", "users", user.id, before, {"is_active": user.is_active})
    return user


def reset_password(user: User, new_password: str, *, actor: Actor) -> User:
    """Give a user a new password; the audit row says only that it changed. Raises ValidationFailed."""
    identity.reset_password(user, new_password)
    record_change(actor, "reset_password", "users", user.id, None, {"password": "(changed)"})
    return user
