"""Two requests for the last unit of a line, on PostgreSQL over separate connections: one wins."""

from __future__ import annotations

import threading

from sqlalchemy import func, select

from ecom.actor import Actor
from ecom.commerce.models import Order, ReturnLine
from ecom.commerce.returns import LineRequest, request_return
from ecom.errors import ValidationFailed
from ecom.extensions import db
from ecom.unit_of_work import commit
from tests.returns_support import delivered_order


def test_two_concurrent_requests_for_the_last_unit_one_wins(postgres, committed_db):
    # given a delivered order of 2 units, one of them already asked back
    order = delivered_order([(None, "12.50", 2, "1.00", "0.92")])
    sku, order_id = order.items[0].sku, order.id
    request_return(order, [LineRequest(sku, 1, "first")], actor=Actor("a@example.com"))
    commit()
    barrier = threading.Barrier(2)
    outcomes: list = [None, None]

    def ask(index):
        with postgres.app_context():
            barrier.wait()
            try:
                mine = db.session.get(Order, order_id)
                request_return(mine, [LineRequest(sku, 1, f"rival {index}")],
                               actor=Actor(f"{index}@example.com"))
                commit()
                outcomes[index] = "won"
            except ValidationFailed as exc:
                db.session.rollback()
                outcomes[index] = exc.message
            finally:
                db.session.remove()

    threads = [threading.Thread(target=ask, args=(i,)) for i in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    # then exactly one got the last unit, the other was told none is left
    assert sorted(o == "won" for o in outcomes) == [False, True], outcomes
    assert "0 of 2 left" in next(o for o in outcomes if o != "won")
    db.session.expire_all()
    assert db.session.scalar(select(func.sum(ReturnLine.quantity))) == 2
