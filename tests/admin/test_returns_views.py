"""The returns queue: who may approve, receive and refund (commerce-v2 §6), and what each does."""

from __future__ import annotations

from sqlalchemy import select

from ecom.actor import Actor
from ecom.commerce.models import PaymentRefund, Return
from ecom.commerce.returns import LineRequest, request_return
from ecom.inventory.models import Inventory
from tests.locations_support import warehouse
from tests.returns_support import delivered_order


def a_return(db):
    order = delivered_order([(None, "19.99", 3, "2.00", "1.44"), (None, "7.33", 2, "0.00", "0.59")])
    ret = request_return(order, [LineRequest(order.items[0].sku, 2, "too small"),
                                 LineRequest(order.items[1].sku, 1, "broken")], actor=Actor("shopper@x.test"))
    db.session.commit()
    return ret


def status_of(db, ret) -> str:
    db.session.expire_all()
    return db.session.get(Return, ret.id).status


def test_the_roles_of_section_6(as_role, db):
    ret = a_return(db)
    # merchandiser and warehouse read the queue but cannot approve
    for role in ("merchandiser", "warehouse"):
        page = as_role(role).get(f"/admin/return/details/?id={ret.id}").get_data(as_text=True)
        assert ret.rma_number in page and 'id="approve-return"' not in page
        refused = as_role(role).post(f"/admin/return/decide/{ret.id}", data={"decision": "approve"})
        assert refused.status_code == 403
    assert status_of(db, ret) == "requested"
    # the admin approves
    page = as_role("admin").get(f"/admin/return/details/?id={ret.id}").get_data(as_text=True)
    assert 'id="approve-return"' in page
    approved = as_role("admin").post(f"/admin/return/decide/{ret.id}", data={"decision": "approve"})
    assert approved.status_code == 302
    assert status_of(db, ret) == "approved"
    # the merchandiser may not receive, the warehouse may; the warehouse may not refund
    assert as_role("merchandiser").post(f"/admin/return/receive/{ret.id}", data={}).status_code == 403
    page = as_role("warehouse").get(f"/admin/return/details/?id={ret.id}").get_data(as_text=True)
    assert 'id="receive-return"' in page
    back_room = warehouse(30)
    db.session.commit()
    lines = {line.order_item.sku: line for line in db.session.get(Return, ret.id).lines}
    skus = list(lines)
    form = {f"condition-{lines[skus[0]].id}": "restock", f"location-{lines[skus[0]].id}": str(back_room.id),
            f"condition-{lines[skus[1]].id}": "damaged", f"location-{lines[skus[1]].id}": str(back_room.id)}
    assert as_role("warehouse").post(f"/admin/return/receive/{ret.id}", data=form).status_code == 302
    assert status_of(db, ret) == "received"
    variant_id = lines[skus[0]].order_item.variant_id
    restocked = db.session.scalar(select(Inventory).where(Inventory.location_id == back_room.id,
                                                          Inventory.variant_id == variant_id))
    assert restocked.available == 2
    assert as_role("warehouse").post(f"/admin/return/refund/{ret.id}", data={}).status_code == 403
    # the admin sees each line's refundable amount and refunds
    page = as_role("admin").get(f"/admin/return/details/?id={ret.id}").get_data(as_text=True)
    assert "$39.61" in page and "$7.63" in page  # 2/3 of 19.99*3-2.00+1.44; 1/2 of 7.33*2+0.59, half up
    assert as_role("admin").post(f"/admin/return/refund/{ret.id}", data={}).status_code == 302
    assert status_of(db, ret) == "refunded"
    refund = db.session.scalar(select(PaymentRefund))
    assert str(refund.amount) == "47.24"


def test_a_receipt_without_a_condition_is_refused_with_a_message(as_role, db):
    ret = a_return(db)
    as_role("admin").post(f"/admin/return/decide/{ret.id}", data={"decision": "approve"})
    answer = as_role("warehouse").post(f"/admin/return/receive/{ret.id}", data={}, follow_redirects=True)
    assert answer.status_code == 200 and "Must be restock or damaged" in answer.get_data(as_text=True)
    assert status_of(db, ret) == "approved"


def test_the_admin_refunds_lines_as_goodwill_from_the_order_page(as_role, db):
    order = delivered_order([(None, "19.99", 3, "2.00", "1.44"), (None, "7.33", 2, "0.00", "0.59")])
    db.session.commit()
    page = as_role("merchandiser").get(f"/admin/order/details/?id={order.id}").get_data(as_text=True)
    assert 'id="goodwill-refund"' not in page
    assert as_role("merchandiser").post(f"/admin/order/goodwill/{order.id}",
                                        data={f"goodwill-{order.items[0].id}": "1"}).status_code == 403
    page = as_role("admin").get(f"/admin/order/details/?id={order.id}").get_data(as_text=True)
    assert 'id="goodwill-refund"' in page and "$59.41 (3)" in page
    answer = as_role("admin").post(f"/admin/order/goodwill/{order.id}",
                                   data={f"goodwill-{order.items[0].id}": "1"})
    assert answer.status_code == 302
    refund = db.session.scalar(select(PaymentRefund))
    assert str(refund.amount) == "19.80"  # a third of 59.41, rounded half up
    # more units than are left: refused with a message, nothing more refunded
    refused = as_role("admin").post(f"/admin/order/goodwill/{order.id}",
                                    data={f"goodwill-{order.items[0].id}": "3"}, follow_redirects=True)
    assert "2 units left to refund" in refused.get_data(as_text=True)
    assert len(db.session.scalars(select(PaymentRefund)).all()) == 1
