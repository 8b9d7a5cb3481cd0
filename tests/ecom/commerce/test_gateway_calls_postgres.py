"""Gateway calls on PostgreSQL, with real commits and one connection per thread: no call
is made while inventory rows are locked, and what was recorded survives a crash.
"""

from __future__ import annotations

import threading

from sqlalchemy import select

from ecom.actor import Actor
from ecom.commerce.cancellation import cancel_order
from ecom.commerce.gateways.simulated import SimulatedGateway
from ecom.commerce.models import Order, PaymentRefund
from ecom.commerce.status import OrderStatus, PaymentStatus, RefundStatus
from ecom.inventory.models import Inventory
from ecom.runtime import use_gateway
from tests.commerce_support import ADDRESS, fill_cart, retry_gateway_calls_later
from tests.ecom.commerce.test_races_postgres import CONFIRM, INTENT, bearer, fresh, place_order, run_together
from tests.factories import UserFactory, stocked_variant

SECRET = "whsec_test_secret"
# Long enough for any honest machine; reaching it means the other thread was blocked.
PATIENCE_SECONDS = 30


class RecordingGateway(SimulatedGateway):
    """The simulated gateway, remembering the idempotency key of every refund asked for."""

    def __init__(self):
        super().__init__(SECRET)
        self.refund_keys: list[str | None] = []

    def refund(self, intent_id, amount_minor=None, idempotency_key=None):
        self.refund_keys.append(idempotency_key)
        return super().refund(intent_id, amount_minor, idempotency_key)


class SlowRefundGateway(RecordingGateway):
    """A refund that waits until another shopper's reservation of the same SKU went through."""

    def __init__(self):
        super().__init__()
        self.refund_started = threading.Event()
        self.rival_reserved = threading.Event()
        self.rival_got_through: bool | None = None

    def refund(self, intent_id, amount_minor=None, idempotency_key=None):
        self.refund_started.set()
        self.rival_got_through = self.rival_reserved.wait(PATIENCE_SECONDS)
        return super().refund(intent_id, amount_minor, idempotency_key)


def paid_order(db, app, user, variant, quantity: int) -> dict:
    placed = place_order(db, app.test_client(), user, variant, quantity=quantity)
    confirmed = app.test_client().post(CONFIRM, json={"payment_intent_id": placed["payment_intent_id"]},
                                       headers=bearer(user))
    assert confirmed.status_code == 200, confirmed.get_json()
    return placed


def test_a_slow_refund_does_not_hold_the_inventory_locks(postgres, committed_db):
    # given a paid order for 2 of a SKU, and a rival shopper with 1 of the same SKU in their cart
    db, app = committed_db, postgres
    buyer, rival = UserFactory(), UserFactory()
    variant = stocked_variant(quantity=10, price="20.00")
    db.session.commit()
    placed = paid_order(db, app, buyer, variant, 2)
    fill_cart(rival, [(variant, 1)])
    db.session.commit()
    number = placed["order"]["order_number"]
    gateway = SlowRefundGateway()
    buyer_headers, rival_headers = bearer(buyer), bearer(rival)

    def cancel(client):
        return client.post(f"/api/v1/orders/{number}/cancel", headers=buyer_headers)

    def rival_checks_out(client):
        # waits for the refund call to be under way, then reserves the same SKU
        assert gateway.refund_started.wait(PATIENCE_SECONDS)
        response = client.post(INTENT, json={"shipping_address": ADDRESS}, headers=rival_headers)
        gateway.rival_reserved.set()
        return response

    # when the buyer cancels (its stock returned, its refund sent to a gateway that sleeps)
    # while the rival checks out
    use_gateway(gateway, app)
    try:
        cancelled, checked_out = run_together(app, [cancel, rival_checks_out])
    finally:
        use_gateway(None, app)

    # then the rival's reservation went through while the refund call was still waiting
    assert gateway.rival_got_through is True
    assert (cancelled.status_code, checked_out.status_code) == (200, 201)
    # and the refund was made all the same, once
    assert cancelled.get_json()["payment"]["status"] == "refunded"
    assert len(gateway.refund_keys) == 1
    inventory = fresh(db, select(Inventory).where(Inventory.variant_id == variant.id))
    assert (inventory.quantity, inventory.reserved) == (10, 1)


def test_a_crash_between_the_commit_and_the_refund_call_loses_nothing(postgres, committed_db):
    # given a paid order
    db, app = committed_db, postgres
    buyer = UserFactory()
    variant = stocked_variant(quantity=10, price="20.00")
    db.session.commit()
    placed = paid_order(db, app, buyer, variant, 1)
    gateway = RecordingGateway()
    use_gateway(gateway, app)
    try:
        # when staff cancel it and the process dies right after the commit, before the refund call
        order = db.session.scalar(select(Order).where(Order.order_number == placed["order"]["order_number"]))
        cancel_order(order, actor=Actor("boss@shop.test"), reason="customer asked")
        db.session.commit()  # a bare commit: the after-commit refund never runs
        db.session.remove()

        # then the order is cancelled and the refund is on record, not made
        order = fresh(db, select(Order).where(Order.order_number == placed["order"]["order_number"]))
        refund = db.session.scalar(select(PaymentRefund))
        assert order.status == OrderStatus.CANCELLED and order.payment.status == PaymentStatus.COMPLETED
        assert (refund.status, refund.attempts, refund.actor) == (RefundStatus.REQUESTED, 0, "boss@shop.test")
        assert gateway.refund_keys == []

        # when the retry job runs, twice
        first, second = retry_gateway_calls_later(), retry_gateway_calls_later()
    finally:
        use_gateway(None, app)

    # then the refund was made exactly once, with the refund's idempotency key
    assert (first.refunds_made, second.refunds_made) == (1, 0)
    assert gateway.refund_keys == [f"refund-{refund.id}"]
    refund = fresh(db, select(PaymentRefund))
    assert refund.status == RefundStatus.SUCCEEDED and refund.gateway_refund_id.startswith("re_sim_")
    order = fresh(db, select(Order).where(Order.order_number == placed["order"]["order_number"]))
    assert order.payment.status == PaymentStatus.REFUNDED and str(order.payment.refunded_amount) == "27.59"
    history = [(e.to_status, e.actor) for e in order.history if e.kind == "payment"]
    assert history[-1] == ("refunded", "boss@shop.test")
