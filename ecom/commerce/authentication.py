"""3-D Secure with the simulated gateway: the customer's answer on its authentication page.

Stripe settles an intent that requires action on its own pages and tells us by webhook
(or when confirm is called again); the simulator's page does the same here: the intent is
settled, then the one finaliser (``checkout.finalize_payment``) applies the verdict,
exactly as for a webhook.
"""

from __future__ import annotations

from ecom.actor import Actor
from ecom.commerce.checkout import Finalized, finalize_payment, payment_for_intent
from ecom.commerce.gateways.base import REQUIRES_ACTION, Intent
from ecom.commerce.gateways.simulated import SIMULATED_INTENT_PREFIX
from ecom.commerce.models import Payment
from ecom.commerce.orders import lock_order
from ecom.errors import NotFound
from ecom.extensions import db
from ecom.runtime import payment_gateway

SIMULATED_3DS = Actor("simulated-gateway:3ds")


def simulated_intent(intent_id: str) -> tuple[Payment, Intent]:
    """A simulated intent's payment and its state at the gateway. Raises NotFound (not an
    intent of the simulated gateway, or unknown)."""
    if not intent_id.startswith(SIMULATED_INTENT_PREFIX):
        raise NotFound("Unknown payment intent.")
    payment = payment_for_intent(intent_id)
    return payment, payment_gateway(intent_id).retrieve_intent(intent_id)


def settle_authentication(intent_id: str, *, approve: bool) -> Finalized:
    """The customer authenticated (``approve``) or failed to: the simulated intent succeeds or
    is declined, and the finaliser applies that under the order's lock - the order is paid
    (stock committed, cart cleared, ORDER_PAID), or its payment failed with the stock still
    held. Answering twice, or answering an intent that no longer waits, changes nothing
    more. Raises NotFound."""
    payment, _ = simulated_intent(intent_id)
    # The order's lock first: two answers at once (both buttons, two tabs) are taken in turn,
    # and the second sees an intent no longer waiting.
    lock_order(payment.order_id)
    db.session.refresh(payment)
    gateway = payment_gateway(intent_id)
    authenticate = getattr(gateway, "authenticate", None)
    if authenticate is None:
        raise NotFound("Unknown payment intent.")
    intent = authenticate(intent_id, approve=approve)
    db.session.flush()
    return finalize_payment(intent_id, actor=SIMULATED_3DS, intent=intent)


def waiting_for_customer(intent: Intent) -> bool:
    return intent.status == REQUIRES_ACTION
