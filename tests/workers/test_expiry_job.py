"""The periodic expiry job end to end: a worker tick cancels an overdue order through the
one cancel path, and the customer hears about it."""

from __future__ import annotations

from rq import Queue, SimpleWorker
from sqlalchemy import select

from ecom.commerce.models import Order
from ecom.commerce.status import OrderStatus, PaymentStatus
from ecom.extensions import db
from ecom.notifications.models import Notification
from ecom.notifications.queues import DEFAULT, NOTIFICATIONS, redis_connection
from tests.commerce_support import ADDRESS, auth, fill_cart
from tests.factories import UserFactory, stocked_variant
from workers.jobs import run_periodic


def test_periodic_expiry_cancels_an_overdue_order_and_the_customer_is_told(queue_app):
    # given an unpaid order whose reservation is already overdue (a zero TTL)
    queue_app.config.update(RESERVATION_TTL_SECONDS=0, EXPIRY_INTERVAL_SECONDS=3600)
    shopper = UserFactory(email="slow-payer@example.com")
    variant = stocked_variant(quantity=3)
    fill_cart(shopper, [(variant, 2)])
    response = queue_app.test_client().post("/api/v1/checkout/payment-intent",
                                            json={"shipping_address": ADDRESS}, headers=auth(shopper))
    assert response.status_code == 201, response.get_json()
    order_number = response.get_json()["order"]["order_number"]

    # when a tick of the periodic expiry job runs on a worker (which also relays and delivers)
    connection = redis_connection(queue_app)
    default = Queue(DEFAULT, connection=connection)
    default.enqueue(run_periodic, "expire-reservations", job_id="periodic-expire-reservations-now")
    queues = [default, Queue(NOTIFICATIONS, connection=connection)]
    SimpleWorker(queues, connection=connection).work(burst=True)

    # then the order is cancelled, the next tick is scheduled, and the customer got both emails
    db.session.expire_all()
    order = db.session.scalar(select(Order).where(Order.order_number == order_number))
    assert order.status == OrderStatus.CANCELLED and order.events[-1].actor == "system:expiry"
    assert order.payment.status == PaymentStatus.CANCELLED and order.payment.intent_cancelled_at is not None
    [next_tick] = default.scheduled_job_registry.get_job_ids()
    assert next_tick.startswith("periodic-expire-reservations-")
    sent = {(n.event_type, n.recipient, n.status) for n in db.session.scalars(select(Notification))}
    assert sent == {("ORDER_PLACED", "slow-payer@example.com", "sent"),
                    ("ORDER_CANCELLED", "slow-payer@example.com", "sent")}
