"""A staff user's own settings: the time zone the back office shows their dates in."""

from __future__ import annotations

from functools import cache
from zoneinfo import available_timezones

from ecom.errors import ValidationFailed
from ecom.extensions import db
from ecom.identity.models import User


@cache
def time_zone_names() -> tuple[str, ...]:
    return tuple(sorted(name for name in available_timezones() if "/" in name or name == "UTC"))


def set_time_zone(user: User, name: str | None) -> User:
    """Show ``user``'s dates in ``name`` (an IANA zone); empty means UTC. Raises ValidationFailed."""
    name = (name or "").strip() or None
    if name is not None and name not in time_zone_names():
        raise ValidationFailed(f"Unknown time zone '{name[:64]}'.",
                               {"time_zone": ["Pick one from the list."]})
    user.time_zone = name
    db.session.flush()
    return user
