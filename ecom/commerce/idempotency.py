"""``Idempotency-Key``: the first answer to a request is the answer to its retries."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy import select

from ecom.commerce.models import IdempotencyKey
from ecom.commerce.sql import insert_unless_exists
from ecom.db import utcnow
from ecom.errors import Conflict, ValidationFailed
from ecom.extensions import db

MAX_KEY_LENGTH = 255


class IdempotencyKeyReused(ValidationFailed):
    """The key was first used for a different request (422, as the IETF draft says)."""


@dataclass(frozen=True)
class StoredAnswer:
    status: int
    body: dict


def request_fingerprint(scope: str, body: object) -> str:
    """A stable hash of what was asked: the operation and its canonical JSON body."""
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(f"{scope}\n{canonical}".encode()).hexdigest()


def run_idempotently(user_id: int | None, key: str, fingerprint: str,
                     produce: Callable[[], tuple[int, dict]], *, cart_token: str | None = None,
                     stored_form: Callable[[dict], dict] | None = None) -> StoredAnswer:
    """Answer with the stored response for ``key``, or produce, store and return a new one.

    Keys belong to the signed-in ``user_id``, or (a guest, ``user_id`` None) to the guest
    cart's ``cart_token``. ``stored_form`` turns the answer into what is stored (say,
    without a secret shown once); the caller puts back what a replay must show.

    The key row is inserted in the caller's transaction before ``produce`` runs:
    a concurrent request with the same key waits on the unique index (PostgreSQL)
    until the first commits, then replays its answer. If ``produce`` raises,
    the caller rolls back and the key is free again, so a failed attempt
    (out of stock, gateway down) can be retried with it.
    Raises ValidationFailed (empty or over-long key), IdempotencyKeyReused,
    Conflict (the first request with this key is still running).
    """
    key = (key or "").strip()
    if not key or len(key) > MAX_KEY_LENGTH:
        raise ValidationFailed("Idempotency-Key must be 1 to 255 characters.",
                               {"Idempotency-Key": ["Must be 1 to 255 characters."]})
    owner = (IdempotencyKey.user_id == user_id if user_id is not None
             else IdempotencyKey.cart_token == cart_token)
    if _claim(user_id, cart_token, key, fingerprint):
        status, body = produce()
        db.session.execute(
            IdempotencyKey.__table__.update()
            .where(owner, IdempotencyKey.key == key)
            .values(response_status=status, response_body=stored_form(body) if stored_form else body)
        )
        return StoredAnswer(status, body)
    stored = db.session.scalar(
        select(IdempotencyKey).where(owner, IdempotencyKey.key == key)
        .execution_options(populate_existing=True)
    )
    if stored.request_hash != fingerprint:
        raise IdempotencyKeyReused(
            "This Idempotency-Key was already used with a different request.",
            {"Idempotency-Key": ["Already used with a different request."]},
        )
    if stored.response_status is None:
        raise Conflict("A request with this Idempotency-Key is still being processed.")
    return StoredAnswer(stored.response_status, stored.response_body)


def _claim(user_id: int | None, cart_token: str | None, key: str, fingerprint: str) -> bool:
    if (user_id is None) == (cart_token is None):
        raise ValueError("An idempotency key belongs to a user or to a guest cart's token.")
    return insert_unless_exists(IdempotencyKey, user_id=user_id, cart_token=cart_token, key=key,
                                request_hash=fingerprint, created_at=utcnow())
