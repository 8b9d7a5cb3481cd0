"""Orders and the fulfillment queue: every change through the checkout/fulfillment services."""

from __future__ import annotations

from decimal import Decimal

import pytest
from sqlalchemy import select

from ecom.audit.models import AuditLog
from ecom.commerce.models import OrderEvent


def _refresh(db, *objects):
    for obj in objects:
        db.session.refresh(obj)


def test_order_detail_shows_items_payments_fulfillment_and_history(as_role, make_order):
    order = make_order("shipped")
    page = as_role("merchandiser").get(f"/admin/order/details/?id={order.id}").get_data(as_text=True)
    assert order.order_number in page
    assert order.items[0].sku in page
    assert "pi_sim_" in page
    assert f"DEMO{order.id:08d}" in page  # tracking number
    assert page.count("<td>shipped</td>") >= 1
    # read-only roles see no cancel or refund buttons
    assert 'id="cancel-order"' not in page and 'id="refund-order"' not in page


def test_money_and_status_are_never_form_fields(as_role, make_order):
    order = make_order("paid")
    client = as_role("admin")
    assert client.get(f"/admin/order/edit/?id={order.id}").status_code == 403
    assert client.get("/admin/order/new/").status_code == 403


def test_admin_cancels_a_paid_order_with_refund_and_audit(as_role, db, make_order):
    order = make_order("paid")
    response = as_role("admin").post(f"/admin/order/cancel/{order.id}", data={"reason": "customer asked"})
    assert response.status_code == 302
    _refresh(db, order, order.payment)
    assert order.status == "cancelled" and order.cancel_reason == "customer asked"
    assert order.payment.status == "refunded"
    event = db.session.scalars(select(OrderEvent).where(OrderEvent.order_id == order.id,
                                                        OrderEvent.kind == "order")
                               .order_by(OrderEvent.id.desc())).first()
    assert (event.to_status, event.actor) == ("cancelled", "admin@shop.test")
    audit = db.session.scalar(select(AuditLog).where(AuditLog.entity == "orders",
                                                     AuditLog.action == "cancel"))
    assert audit.changes["status"] == {"before": "paid", "after": "cancelled"}


def test_cancelling_a_shipped_order_is_refused_with_a_message(as_role, db, make_order):
    order = make_order("shipped")
    response = as_role("admin").post(f"/admin/order/cancel/{order.id}", data={"reason": "too late"},
                                     follow_redirects=True)
    assert response.status_code == 200
    message = "Cannot move order from &#39;shipped&#39; to &#39;cancelled&#39;"
    assert message in response.get_data(as_text=True)
    _refresh(db, order)
    assert order.status == "shipped"


def test_partial_then_too_large_refund(as_role, db, make_order):
    order = make_order("paid")
    client = as_role("admin")
    client.post(f"/admin/order/refund/{order.id}", data={"amount": "5.00"})
    _refresh(db, order.payment)
    assert order.payment.refunded_amount == Decimal("5.00") and order.payment.status == "partially_refunded"
    response = client.post(f"/admin/order/refund/{order.id}", data={"amount": "99999"},
                           follow_redirects=True)
    assert "must be between" in response.get_data(as_text=True)
    _refresh(db, order.payment)
    assert order.payment.refunded_amount == Decimal("5.00")
    assert order.status == "paid"


@pytest.mark.parametrize(("amount", "message"), [
    ("0", "The refund must be between 0.01 and {total}."),  # request_refund's rule, not the admin's
    ("-3", "The refund must be between 0.01 and {total}."),
    ("twelve", "The refund amount must be a number like 12.50."),
    ("NaN", "The refund amount must be a number like 12.50."),
    ("Infinity", "The refund amount must be a number like 12.50."),
])
def test_a_refund_amount_refused_says_why_and_changes_nothing(as_role, db, make_order, amount, message):
    order = make_order("paid")
    response = as_role("admin").post(f"/admin/order/refund/{order.id}", data={"amount": amount},
                                     follow_redirects=True)
    assert response.status_code == 200
    assert message.format(total=order.total) in response.get_data(as_text=True)
    _refresh(db, order.payment)
    assert order.payment.refunded_amount == Decimal("0.00") and order.payment.refunds == []


@pytest.mark.parametrize(("status", "cancel", "refund"), [
    ("created", True, False), ("paid", True, True), ("packed", False, True), ("cancelled", False, False),
])
def test_the_buttons_follow_the_state_machines(as_role, make_order, status, cancel, refund):
    order = make_order(status)
    page = as_role("admin").get(f"/admin/order/details/?id={order.id}").get_data(as_text=True)
    assert ('id="cancel-order"' in page, 'id="refund-order"' in page) == (cancel, refund)


def test_fulfillment_queue_is_oldest_first(as_role, make_order):
    older, newer = make_order("paid"), make_order("paid")
    page = as_role("warehouse").get("/admin/fulfillment/").get_data(as_text=True)
    assert page.index(older.order_number) < page.index(newer.order_number)


def test_warehouse_packs_many_at_once(as_role, db, make_order):
    orders = [make_order("paid") for _ in range(2)]
    ids = [str(o.fulfillment.id) for o in orders]
    client = as_role("warehouse")
    client.post("/admin/fulfillment/action/", data={"action": "processing", "rowid": ids})
    client.post("/admin/fulfillment/action/", data={"action": "packed", "rowid": ids})
    for order in orders:
        _refresh(db, order, order.fulfillment)
        assert (order.fulfillment.status, order.status) == ("packed", "packed")
    assert len(db.session.scalars(select(AuditLog).where(AuditLog.entity == "fulfillments")).all()) == 4


def test_an_illegal_fulfillment_step_is_refused_and_changes_nothing(as_role, db, make_order):
    order = make_order("paid")
    response = as_role("warehouse").post("/admin/fulfillment/action/",
                                         data={"action": "delivered", "rowid": [str(order.fulfillment.id)]},
                                         follow_redirects=True)
    assert response.status_code == 200
    message = "Cannot move fulfillment from &#39;pending&#39; to &#39;delivered&#39;"
    assert message in response.get_data(as_text=True)
    _refresh(db, order, order.fulfillment)
    assert (order.fulfillment.status, order.status) == ("pending", "paid")


def test_shipping_asks_for_carrier_and_tracking(as_role, db, make_order):
    order = make_order("packed")
    fid = order.fulfillment.id
    client = as_role("warehouse")
    redirect = client.post("/admin/fulfillment/action/", data={"action": "shipped", "rowid": [str(fid)]})
    assert redirect.headers["Location"].endswith(f"/admin/fulfillment/ship?ids={fid}")
    form = client.get(f"/admin/fulfillment/ship?ids={fid}").get_data(as_text=True)
    assert f'name="tracking_{fid}"' in form
    missing = client.post(f"/admin/fulfillment/ship?ids={fid}",
                          data={"carrier": "UPS", f"tracking_{fid}": ""}, follow_redirects=True)
    assert "tracking number is required" in missing.get_data(as_text=True)
    _refresh(db, order.fulfillment)
    assert order.fulfillment.status == "packed"
    client.post(f"/admin/fulfillment/ship?ids={fid}", data={"carrier": "UPS", f"tracking_{fid}": "1Z999"})
    _refresh(db, order, order.fulfillment)
    assert (order.status, order.fulfillment.carrier, order.fulfillment.tracking_number) == (
        "shipped", "UPS", "1Z999")


@pytest.mark.parametrize("path", ["/admin/fulfillment/picklist", "/admin/fulfillment/slip/{fid}"])
def test_pick_list_and_packing_slip_print(as_role, make_order, path):
    order = make_order("paid", quantity=3)
    page = as_role("warehouse").get(path.format(fid=order.fulfillment.id)).get_data(as_text=True)
    assert order.items[0].sku in page
    assert "<strong>3</strong>" in page or "<td>3</td>" in page


def test_open_work_comes_before_finished_fulfillments(as_role, make_order):
    delivered = make_order("delivered")  # older, but done
    waiting = make_order("paid")
    page = as_role("warehouse").get("/admin/fulfillment/").get_data(as_text=True)
    assert page.index(waiting.order_number) < page.index(delivered.order_number)


def test_a_bulk_step_applies_to_the_ready_ones_and_reports_the_rest(as_role, db, make_order):
    # given one fulfillment ready to pack and one still pending
    ready, pending = make_order("paid"), make_order("paid")
    client = as_role("warehouse")
    client.post("/admin/fulfillment/action/",
                data={"action": "processing", "rowid": [str(ready.fulfillment.id)]})
    # when both are marked packed at once
    response = client.post("/admin/fulfillment/action/", follow_redirects=True, data={
        "action": "packed", "rowid": [str(ready.fulfillment.id), str(pending.fulfillment.id)]})
    # then the ready one is packed, the other is named with the reason and left alone
    page = response.get_data(as_text=True)
    assert "1 fulfillment(s) marked packed." in page
    refused = "Cannot move fulfillment from &#39;pending&#39; to &#39;packed&#39;"
    assert f"{pending.order_number}: {refused}" in page
    _refresh(db, ready, ready.fulfillment, pending, pending.fulfillment)
    assert (ready.fulfillment.status, ready.status) == ("packed", "packed")
    assert (pending.fulfillment.status, pending.status) == ("pending", "paid")
    # and each move is audited by the service, with the warehouse user as actor
    audit = db.session.scalars(select(AuditLog).where(AuditLog.entity == "fulfillments",
                                                      AuditLog.entity_id == str(ready.fulfillment.id))
                                   .order_by(AuditLog.id)).all()
    assert [(a.actor, a.changes["status"]["after"]) for a in audit] == [
        ("warehouse@shop.test", "processing"), ("warehouse@shop.test", "packed")]


def test_a_cancel_whose_refund_the_gateway_cannot_make_yet_says_so(app, as_role, db, make_order):
    from ecom.errors import GatewayUnavailable
    from ecom.runtime import use_gateway

    class Down:
        name = "simulated"

        def refund(self, intent_id, amount_minor=None, idempotency_key=None):
            raise GatewayUnavailable("The payment provider is unavailable. Please try again shortly.")

    order = make_order("paid")
    use_gateway(Down(), app)
    try:
        response = as_role("admin").post(f"/admin/order/cancel/{order.id}", data={"reason": "customer asked"},
                                         follow_redirects=True)
    finally:
        use_gateway(None, app)
    page = response.get_data(as_text=True)
    assert f"Order {order.order_number} cancelled." in page
    assert "has not made the refund" in page and "retried automatically" in page
    assert 'id="order-refunds"' in page and "requested" in page
    _refresh(db, order, order.payment)
    assert order.status == "cancelled" and order.payment.status == "completed"
