"""What every payment gateway speaks: integer minor units and Stripe's vocabulary.

Payment intent statuses, ``pm_card_*`` test payment methods and signed webhook
events are Stripe's, so the rest of the code never cares which gateway it
talks to. Any failure to reach or understand a gateway is raised as
``GatewayUnavailable``.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from decimal import Decimal
from typing import Protocol

from ecom.db import money

SUCCEEDED = "succeeded"
CANCELED = "canceled"
REQUIRES_PAYMENT_METHOD = "requires_payment_method"
# The customer must do something (3-D Secure): ``Intent.next_action_url`` says where.
REQUIRES_ACTION = "requires_action"
DEFAULT_TEST_PAYMENT_METHOD = "pm_card_visa"
DECLINING_TEST_PAYMENT_METHODS = frozenset(
    {"pm_card_chargeDeclined", "pm_card_visa_chargeDeclined", "pm_card_chargeDeclinedInsufficientFunds"}
)
# Stripe's test cards that ask the customer to authenticate (3-D Secure) before paying.
AUTHENTICATION_TEST_PAYMENT_METHODS = frozenset(
    {"pm_card_threeDSecure2Required", "pm_card_threeDSecureRequired", "pm_card_authenticationRequired"}
)
AUTHENTICATION_FAILED = "The customer failed to authenticate the payment (3-D Secure)."


@dataclass(frozen=True)
class Intent:
    id: str
    client_secret: str | None
    status: str
    amount_minor: int
    currency: str = "usd"
    failure_message: str | None = None
    metadata: dict = field(default_factory=dict)
    next_action_url: str | None = None  # where the customer goes while it requires_action

    @property
    def succeeded(self) -> bool:
        return self.status == SUCCEEDED

    @property
    def declined(self) -> bool:
        """A confirmation attempt failed (Stripe sends the intent back to needing a method)."""
        return self.status == REQUIRES_PAYMENT_METHOD and self.failure_message is not None

    def but(self, **changes) -> Intent:
        """This intent with ``changes`` applied."""
        return replace(self, **changes)


@dataclass(frozen=True)
class Refund:
    """The gateway's answer to a refund request."""

    id: str
    amount_minor: int
    status: str


@dataclass(frozen=True)
class RefundedCharge:
    """What a ``charge.refunded`` event tells us: the charge's intent and its refunds so far."""

    payment_intent_id: str | None
    amount_refunded_minor: int


def to_minor(amount: Decimal) -> int:
    """Decimal money to integer minor units (cents); exact, no float on the way."""
    return int(money(amount) * 100)


def from_minor(amount_minor: int) -> Decimal:
    return money(Decimal(amount_minor) / 100)


def intent_from_dict(obj) -> Intent:
    """An ``Intent`` from Stripe's payment intent object (a dict or a StripeObject)."""
    if hasattr(obj, "to_dict"):
        obj = obj.to_dict()
    error = obj.get("last_payment_error")
    return Intent(
        id=obj["id"],
        client_secret=obj.get("client_secret"),
        status=obj["status"],
        amount_minor=int(obj["amount"]),
        currency=obj.get("currency") or "usd",
        failure_message=(error.get("message") or error.get("code") or "declined") if error else None,
        metadata=dict(obj.get("metadata") or {}),
        next_action_url=_redirect_url(obj.get("next_action")),
    )


def _redirect_url(next_action) -> str | None:
    """The page Stripe sends the customer to (``next_action.redirect_to_url.url``), if any."""
    if not isinstance(next_action, dict):
        return None
    redirect = next_action.get("redirect_to_url")
    url = redirect.get("url") if isinstance(redirect, dict) else None
    return url if isinstance(url, str) else None


class PaymentGateway(Protocol):
    name: str

    def create_intent(
        self, amount_minor: int, currency: str, metadata: dict, idempotency_key: str | None = None
    ) -> Intent: ...

    def retrieve_intent(self, intent_id: str) -> Intent: ...

    def confirm_intent(self, intent_id: str, payment_method: str, return_url: str | None = None) -> Intent:
        """Confirm with ``payment_method``; a redirect for authentication comes back to ``return_url``."""
        ...

    def cancel_intent(self, intent_id: str) -> Intent:
        """Cancel the intent; one cancelled already is answered as it is (not an error)."""
        ...

    def refund(self, intent_id: str, amount_minor: int | None = None,
               idempotency_key: str | None = None) -> Refund:
        """Refund ``amount_minor`` (None: all of it). The same ``idempotency_key`` never
        refunds twice, so a retried request is safe."""
        ...

    def verify_webhook(self, payload: bytes | str, sig_header: str | None) -> dict: ...
