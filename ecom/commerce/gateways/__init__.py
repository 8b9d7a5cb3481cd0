"""Payment gateways: the protocol and value types (``base``), the real Stripe client
(``stripe``), a simulated stand-in (``simulated``) and signed-webhook parsing (``webhooks``).

Which gateway serves a payment is decided here, by ``choose_gateway``; the composition
root hands it to ``ecom.runtime.init_app``, and services ask ``ecom.runtime.payment_gateway``.
"""

from __future__ import annotations

from collections.abc import Mapping

from ecom.commerce.gateways.base import PaymentGateway
from ecom.commerce.gateways.simulated import SIMULATED_INTENT_PREFIX, SimulatedGateway
from ecom.commerce.gateways.stripe import StripeGateway


def choose_gateway(config: Mapping, intent_id: str | None = None) -> PaymentGateway:
    """Stripe when ``STRIPE_SECRET_KEY`` is set, else the simulated gateway; an intent the
    simulated gateway opened (``pi_sim_``) always stays with it."""
    webhook_secret = config["STRIPE_WEBHOOK_SECRET"]
    simulated_intent = intent_id is not None and intent_id.startswith(SIMULATED_INTENT_PREFIX)
    if config["STRIPE_SECRET_KEY"] and not simulated_intent:
        return StripeGateway(config["STRIPE_SECRET_KEY"], webhook_secret, config["STRIPE_API_BASE"],
                             timeout_seconds=config["STRIPE_TIMEOUT_SECONDS"])
    return SimulatedGateway(webhook_secret)
