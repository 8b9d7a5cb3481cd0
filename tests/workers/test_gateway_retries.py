"""The gateway retry job: its grace period, one failing call never stopping the others, calls
given up leaving a trace, and the embedded tick running every step whatever one of them does."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
from sqlalchemy import select, update

from ecom.actor import SYSTEM
from ecom.audit.models import AuditLog
from ecom.commerce.checkout import finalize_payment
from ecom.commerce.gateways.base import CANCELED, REQUIRES_PAYMENT_METHOD, Intent
from ecom.commerce.gateways.simulated import SimulatedGateway
from ecom.commerce.models import OrderEvent, Payment, PaymentRefund
from ecom.commerce.order_actions import refund_payment
from ecom.commerce.payments import MAX_GATEWAY_ATTEMPTS, RETRY_GRACE, gateway_calls_due
from ecom.commerce.status import EventKind, OrderStatus, PaymentStatus, RefundStatus
from ecom.db import utcnow
from ecom.extensions import db
from ecom.runtime import use_gateway
from ecom.unit_of_work import commit
from tests.admin.conftest import new_client, sign_in
from tests.commerce_support import auth, retry_gateway_calls_later
from tests.ecom.commerce.test_payments import CLERK, DownGateway, confirm, order_of, place
from tests.factories import UserFactory, stocked_variant
from workers import periodic
from workers.periodic import retry_gateway_calls, run_embedded_tick


class GatewayBug(Exception):
    """An exception class no service expects (not an EcomError)."""


class OneBrokenRefundGateway(SimulatedGateway):
    """The simulated gateway, except that refunding one intent raises an unexpected exception."""

    def __init__(self, broken_intent_id: str):
        super().__init__("whsec_test_secret")
        self.broken_intent_id = broken_intent_id

    def refund(self, intent_id, amount_minor=None, idempotency_key=None):
        if intent_id == self.broken_intent_id:
            raise GatewayBug("unexpected answer")
        return super().refund(intent_id, amount_minor, idempotency_key)


@pytest.fixture
def gateway_down(app):
    down = DownGateway()
    use_gateway(down, app)
    yield down
    use_gateway(None, app)


def paid_order_with_refund_waiting(client, app, gateway_down, variant) -> dict:
    """A paid order whose full refund was recorded while the gateway was down."""
    shopper = UserFactory()
    use_gateway(None, app)
    placed = place(client, shopper, [(variant, 1)])
    assert confirm(client, shopper, placed).status_code == 200
    use_gateway(gateway_down, app)
    refund_payment(order_of(placed), actor=CLERK)
    commit()
    return placed


def unpaid_order_cancelled(client, app, gateway_down, variant) -> dict:
    """An unpaid order cancelled while the gateway was down: its intent is still to be cancelled."""
    shopper = UserFactory()
    use_gateway(gateway_down, app)
    placed = place(client, shopper, [(variant, 1)])
    response = client.post(f"/api/v1/orders/{placed['order']['order_number']}/cancel", headers=auth(shopper))
    assert response.status_code == 200
    return placed


def refund_of(placed: dict) -> PaymentRefund:
    return db.session.scalar(select(PaymentRefund).join(Payment).where(
        Payment.stripe_payment_intent_id == placed["payment_intent_id"])
        .execution_options(populate_existing=True))


# --- the grace period ---------------------------------------------------------------------------


def test_a_call_just_recorded_is_left_to_its_request_during_the_grace_period(client, app, gateway_down):
    # given a refund and an intent cancellation recorded just now (their first call failed)
    variant = stocked_variant(quantity=10, price="20.00")
    refunded = paid_order_with_refund_waiting(client, app, gateway_down, variant)
    cancelled = unpaid_order_cancelled(client, app, gateway_down, variant)
    refund, payment = refund_of(refunded), order_of(cancelled).payment
    # when the retry job looks now, then neither is due; once the grace period is over, both are
    due_now = gateway_calls_due(utcnow())
    assert refund.id not in due_now.refund_ids and payment.id not in due_now.payment_ids
    due_later = gateway_calls_due(utcnow() + RETRY_GRACE + timedelta(seconds=1))
    assert refund.id in due_later.refund_ids and payment.id in due_later.payment_ids
    # and the job run now makes no call
    assert retry_gateway_calls() == periodic.RetryResult(0, 0, 0, 0)
    assert gateway_down.refund_calls == [f"refund-{refund.id}"]


# --- one failing item never stops the next ------------------------------------------------------


def test_a_refund_whose_gateway_raises_an_unexpected_error_does_not_stop_the_others(
        client, app, gateway_down, caplog):
    # given two refunds and an intent cancellation waiting, the oldest refund's gateway call broken
    variant = stocked_variant(quantity=10, price="20.00")
    first = paid_order_with_refund_waiting(client, app, gateway_down, variant)
    second = paid_order_with_refund_waiting(client, app, gateway_down, variant)
    cancelled = unpaid_order_cancelled(client, app, gateway_down, variant)
    use_gateway(OneBrokenRefundGateway(first["payment_intent_id"]), app)
    # when the retry job runs
    result = retry_gateway_calls_later()
    # then the broken one is logged and left for the next run; the others are made
    assert result == periodic.RetryResult(refunds_made=1, refunds_pending=1, intents_cancelled=1,
                                          cancellations_pending=0)
    assert refund_of(first).status == RefundStatus.REQUESTED
    assert refund_of(second).status == RefundStatus.SUCCEEDED
    assert order_of(second).payment.status == PaymentStatus.REFUNDED
    assert order_of(cancelled).payment.intent_cancelled_at is not None
    assert any("could not make refund" in r.message and r.exc_info for r in caplog.records)


def test_a_failing_step_of_the_embedded_tick_does_not_skip_the_others(client, app, gateway_down,
                                                                       monkeypatch, caplog):
    # given a refund waiting past its grace period, and expiry and the outbox sweep both failing
    variant = stocked_variant(quantity=10, price="20.00")
    placed = paid_order_with_refund_waiting(client, app, gateway_down, variant)
    db.session.execute(update(PaymentRefund).values(created_at=utcnow() - 2 * RETRY_GRACE))
    commit()
    use_gateway(None, app)

    def broken(*args, **kwargs):
        raise GatewayBug("step failed")

    monkeypatch.setattr(periodic, "expire_reservations", broken)
    monkeypatch.setattr(periodic, "sweep_outbox_inline", broken)
    # when the timer ticks
    run_embedded_tick(app)
    # then the retries still ran, and each failure was logged with its step
    assert refund_of(placed).status == RefundStatus.SUCCEEDED
    logged = [r.message for r in caplog.records if r.exc_info]
    assert "periodic reservation expiry failed" in logged and "periodic outbox sweep failed" in logged


# --- giving up leaves a trace -------------------------------------------------------------------


def test_a_refund_given_up_is_in_the_history_the_audit_log_and_the_order_page(client, app, gateway_down,
                                                                                variant):
    # given a refund the gateway keeps refusing
    placed = paid_order_with_refund_waiting(client, app, gateway_down, variant)
    # when the retry job has tried it MAX_GATEWAY_ATTEMPTS times
    for _ in range(MAX_GATEWAY_ATTEMPTS + 2):
        retry_gateway_calls_later()
    # then it failed for good, with a payment history row and an audit row saying so
    refund = refund_of(placed)
    assert (refund.status, refund.attempts) == (RefundStatus.FAILED, MAX_GATEWAY_ATTEMPTS)
    assert refund.completed_at is not None
    order = order_of(placed)
    given_up = db.session.scalar(select(OrderEvent).where(OrderEvent.order_id == order.id,
                                                          OrderEvent.kind == EventKind.PAYMENT)
                                 .order_by(OrderEvent.id.desc()))
    assert (given_up.from_status, given_up.to_status, given_up.actor) == ("requested", "failed", "system")
    assert given_up.note.startswith("refund 27.59 given up after 10 attempts") and "connection refused" in \
        given_up.note
    [audit] = db.session.scalars(select(AuditLog).where(AuditLog.action == "refund.given_up")).all()
    assert (audit.entity, audit.entity_id) == ("orders", str(order.id))
    assert audit.changes["refund_status"] == {"before": "requested", "after": "failed"}
    # and staff see it on the order's page
    admin = UserFactory(role="admin")
    commit()
    staff = new_client(app)
    sign_in(staff, admin)
    page = staff.get(f"/admin/order/details/?id={order.id}").get_data(as_text=True)
    assert "refund 27.59 given up after 10 attempts" in page


def test_an_intent_cancellation_given_up_is_in_the_history_and_the_audit_log(client, app, gateway_down,
                                                                              variant):
    # given an unpaid order cancelled while the gateway is down, and it stays down
    placed = unpaid_order_cancelled(client, app, gateway_down, variant)
    # when the retry job has tried its intent's cancellation MAX_GATEWAY_ATTEMPTS times
    for _ in range(MAX_GATEWAY_ATTEMPTS + 2):
        retry_gateway_calls_later()
    # then it is given up: no longer due, with a history row and an audit row
    order = order_of(placed)
    payment = order.payment
    db.session.refresh(payment)
    assert payment.intent_cancel_attempts == MAX_GATEWAY_ATTEMPTS and payment.intent_cancelled_at is None
    assert payment.id not in gateway_calls_due(utcnow() + timedelta(hours=1)).payment_ids
    notes = list(db.session.scalars(select(OrderEvent.note).where(
        OrderEvent.order_id == order.id, OrderEvent.kind == EventKind.PAYMENT,
        OrderEvent.note.like("intent cancellation given up%"))))
    assert len(notes) == 1 and "after 10 attempts" in notes[0]
    [audit] = db.session.scalars(select(AuditLog).where(AuditLog.action == "payment.intent_cancel_given_up"))
    assert audit.entity_id == str(order.id)


# --- a cancelled order's intent failing: the one cancel path for its payment --------------------


def _cancelled_order_with_pending_payment(client, shopper, variant) -> dict:
    placed = place(client, shopper, [(variant, 1)])
    order = order_of(placed)
    # as when the order was cancelled while this payment attempt was still open
    db.session.execute(update(type(order)).where(type(order).id == order.id)
                       .values(status=OrderStatus.CANCELLED, cancel_reason="changed my mind"))
    commit()
    return placed


def test_an_intent_the_gateway_cancelled_is_noted_cancelled_and_never_retried(client, shopper, variant):
    # given a cancelled order whose payment is still pending
    placed = _cancelled_order_with_pending_payment(client, shopper, variant)
    # when the gateway says its intent was cancelled
    intent = Intent(id=placed["payment_intent_id"], client_secret=None, status=CANCELED, amount_minor=2759)
    assert finalize_payment(intent.id, actor=SYSTEM, intent=intent).outcome == "cancelled"
    commit()
    # then the payment is cancelled with its intent cancelled: nothing for the retry job
    payment = order_of(placed).payment
    assert payment.status == PaymentStatus.CANCELLED and payment.intent_cancelled_at is not None
    assert payment.id not in gateway_calls_due(utcnow() + timedelta(hours=1)).payment_ids


def test_a_declined_intent_of_a_cancelled_order_is_cancelled_at_the_gateway(client, app, shopper, variant):
    # given a cancelled order whose payment is still pending
    placed = _cancelled_order_with_pending_payment(client, shopper, variant)
    cancelled: list[str] = []

    class Recording(SimulatedGateway):
        def cancel_intent(self, intent_id):
            cancelled.append(intent_id)
            return super().cancel_intent(intent_id)

    use_gateway(Recording("whsec_test_secret"), app)
    try:
        # when the gateway reports the intent declined (still open there)
        intent = Intent(id=placed["payment_intent_id"], client_secret=None, status=REQUIRES_PAYMENT_METHOD,
                        amount_minor=2759, failure_message="Your card was declined.")
        finalize_payment(intent.id, actor=SYSTEM, intent=intent)
        commit()
    finally:
        use_gateway(None, app)
    # then the payment is cancelled through cancel_payment: its intent cancelled after the commit
    payment = order_of(placed).payment
    assert cancelled == [placed["payment_intent_id"]]
    assert payment.status == PaymentStatus.CANCELLED and payment.intent_cancelled_at is not None
    assert payment.amount == Decimal("27.59")
