"""One exception hierarchy for the whole domain.

Edges map these to their own language: the API to status codes and
``{"detail": ...}``, the back office to flash messages. Nothing here knows
about HTTP.
"""


class EcomError(Exception):
    """Root of every error a user can cause or a caller can handle."""

    def __init__(self, message: str, **extra):
        super().__init__(message)
        self.message = message
        self.extra = extra

    def __str__(self) -> str:
        return self.message


class NotFound(EcomError):
    """The object does not exist, or is not the caller's to see."""


class ValidationFailed(EcomError):
    """Input that is well-formed but breaks a business rule.

    ``errors`` maps field names to lists of messages.
    """

    def __init__(self, message: str, errors: dict[str, list[str]] | None = None):
        super().__init__(message)
        self.errors = errors or {}


class PermissionDenied(EcomError):
    """Authenticated, but not allowed to do this."""


class AuthenticationFailed(EcomError):
    """Wrong credentials, bad token, deactivated account."""


class Conflict(EcomError):
    """The request clashes with the current state of things."""


class DuplicateError(Conflict):
    """A unique thing (email, SKU, review) already exists."""


class InvalidTransition(Conflict):
    """A status change the state machine does not allow."""

    def __init__(self, kind: str, current: str, target: str):
        super().__init__(f"Cannot move {kind} from '{current}' to '{target}'.")
        self.current = current
        self.target = target


class OutOfStock(Conflict):
    """Not enough available stock. ``shortages`` maps SKU to units available."""

    def __init__(self, shortages: dict[str, int], *, where: str = ""):
        parts = ", ".join(f"{sku} (available: {n})" for sku, n in sorted(shortages.items()))
        super().__init__(f"Insufficient stock{' ' + where if where else ''} for: {parts}.")
        self.shortages = shortages


class PaymentDeclined(EcomError):
    """The gateway declined the payment."""


class GatewayUnavailable(EcomError):
    """The payment gateway could not be reached or answered with an error."""
