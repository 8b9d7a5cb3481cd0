"""The returns queue: who may approve, receive and refund (commerce-v2 §6), and what each does."""

from __future__ import annotations

import re
from decimal import Decimal

import pytest
from sqlalchemy import select

from ecom.actor import Actor
from ecom.commerce.demo import create_demo_order
from ecom.commerce.models import PaymentRefund, Return
from ecom.commerce.returns import LineRequest, Receipt, approve_return, receive_return, request_return
from ecom.errors import ValidationFailed
from ecom.inventory.models import Inventory
from tests.factories import UserFactory, VariantFactory
from tests.locations_support import place, warehouse
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


def test_only_an_admin_closes_a_return_and_only_while_it_is_open(as_role, db):
    ret = a_return(db)
    # merchandiser and warehouse: no button, and the URL is 403
    for role in ("merchandiser", "warehouse"):
        page = as_role(role).get(f"/admin/return/details/?id={ret.id}").get_data(as_text=True)
        assert 'id="close-return"' not in page
        assert as_role(role).post(f"/admin/return/close/{ret.id}", data={"note": "x"}).status_code == 403
    assert status_of(db, ret) == "requested"
    # the admin closes it (never sent back): its units may be asked for again
    page = as_role("admin").get(f"/admin/return/details/?id={ret.id}").get_data(as_text=True)
    assert 'id="close-return"' in page and "its units may be asked for again" in page
    closed = as_role("admin").post(f"/admin/return/close/{ret.id}", data={"note": "never sent back"},
                                   follow_redirects=True)
    assert "closed without a refund" in closed.get_data(as_text=True)
    db.session.expire_all()
    ret = db.session.get(Return, ret.id)
    assert (ret.status, ret.note) == ("closed", "never sent back")
    assert 'id="close-return"' not in closed.get_data(as_text=True)  # nothing left to close
    again = request_return(ret.order, [LineRequest(ret.order.items[0].sku, 3)], actor=Actor("shopper@x.test"))
    assert again.status == "requested"
    # closing a closed one: refused with a message, nothing changes
    refused = as_role("admin").post(f"/admin/return/close/{ret.id}", data={}, follow_redirects=True)
    assert "Cannot move return from &#39;closed&#39; to &#39;closed&#39;" in refused.get_data(as_text=True)
    unknown = as_role("admin").post("/admin/return/close/999999", data={}, follow_redirects=True)
    assert "No such return" in unknown.get_data(as_text=True)


def test_a_return_closed_after_its_goods_came_back_keeps_its_units(as_role, db):
    ret = a_return(db)
    admin = Actor("admin@x.test")
    approve_return(ret, actor=admin)
    back_room = warehouse(30)
    receive_return(ret, {line.id: Receipt("restock", back_room.id) for line in ret.lines}, actor=admin)
    db.session.commit()
    page = as_role("admin").get(f"/admin/return/details/?id={ret.id}").get_data(as_text=True)
    assert "The goods stay where they were received" in page
    assert as_role("admin").post(f"/admin/return/close/{ret.id}", data={}).status_code == 302
    assert status_of(db, ret) == "closed"
    order = db.session.get(Return, ret.id).order
    with pytest.raises(ValidationFailed, match="1 of 3 left"):
        request_return(order, [LineRequest(order.items[0].sku, 2)], actor=Actor("shopper@x.test"))


def test_the_warehouse_sees_no_money_on_a_return(as_role, db):
    ret = a_return(db)
    warehouse_page = as_role("warehouse").get(f"/admin/return/details/?id={ret.id}").get_data(as_text=True)
    admin_page = as_role("admin").get(f"/admin/return/details/?id={ret.id}").get_data(as_text=True)
    assert "$39.61" in admin_page and "Refundable" in admin_page
    assert "$39.61" not in warehouse_page and "Refundable" not in warehouse_page


def test_the_returns_list_shows_refund_amounts_only_to_who_may_refund(as_role, db):
    a_return(db)
    assert "Refund Amount" in as_role("admin").get("/admin/return/").get_data(as_text=True)
    for role in ("warehouse", "merchandiser"):
        assert "Refund Amount" not in as_role(role).get("/admin/return/").get_data(as_text=True)


def _shipped_from(location, user):
    variant = VariantFactory(price=Decimal("20.00"))
    place(variant, location, 5)
    return create_demo_order(user, [(variant, 2)], status="delivered")


def test_a_clerk_filters_the_queue_by_their_location(as_role, db):
    # given returns of orders shipped from two warehouses, one received at the other
    north, south = warehouse(10, code="NORTH"), warehouse(20, code="SOUTH")
    shopper = UserFactory()
    from_north, from_south, back_north = (_shipped_from(north, shopper), _shipped_from(south, shopper),
                                          _shipped_from(south, shopper))
    actor = Actor("admin@x.test")
    rets = {name: request_return(order, [LineRequest(order.items[0].sku, 1)], actor=actor)
            for name, order in (("north", from_north), ("south", from_south), ("back", back_north))}
    approve_return(rets["back"], actor=actor)
    receive_return(rets["back"], {line.id: Receipt("restock", north.id) for line in rets["back"].lines},
                   actor=actor)
    db.session.commit()
    view = _location_filter_index(as_role("warehouse"))

    def listed(location) -> set[str]:
        page = as_role("warehouse").get(f"/admin/return/?flt0_{view}={location.id}").get_data(as_text=True)
        return {rma for name, ret in rets.items() if (rma := ret.rma_number) in page}

    # then north lists what it shipped and not received yet, and what was received there
    assert listed(north) == {rets["north"].rma_number, rets["back"].rma_number}
    assert listed(south) == {rets["south"].rma_number}
    quiet = warehouse(90, code="QUIET")
    quiet.name = "Quiet Shelf"
    db.session.commit()
    everything = as_role("warehouse").get("/admin/return/").get_data(as_text=True)
    assert "Quiet Shelf" in everything  # the filter offers every location by name (asked per list)
    assert all(ret.rma_number in everything for ret in rets.values())
    assert f"from {south.name}" in everything and north.name in everything
    # and the receive form starts at the location that shipped the line
    approve_return(rets["south"], actor=actor)
    db.session.commit()
    page = as_role("warehouse").get(f"/admin/return/details/?id={rets['south'].id}").get_data(as_text=True)
    assert f'<option value="{south.id}" selected>' in page


def _location_filter_index(client) -> str:
    """The list's filter argument for Location (Flask-Admin numbers its filters)."""
    page = client.get("/admin/return/").get_data(as_text=True)
    found = re.search(r'"(\d+)":\s*\{[^}]*?"Location"', page) or re.search(r"flt\d+_(\d+)", page)
    return found.group(1) if found else "0"


def test_the_queue_finds_a_return_by_its_rma_or_its_order_number(as_role, db):
    first, second = a_return(db), a_return(db)
    order_number = db.session.get(Return, first.id).order.order_number

    def found(term: str) -> set[str]:
        answer = as_role("warehouse").get("/admin/return/", query_string={"search": term})
        page = answer.get_data(as_text=True)
        return {ret.rma_number for ret in (first, second) if ret.rma_number in page}

    assert found(first.rma_number) == {first.rma_number}
    assert found(first.rma_number.lower()) == {first.rma_number}
    assert found(order_number) == {first.rma_number}
    assert found("RMA-") == {first.rma_number, second.rma_number}
    assert found("%") == found("ORD_%") == found("zzz") == set()
