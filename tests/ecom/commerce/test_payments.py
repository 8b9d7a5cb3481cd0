"""The payment state machine, recorded refunds and intent cancellations, the finaliser's
table of cases, and the one cancel path every caller goes through."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from itertools import product

import pytest
from sqlalchemy import select, update

from ecom.actor import SYSTEM, Actor
from ecom.audit.models import AuditLog
from ecom.commerce.checkout import FINALISER_CASES, OrderState, Verdict, finaliser_action, finalize_payment
from ecom.commerce.gateways.base import SUCCEEDED, Intent
from ecom.commerce.gateways.simulated import SimulatedGateway
from ecom.commerce.models import Order, OrderEvent, Payment, PaymentRefund
from ecom.commerce.order_actions import refund_payment
from ecom.commerce.payments import set_payment_status
from ecom.commerce.status import PAYMENT_ALLOWED, EventKind, PaymentStatus, RefundStatus
from ecom.db import utcnow
from ecom.errors import GatewayUnavailable, InvalidTransition, ValidationFailed
from ecom.extensions import db
from ecom.inventory.models import Inventory, StockReservation
from ecom.notifications.models import OutboxEvent
from ecom.runtime import use_gateway
from ecom.unit_of_work import commit
from tests.admin.conftest import new_client, sign_in
from tests.commerce_support import (
    ADDRESS,
    auth,
    fill_cart,
    inventory_of,
    outbox_types,
    retry_gateway_calls_later,
)
from tests.factories import UserFactory, make_order
from workers.periodic import expire_reservations

INTENT = "/api/v1/checkout/payment-intent"
CONFIRM = "/api/v1/checkout/confirm"
CLERK = Actor("clerk@shop.test", None)


def place(client, user, lines) -> dict:
    fill_cart(user, lines)
    response = client.post(INTENT, json={"shipping_address": ADDRESS}, headers=auth(user))
    assert response.status_code == 201, response.get_json()
    return response.get_json()


def confirm(client, user, placed: dict, method: str = "pm_card_visa"):
    return client.post(CONFIRM, json={"payment_intent_id": placed["payment_intent_id"],
                                      "payment_method": method}, headers=auth(user))


def order_of(placed: dict) -> Order:
    return db.session.scalar(select(Order).where(Order.order_number == placed["order"]["order_number"])
                             .execution_options(populate_existing=True))


def payment_history(order: Order) -> list[tuple[str | None, str]]:
    return [(e.from_status, e.to_status) for e in db.session.scalars(
        select(OrderEvent).where(OrderEvent.order_id == order.id, OrderEvent.kind == EventKind.PAYMENT)
        .order_by(OrderEvent.id))]


class DownGateway(SimulatedGateway):
    """The simulated gateway, except that refunds and intent cancellations fail."""

    def __init__(self):
        super().__init__("whsec_test_secret")
        self.refund_calls: list[str | None] = []

    def refund(self, intent_id, amount_minor=None, idempotency_key=None):
        self.refund_calls.append(idempotency_key)
        raise GatewayUnavailable("The payment provider is unavailable. Please try again shortly.",
                                 status=503, gateway_message="connection refused")

    def cancel_intent(self, intent_id):
        raise GatewayUnavailable("The payment provider is unavailable. Please try again shortly.")


@pytest.fixture
def gateway_down(app):
    down = DownGateway()
    use_gateway(down, app)
    yield down
    use_gateway(None, app)


# --- the table -------------------------------------------------------------------------------


def test_the_payment_table_is_the_documented_machine():
    allowed = {(a, b) for a in PaymentStatus for b in PAYMENT_ALLOWED[a]}
    assert allowed == {
        ("pending", "completed"), ("pending", "failed"), ("pending", "cancelled"),
        ("failed", "completed"), ("failed", "cancelled"),
        ("cancelled", "completed"),
        ("completed", "partially_refunded"), ("completed", "refunded"),
        ("partially_refunded", "partially_refunded"), ("partially_refunded", "refunded"),
    }


PAYMENT_PAIRS = list(product(PaymentStatus, PaymentStatus))


@pytest.mark.parametrize(("current", "target"), PAYMENT_PAIRS, ids=[f"{a}->{b}" for a, b in PAYMENT_PAIRS])
def test_payment_transition_table(db, current, target):
    # given a payment in ``current``
    order = make_order(status="paid")
    payment = Payment(order_id=order.id, stripe_payment_intent_id=f"pi_sim_table_{order.id}",
                      amount=order.total, status=current)
    db.session.add(payment)
    db.session.flush()
    # when it is asked to move to ``target``
    if target in PAYMENT_ALLOWED[current]:
        set_payment_status(payment, target, actor=CLERK, note="test")
        # then it moves and the order's history has one payment row saying so
        assert payment.status == target
        [event] = db.session.scalars(select(OrderEvent).where(OrderEvent.order_id == order.id))
        assert (event.kind, event.from_status, event.to_status, event.actor, event.note) == (
            "payment", current, target, CLERK.label, "test")
    else:
        with pytest.raises(InvalidTransition) as refused:
            set_payment_status(payment, target, actor=CLERK)
        # then nothing changes and nothing is written
        assert payment.status == current
        assert f"'{current}'" in str(refused.value) and f"'{target}'" in str(refused.value)
        assert db.session.scalar(select(OrderEvent).where(OrderEvent.order_id == order.id)) is None


def test_every_payment_change_writes_a_history_row(client, shopper, variant):
    # given an order whose first card is declined, whose second one pays
    placed = place(client, shopper, [(variant, 2)])
    assert confirm(client, shopper, placed, "pm_card_chargeDeclined").status_code == 402
    assert confirm(client, shopper, placed).status_code == 200
    order = order_of(placed)
    # when staff refund it in three steps
    for amount in (Decimal("10.00"), Decimal("5.00"), None):
        refund_payment(order, amount, actor=CLERK)
        commit()
    # then each change of the payment is in the order's history, refunds included
    assert payment_history(order) == [
        ("pending", "failed"), ("failed", "completed"), ("completed", "partially_refunded"),
        ("partially_refunded", "partially_refunded"), ("partially_refunded", "refunded"),
    ]
    assert order.payment.refunded_amount == Decimal("49.19")
    refunds = db.session.scalars(select(PaymentRefund).order_by(PaymentRefund.id)).all()
    assert [(r.amount, r.status, r.actor) for r in refunds] == [
        (Decimal("10.00"), "succeeded", CLERK.label), (Decimal("5.00"), "succeeded", CLERK.label),
        (Decimal("34.19"), "succeeded", CLERK.label)]
    assert all(r.gateway_refund_id and r.completed_at for r in refunds)
    # and the order's own history is untouched by them
    assert [e.to_status for e in order.events] == ["created", "paid"]


def test_cancelling_an_unpaid_order_cancels_its_payment(client, shopper, variant):
    placed = place(client, shopper, [(variant, 1)])
    response = client.post(f"/api/v1/orders/{placed['order']['order_number']}/cancel", headers=auth(shopper))
    assert response.status_code == 200
    assert response.get_json()["payment"]["status"] == "cancelled"
    order = order_of(placed)
    assert payment_history(order) == [("pending", "cancelled")]
    assert order.payment.intent_cancelled_at is not None  # done right after the commit


# --- gateway down, and the retries --------------------------------------------------------------


def test_gateway_down_during_cancel_cancels_the_order_and_retries_the_refund(client, shopper, variant,
                                                                               app, gateway_down):
    # given a paid order, and a gateway that is down
    use_gateway(None, app)
    placed = place(client, shopper, [(variant, 2)])
    assert confirm(client, shopper, placed).status_code == 200
    use_gateway(gateway_down, app)
    # when the shopper cancels
    response = client.post(f"/api/v1/orders/{placed['order']['order_number']}/cancel", headers=auth(shopper))
    # then the order is cancelled with its stock back; the refund waits, recorded with the error
    assert response.status_code == 200 and response.get_json()["status"] == "cancelled"
    order = order_of(placed)
    assert order.payment.status == PaymentStatus.COMPLETED
    assert (inventory_of(variant).quantity, inventory_of(variant).reserved) == (10, 0)
    refund = db.session.scalar(select(PaymentRefund))
    assert (refund.status, refund.attempts, refund.amount) == ("requested", 1, Decimal("49.19"))
    assert "connection refused" in refund.last_error
    assert gateway_down.refund_calls == [f"refund-{refund.id}"]
    assert "PAYMENT_REFUNDED" not in outbox_types()
    # when the retry job runs while the gateway is still down
    assert retry_gateway_calls_later().refunds_pending == 1
    db.session.refresh(refund)
    assert (refund.status, refund.attempts) == ("requested", 2)
    # and again once it is back
    use_gateway(None, app)
    assert retry_gateway_calls_later().refunds_made == 1
    # then the refund is made once and booked
    db.session.refresh(refund)
    assert refund.status == RefundStatus.SUCCEEDED and refund.last_error is None
    order = order_of(placed)
    assert order.payment.status == PaymentStatus.REFUNDED
    assert order.payment.refunded_amount == Decimal("49.19")
    assert outbox_types().count("PAYMENT_REFUNDED") == 1
    assert retry_gateway_calls_later().refunds_made == 0


def test_a_refund_that_keeps_failing_is_given_up(client, shopper, variant, app, gateway_down):
    use_gateway(None, app)
    placed = place(client, shopper, [(variant, 1)])
    confirm(client, shopper, placed)
    use_gateway(gateway_down, app)
    refund_payment(order_of(placed), actor=CLERK)
    commit()
    for _ in range(12):
        retry_gateway_calls_later()
    refund = db.session.scalar(select(PaymentRefund))
    assert (refund.status, refund.attempts) == (RefundStatus.FAILED, 10)
    assert len(gateway_down.refund_calls) == 10
    # a refund given up no longer holds the money back: staff may ask again
    assert order_of(placed).payment.status == PaymentStatus.COMPLETED
    refund_payment(order_of(placed), actor=CLERK)


def test_a_refund_is_measured_against_the_refunds_still_pending(client, shopper, variant, app, gateway_down):
    # given a paid order of 49.19 with a refund of 40.00 requested but not made (gateway down)
    use_gateway(None, app)
    placed = place(client, shopper, [(variant, 2)])
    confirm(client, shopper, placed)
    use_gateway(gateway_down, app)
    refund_payment(order_of(placed), Decimal("40.00"), actor=CLERK)
    commit()
    # when staff ask for more than the 9.19 left
    with pytest.raises(ValidationFailed, match="between 0.01 and 9.19"):
        refund_payment(order_of(placed), Decimal("10.00"), actor=CLERK)
    # then it is refused, and what is left may still be asked for
    refund_payment(order_of(placed), Decimal("9.19"), actor=CLERK)


def test_gateway_down_when_an_unpaid_order_is_cancelled_retries_the_intent_cancellation(
        client, shopper, variant, app, gateway_down):
    placed = place(client, shopper, [(variant, 1)])
    client.post(f"/api/v1/orders/{placed['order']['order_number']}/cancel", headers=auth(shopper))
    payment = order_of(placed).payment
    assert payment.status == PaymentStatus.CANCELLED and payment.intent_cancelled_at is None
    assert payment.intent_cancel_attempts == 1 and "unavailable" in payment.intent_cancel_error
    use_gateway(None, app)
    assert retry_gateway_calls_later().intents_cancelled == 1
    db.session.refresh(payment)
    assert payment.intent_cancelled_at is not None
    assert retry_gateway_calls_later().intents_cancelled == 0


def test_our_own_refund_reported_by_the_webhook_is_not_counted_twice(client, shopper, variant, app,
                                                                      gateway_down, simulated):
    # given a refund of 10.00 we asked for, made at the gateway but not booked yet (its call is
    # still to be retried when the charge.refunded webhook for it arrives)
    use_gateway(None, app)
    placed = place(client, shopper, [(variant, 2)])
    confirm(client, shopper, placed)
    use_gateway(gateway_down, app)
    refund_payment(order_of(placed), Decimal("10.00"), actor=CLERK)
    commit()
    use_gateway(None, app)
    payload, signature = simulated.build_webhook(
        "charge.refunded", {"payment_intent": placed["payment_intent_id"], "amount_refunded": 1000})
    # when the webhook arrives, then the retry books the refund
    response = client.post("/webhooks/stripe", data=payload,
                           headers={"Stripe-Signature": signature, "Content-Type": "application/json"})
    assert response.status_code == 200
    assert order_of(placed).payment.refunded_amount == Decimal("0.00")
    retry_gateway_calls_later()
    # then the 10.00 is on the books once
    payment = order_of(placed).payment
    assert payment.refunded_amount == Decimal("10.00") and payment.status == PaymentStatus.PARTIALLY_REFUNDED
    assert outbox_types().count("PAYMENT_REFUNDED") == 1


# --- the finaliser's table ---------------------------------------------------------------------


def test_every_finaliser_case_has_exactly_one_first_match():
    for verdict, payment, order in product(Verdict, PaymentStatus, OrderState):
        matches = [row for row in FINALISER_CASES
                   if verdict == row[0] and payment in row[1] and order in row[2]]
        assert matches, (verdict, payment, order)
        assert finaliser_action(verdict, payment, order) is matches[0][3]


@pytest.mark.parametrize(("verdict", "payment", "order", "action"), [
    (Verdict.SUCCEEDED, PaymentStatus.PENDING, OrderState.CREATED, "_pay"),
    (Verdict.SUCCEEDED, PaymentStatus.FAILED, OrderState.CREATED, "_pay"),
    (Verdict.SUCCEEDED, PaymentStatus.CANCELLED, OrderState.EXPIRED, "_revive"),
    (Verdict.SUCCEEDED, PaymentStatus.CANCELLED, OrderState.CANCELLED, "_refund_late"),
    (Verdict.SUCCEEDED, PaymentStatus.PENDING, OrderState.UNDER_WAY, "_refund_late"),  # paid twice
    (Verdict.SUCCEEDED, PaymentStatus.REFUNDED, OrderState.CANCELLED, "nothing_already_paid"),
    (Verdict.FAILED, PaymentStatus.PENDING, OrderState.CREATED, "_record_decline"),
    (Verdict.FAILED, PaymentStatus.COMPLETED, OrderState.UNDER_WAY, "nothing_already_paid"),
    (Verdict.FAILED, PaymentStatus.CANCELLED, OrderState.CANCELLED, "nothing_cancelled"),
    (Verdict.PENDING, PaymentStatus.PENDING, OrderState.CREATED, "nothing_pending"),
])
def test_finaliser_cases(verdict, payment, order, action):
    assert finaliser_action(verdict, payment, order).__name__ == action


def test_a_second_successful_payment_of_a_paid_order_is_refunded(client, shopper, variant):
    # given a paid order that somehow has a second intent, which then succeeds too
    placed = place(client, shopper, [(variant, 1)])
    confirm(client, shopper, placed)
    order = order_of(placed)
    second = Payment(order_id=order.id, stripe_payment_intent_id="pi_sim_second", amount=order.total,
                     status=PaymentStatus.PENDING)
    db.session.add(second)
    db.session.flush()
    intent = Intent(id="pi_sim_second", client_secret=None, status=SUCCEEDED, amount_minor=2759)
    # when it is finalised
    result = finalize_payment("pi_sim_second", actor=SYSTEM, intent=intent)
    commit()
    # then the order goes on, paid once, and the second payment is refunded
    assert result.outcome == "refunded"
    db.session.refresh(second)
    assert second.status == PaymentStatus.REFUNDED and order_of(placed).status == "paid"


# --- one cancel path ----------------------------------------------------------------------------


def _cancel_via_api(app, client, user, placed) -> tuple[str, str]:
    response = client.post(f"/api/v1/orders/{placed['order']['order_number']}/cancel",
                           json={"reason": "changed my mind"}, headers=auth(user))
    assert response.status_code == 200
    return user.email, "changed my mind"


def _cancel_via_admin(app, client, user, placed) -> tuple[str, str]:
    admin = UserFactory(role="admin", email="boss@shop.test")
    db.session.commit()
    staff_client = new_client(app)
    sign_in(staff_client, admin)
    order = order_of(placed)
    response = staff_client.post(f"/admin/order/cancel/{order.id}", data={"reason": "fraud suspected"})
    assert response.status_code == 302
    return "boss@shop.test", "fraud suspected"


def _cancel_via_expiry(app, client, user, placed) -> tuple[str, str]:
    assert expire_reservations(now=utcnow() + timedelta(hours=1)) == [placed["order"]["order_number"]]
    return "system:expiry", "reservation expired"


def _cancel_via_late_payment(app, client, user, placed) -> tuple[str, str]:
    # the reservation lapsed without the order being expired yet, and the units were sold
    order = order_of(placed)
    db.session.execute(update(StockReservation).where(StockReservation.order_id == order.id)
                       .values(status="expired"))
    db.session.execute(update(Inventory).values(reserved=0, quantity=0))
    intent = Intent(id=placed["payment_intent_id"], client_secret=None, status=SUCCEEDED, amount_minor=4919)
    assert finalize_payment(intent.id, actor=SYSTEM, intent=intent).outcome == "refunded"
    commit()
    return "system", "paid after the reservation expired; stock sold out"


@pytest.mark.parametrize("cancel", [_cancel_via_api, _cancel_via_admin, _cancel_via_expiry,
                                    _cancel_via_late_payment])
def test_every_caller_goes_through_the_one_cancel_path(app, client, shopper, variant, cancel):
    # given a placed, unpaid order
    placed = place(client, shopper, [(variant, 2)])
    # when it is cancelled by this caller
    actor, reason = cancel(app, client, shopper, placed)
    # then the same things happened, each with the caller as actor
    order = order_of(placed)
    assert order.status == "cancelled" and order.cancel_reason == reason
    cancelled = order.events[-1]
    assert (cancelled.from_status, cancelled.to_status, cancelled.actor, cancelled.note) == (
        "created", "cancelled", actor, reason)
    [audit] = db.session.scalars(select(AuditLog).where(AuditLog.action == "cancel")).all()
    assert (audit.actor, audit.entity, audit.entity_id) == (actor, "orders", str(order.id))
    assert audit.changes["status"] == {"before": "created", "after": "cancelled"}
    [event] = db.session.scalars(select(OutboxEvent).where(OutboxEvent.type == "ORDER_CANCELLED")).all()
    assert event.payload["data"]["reason"] == reason
    assert db.session.scalar(select(Inventory.reserved)) == 0
    # and its payment is settled: cancelled if unpaid, refunded in full if the money arrived
    if cancel is _cancel_via_late_payment:
        assert order.payment.status == "refunded"
        [refund] = db.session.scalars(select(AuditLog).where(AuditLog.action == "refund")).all()
        assert refund.actor == actor
    else:
        assert order.payment.status == "cancelled" and order.payment.intent_cancelled_at is not None


def test_a_refund_made_in_the_gateways_dashboard_is_recorded_audited_and_booked(client, shopper, variant,
                                                                                 simulated):
    # given a paid order
    placed = place(client, shopper, [(variant, 2)])
    confirm(client, shopper, placed)
    # when Stripe tells us 12.00 of it was refunded in its dashboard
    payload, signature = simulated.build_webhook(
        "charge.refunded", {"payment_intent": placed["payment_intent_id"], "amount_refunded": 1200})
    response = client.post("/webhooks/stripe", data=payload,
                           headers={"Stripe-Signature": signature, "Content-Type": "application/json"})
    # then it is on our books, in the refunds, the payment's history and the audit log
    assert response.status_code == 200
    order = order_of(placed)
    assert order.payment.refunded_amount == Decimal("12.00")
    refund = db.session.scalar(select(PaymentRefund))
    assert (refund.amount, refund.status, refund.actor) == (Decimal("12.00"), "succeeded", "stripe:webhook")
    assert payment_history(order)[-1] == ("completed", "partially_refunded")
    audit = db.session.scalar(select(AuditLog).where(AuditLog.action == "refund"))
    assert audit.actor == "stripe:webhook" and audit.changes["amount"]["after"] == "12.00"
