"""A return's refund whose gateway call times out after the money went back: the retry refunds
nothing more (the refund's Idempotency-Key), the books count it once, and the payment ends
partially_refunded, then refunded. Through Stripe (the real client against tests/fake_stripe.py)
and through the simulated gateway."""

from __future__ import annotations

from decimal import Decimal

import pytest
from sqlalchemy import select

from ecom.actor import Actor
from ecom.commerce.gateways.base import to_minor
from ecom.commerce.gateways.simulated import SimulatedGateway
from ecom.commerce.models import Order, PaymentRefund, Return
from ecom.commerce.returns import (
    LineRequest,
    Receipt,
    approve_return,
    receive_return,
    refund_return,
    request_return,
)
from ecom.commerce.status import OrderStatus, PaymentStatus, RefundStatus, ReturnStatus
from ecom.errors import GatewayUnavailable
from ecom.extensions import db
from ecom.runtime import payment_gateway, use_gateway
from ecom.unit_of_work import unit_of_work
from tests.commerce_support import outbox_types, retry_gateway_calls_later
from tests.locations_support import warehouse
from tests.returns_support import delivered_order

STAFF = Actor("admin@x.test")
# 19.99 x 3 with 2.00 off and 1.44 tax (59.41); 7.33 x 2 with 0.59 tax (15.25); shipping 5.00 + 0.40 tax:
# 80.06 paid.
LINES = [(None, "19.99", 3, "2.00", "1.44"), (None, "7.33", 2, "0.00", "0.59")]


def received_return(order: Order, units: list[tuple[int, int]]) -> Return:
    """A return of ``units`` (line index, units) of ``order``, approved and received (restocked)."""
    back_room = warehouse(40)
    asked = [LineRequest(order.items[i].sku, n) for i, n in units]
    ret = request_return(order, asked, actor=Actor("shopper"))
    approve_return(ret, actor=STAFF)
    receive_return(ret, {line.id: Receipt("restock", back_room.id) for line in ret.lines}, actor=STAFF)
    db.session.commit()
    return ret


def refund_through_the_unit_of_work(ret: Return, *, shipping: bool = False) -> PaymentRefund:
    """As the back office refunds: recorded in one commit, made at the gateway right after it."""
    with unit_of_work():
        refund_return(ret, actor=STAFF, shipping=shipping)
    db.session.expire_all()
    ret = db.session.get(Return, ret.id)
    return db.session.get(PaymentRefund, ret.refund_id)


def payment_of(order: Order):
    db.session.expire_all()
    return db.session.get(Order, order.id).payment


# --- Stripe, through the local fake ----------------------------------------------------------


@pytest.fixture
def stripe_paid_order(stripe_mode, db):
    """A delivered order whose payment Stripe (the fake) took."""
    order = delivered_order(LINES)
    gateway = payment_gateway()
    intent = gateway.create_intent(to_minor(order.total), "usd", {"order_number": order.order_number})
    assert gateway.confirm_intent(intent.id, "pm_card_visa").succeeded
    order.payment.stripe_payment_intent_id, order.payment.gateway = intent.id, "stripe"
    db.session.commit()
    return order


def refund_requests(fake, key: str) -> list[dict]:
    return [headers for method, path, _, headers in fake.requests
            if method == "POST" and path == "/v1/refunds" and headers.get("Idempotency-Key") == key]


def test_a_stripe_refund_that_timed_out_is_made_once_by_the_retry(stripe_mode, stripe_paid_order):
    order, fake = stripe_paid_order, stripe_mode
    ret = received_return(order, [(0, 2)])
    # given Stripe makes the refund but no answer comes back, twice (the client's own retry too)
    fake.time_out_refunds(2)

    # when the admin refunds the return
    refund = refund_through_the_unit_of_work(ret)

    # then the refund is recorded, not booked: Stripe refunded once, we don't know it yet
    assert (refund.status, refund.attempts) == (RefundStatus.REQUESTED, 1)
    assert "payment provider is unavailable" in refund.last_error
    assert [r["amount"] for r in fake.refunds] == [3961]  # 2/3 of 59.41
    assert len(refund_requests(fake, f"refund-{refund.id}")) == 2
    assert (payment_of(order).status, payment_of(order).refunded_amount) == (PaymentStatus.COMPLETED, 0)

    # when the retry job runs, twice
    first, second = retry_gateway_calls_later(), retry_gateway_calls_later()

    # then Stripe answered the first refund again under the same key: refunded once, booked once
    assert (first.refunds_made, second.refunds_made) == (1, 0)
    assert [r["amount"] for r in fake.refunds] == [3961]
    requests = refund_requests(fake, f"refund-{refund.id}")
    assert len(requests) == 3 and fake.paths("POST").count("/v1/refunds") == 3
    db.session.expire_all()
    refund = db.session.get(PaymentRefund, refund.id)
    assert (refund.status, refund.gateway_refund_id) == (RefundStatus.SUCCEEDED, fake.refunds[0]["id"])
    payment = payment_of(order)
    assert (payment.status, payment.refunded_amount) == (PaymentStatus.PARTIALLY_REFUNDED, Decimal("39.61"))
    assert outbox_types().count("PAYMENT_REFUNDED") == 1

    # when the rest comes back and its refund times out once (the client's own retry gets the answer)
    rest = received_return(db.session.get(Order, order.id), [(0, 1), (1, 2)])
    fake.time_out_refunds(1)
    refund = refund_through_the_unit_of_work(rest, shipping=True)

    # then it is made and booked in that one call, once; the payment is refunded to the cent
    assert refund.status == RefundStatus.SUCCEEDED
    assert [r["amount"] for r in fake.refunds] == [3961, 4045]  # 19.80 + 15.25 + 5.40 = 80.06 - 39.61
    assert len(refund_requests(fake, f"refund-{refund.id}")) == 2
    payment = payment_of(order)
    assert (payment.status, payment.refunded_amount) == (PaymentStatus.REFUNDED, payment.amount)
    assert db.session.get(Order, order.id).status == OrderStatus.RETURNED
    assert retry_gateway_calls_later().refunds_made == 0
    assert outbox_types().count("PAYMENT_REFUNDED") == 2


def test_the_fake_refuses_a_key_reused_with_other_parameters(stripe_mode, stripe_paid_order):
    # (what makes the test above meaningful: the key is honoured, not ignored)
    gateway = payment_gateway()
    intent_id = stripe_paid_order.payment.stripe_payment_intent_id
    first = gateway.refund(intent_id, 100, idempotency_key="refund-key-1")
    assert gateway.refund(intent_id, 100, idempotency_key="refund-key-1").id == first.id
    with pytest.raises(GatewayUnavailable):
        gateway.refund(intent_id, 200, idempotency_key="refund-key-1")
    assert [r["amount"] for r in stripe_mode.refunds] == [100]


# --- the simulated gateway -------------------------------------------------------------------


class TimingOutGateway(SimulatedGateway):
    """The simulated gateway, whose next ``timeouts`` refund answers are lost after the refund
    was made (GatewayUnavailable, as the Stripe gateway raises a timeout); every answer it
    gave or lost is kept."""

    def __init__(self, webhook_secret, timeouts: int):
        super().__init__(webhook_secret)
        self.timeouts = timeouts
        self.made: list[tuple[str | None, str, int]] = []  # key, gateway refund id, amount

    def refund(self, intent_id, amount_minor=None, idempotency_key=None):
        answer = super().refund(intent_id, amount_minor, idempotency_key=idempotency_key)
        self.made.append((idempotency_key, answer.id, answer.amount_minor))
        if self.timeouts > 0:
            self.timeouts -= 1
            raise GatewayUnavailable("The payment provider is unavailable. Please try again shortly.",
                                     status=503, gateway_message="Read timed out.")
        return answer


@pytest.fixture
def timing_out(app):
    gateway = TimingOutGateway(app.config["STRIPE_WEBHOOK_SECRET"], timeouts=1)
    use_gateway(gateway, app)
    yield gateway
    use_gateway(None, app)


def test_a_simulated_refund_that_timed_out_is_made_once_by_the_retry(db, timing_out):
    order = delivered_order(LINES)
    db.session.commit()
    ret = received_return(order, [(0, 2)])

    refund = refund_through_the_unit_of_work(ret)
    assert (refund.status, refund.attempts) == (RefundStatus.REQUESTED, 1)
    assert payment_of(order).refunded_amount == 0

    first, second = retry_gateway_calls_later(), retry_gateway_calls_later()

    # the retry asked again with the same key and got the same refund back: one refund, booked once
    assert (first.refunds_made, second.refunds_made) == (1, 0)
    assert [(key, amount) for key, _, amount in timing_out.made] == [(f"refund-{refund.id}", 3961)] * 2
    assert len({gateway_id for _, gateway_id, _ in timing_out.made}) == 1
    db.session.expire_all()
    refund = db.session.get(PaymentRefund, refund.id)
    assert (refund.status, refund.gateway_refund_id) == (RefundStatus.SUCCEEDED, timing_out.made[0][1])
    payment = payment_of(order)
    assert (payment.status, payment.refunded_amount) == (PaymentStatus.PARTIALLY_REFUNDED, Decimal("39.61"))

    # and the rest, timing out once more, ends the payment refunded and the order returned
    timing_out.timeouts = 1
    rest = received_return(db.session.get(Order, order.id), [(0, 1), (1, 2)])
    refund_through_the_unit_of_work(rest, shipping=True)
    assert retry_gateway_calls_later().refunds_made == 1
    payment = payment_of(order)
    assert (payment.status, payment.refunded_amount) == (PaymentStatus.REFUNDED, Decimal("80.06"))
    assert db.session.get(Order, order.id).status == OrderStatus.RETURNED
    assert db.session.scalar(select(Return.status).where(Return.id == rest.id)) == ReturnStatus.REFUNDED
    assert outbox_types().count("PAYMENT_REFUNDED") == 2


def test_a_simulated_refund_without_a_key_is_a_new_refund_each_time(app, db):
    # (the simulated gateway keys its answer on the idempotency key, and only on it)
    order = delivered_order(LINES)
    gateway = SimulatedGateway(app.config["STRIPE_WEBHOOK_SECRET"])
    intent_id = order.payment.stripe_payment_intent_id
    assert gateway.refund(intent_id, 100).id != gateway.refund(intent_id, 100).id
    assert gateway.refund(intent_id, 100, "k").id == gateway.refund(intent_id, 100, "k").id
