"""Who did something: a signed-in user, or a part of the system."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Actor:
    """The author of a change, as written to history and audit rows.

    ``label`` is human readable ("admin@shop.test", "system:expiry");
    ``user_id`` is set when a person did it.
    """

    label: str
    user_id: int | None = None

    @classmethod
    def of_user(cls, user) -> Actor:
        return cls(label=user.email, user_id=user.id)


SYSTEM = Actor("system")
EXPIRY = Actor("system:expiry")
WEBHOOK = Actor("stripe:webhook")
