"""Throttling failed sign-ins, the same for the API and the back office.

Failures are counted in the app's rate-limit storage (Redis in production), in
three counters, and a sign-in waits while any of them is full:

- per email and client address (``LOGIN_RATE_LIMIT``): one machine guessing one
  account;
- per client address, any email (``LOGIN_IP_RATE_LIMIT``): one machine trying
  many accounts;
- per email from anywhere (``LOGIN_EMAIL_RATE_LIMIT``, a longer window): many
  machines guessing one account.

So a stranger's failures throttle the stranger: the account's owner, signing in
from elsewhere, is only held up by the per-email ceiling, which takes a
distributed attack to reach. Only failures count; emails are stored hashed.
"""

from __future__ import annotations

import hashlib
import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

from limits import RateLimitItem, parse
from limits.strategies import RateLimiter

from ecom.extensions import limiter
from ecom.runtime import settings

log = logging.getLogger(__name__)
T = TypeVar("T")


def _with_strategy(work: Callable[[RateLimiter], T]) -> T:
    """``work`` run against the limiter's strategy; when the storage (Redis) is unreachable,
    against the in-memory fallback, as Flask-Limiter does for the limits it enforces itself
    (and it switches back once the storage answers again)."""
    try:
        return work(limiter.limiter)
    except Exception:
        # Any storage error (redis-py's, or limits' StorageError): what Flask-Limiter catches too.
        if not limiter._in_memory_fallback_enabled or limiter._storage_dead:
            raise
        log.warning("rate limit storage unreachable: sign-in throttle falls back to memory")
        limiter._storage_dead = True
        return work(limiter.limiter)


def _email_key(email: str) -> str:
    # The form identity looks emails up by; hashed, so the storage holds no addresses.
    normalised = (email or "").strip().lower()
    return hashlib.sha256(normalised.encode("utf-8", "surrogatepass")).hexdigest()


@dataclass(frozen=True)
class SignInThrottle:
    """The failure counters a sign-in as ``email`` from ``client`` (an IP address) is held to."""

    email: str
    client: str

    def _counters(self) -> list[tuple[RateLimitItem, tuple[str, ...]]]:
        config = settings()
        email, client = _email_key(self.email), self.client or "unknown"
        return [
            (parse(config["LOGIN_RATE_LIMIT"]), ("login-email-ip", email, client)),
            (parse(config["LOGIN_IP_RATE_LIMIT"]), ("login-ip", client)),
            (parse(config["LOGIN_EMAIL_RATE_LIMIT"]), ("login-email", email)),
        ]

    @staticmethod
    def _enabled() -> bool:
        return bool(settings()["RATELIMIT_ENABLED"]) and limiter.enabled

    def wait_seconds(self) -> int:
        """0 when a sign-in may be tried now, else the seconds until every counter lets it."""
        if not self._enabled():
            return 0

        def wait(strategy: RateLimiter) -> int:
            waits = []
            for limit, identifiers in self._counters():
                if not strategy.test(limit, *identifiers):
                    reset_at, _ = strategy.get_window_stats(limit, *identifiers)
                    waits.append(max(1, math.ceil(reset_at - time.time())))
            return max(waits, default=0)

        return _with_strategy(wait)

    def record_failure(self) -> None:
        """Count a failed sign-in (wrong password, unknown email, not allowed in)."""
        if not self._enabled():
            return

        def hit(strategy: RateLimiter) -> None:
            for limit, identifiers in self._counters():
                strategy.hit(limit, *identifiers)

        _with_strategy(hit)
