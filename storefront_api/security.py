"""Bearer tokens: HS256 JWTs whose ``sub`` is the user id and ``ver`` the user's
session version when it was issued.

``decode_access_token`` refuses every token that is not exactly what
``issue_access_token`` makes: another algorithm (``none`` included), no
``exp`` or ``ver``, expired, bad signature, an unknown or deactivated user, and
a token issued before the user's sessions ended (a password change or reset,
a deactivation: ``identity.services.end_sessions``).
"""

from __future__ import annotations

from datetime import timedelta
from functools import wraps

import jwt
from flask import current_app, g, request
from flask_limiter.util import get_remote_address

from ecom.db import utcnow
from ecom.errors import AuthenticationFailed
from ecom.identity.models import User
from ecom.identity.services import user_for_credentials
from ecom.identity.throttle import SignInThrottle
from storefront_api.errors import error_response

ALGORITHM = "HS256"
TOKEN_TYPE = "bearer"


def issue_access_token(user: User) -> tuple[str, int]:
    """A signed token for ``user`` and its lifetime in seconds."""
    lifetime = int(current_app.config["JWT_LIFETIME_SECONDS"])
    now = utcnow()
    claims = {"sub": str(user.id), "ver": user.session_version or 0, "iat": now,
              "exp": now + timedelta(seconds=lifetime)}
    token = jwt.encode(claims, current_app.config["JWT_SECRET"], algorithm=ALGORITHM)
    return token, lifetime


def decode_access_token(token: str) -> User:
    """The active user the token names. Raises AuthenticationFailed."""
    try:
        claims = jwt.decode(
            token,
            current_app.config["JWT_SECRET"],
            algorithms=[ALGORITHM],
            options={"require": ["exp", "sub", "ver"]},
        )
    except jwt.ExpiredSignatureError as exc:
        raise AuthenticationFailed("The token has expired.") from exc
    except jwt.InvalidTokenError as exc:
        raise AuthenticationFailed("The token is invalid.") from exc
    subject = claims.get("sub")
    if not isinstance(subject, str) or not subject.isdigit() or len(subject) > 18:
        raise AuthenticationFailed("The token is invalid.")
    user = user_for_credentials(int(subject), claims.get("ver"))
    if user is None:
        raise AuthenticationFailed("The token does not name an active user, or was revoked.")
    return user


def bearer_token() -> str | None:
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    return token.strip()


def authenticate_request(required: bool = True) -> User | None:
    """Resolve the request's bearer token into ``g.current_user``.

    Without a token: AuthenticationFailed when ``required``, else None. A token
    that is present but bad is always refused, even where auth is optional.
    """
    # Tests share one app context across requests, so never leave a previous user behind.
    g.current_user = g.current_user_id = None
    token = bearer_token()
    if token is None:
        if required:
            raise AuthenticationFailed("Authentication required.")
        return None
    user = decode_access_token(token)
    g.current_user = user
    g.current_user_id = user.id  # read by the request log
    return user


def current_user() -> User:
    """The signed-in user of this request (after ``auth_required``)."""
    user = g.get("current_user")
    if user is None:
        raise AuthenticationFailed("Authentication required.")
    return user


def optional_user() -> User | None:
    return g.get("current_user")


def auth_required(view):
    """Refuse the request with 401 unless it carries a valid bearer token."""

    @wraps(view)
    def wrapper(*args, **kwargs):
        authenticate_request(required=True)
        return view(*args, **kwargs)

    return wrapper


def sign_in_throttle(email: str) -> SignInThrottle:
    """Identity's failed sign-in counters for ``email`` from this request's client."""
    return SignInThrottle(email, get_remote_address())


def throttled_response(throttle: SignInThrottle):
    """429 with ``Retry-After`` while ``throttle`` holds the caller back, else None."""
    wait = throttle.wait_seconds()
    if not wait:
        return None
    return error_response(429, "Too many failed sign-ins; try again later.",
                          headers={"Retry-After": str(wait)})
