"""Split shipments and click & collect, end to end: a checkout whose units come from two
warehouses ships in two parcels with two tracking numbers; a pickup order is made ready at
its store, the customer is told where and when, and collecting it delivers the order."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from ecom.actor import Actor
from ecom.commerce.status import OrderStatus
from ecom.errors import InvalidTransition
from ecom.extensions import db
from ecom.fulfillment import services as fulfillment
from ecom.fulfillment.models import Fulfillment
from ecom.inventory import services as stock
from ecom.notifications.models import Notification, OutboxEvent
from tests.commerce_support import auth, fill_cart
from tests.factories import UserFactory, VariantFactory, make_order
from tests.locations_support import place, row_at, store_location, warehouse

CLERK = Actor("warehouse@shop.test", None)
INTENT, CONFIRM = "/api/v1/checkout/payment-intent", "/api/v1/checkout/confirm"


def _events(kind: str) -> list[dict]:
    return [e.payload["data"] for e in db.session.scalars(
        select(OutboxEvent).where(OutboxEvent.type == kind).order_by(OutboxEvent.created_at))]


def _mail(kind: str) -> list[Notification]:
    return list(db.session.scalars(select(Notification).where(
        Notification.event_type == kind, Notification.channel == "email").order_by(Notification.id)))


def test_a_split_shipment_end_to_end_with_two_tracking_numbers(client, shopper):
    from tests.commerce_support import ADDRESS

    # given 3 units at the first warehouse and 5 at the second, and a cart of 4 plus another line
    north, south = warehouse(1, code="NORTH"), warehouse(2, code="SOUTH")
    boots, socks = VariantFactory(sku="BOOTS"), VariantFactory(sku="SOCKS")
    place(boots, north, 3)
    place(boots, south, 5)
    place(socks, south, 9)
    fill_cart(shopper, [(boots, 4), (socks, 1)])

    # when the shopper checks out and pays
    body = client.post(INTENT, json={"shipping_address": ADDRESS}, headers=auth(shopper)).get_json()
    paid = client.post(CONFIRM, json={"payment_intent_id": body["payment_intent_id"]}, headers=auth(shopper))
    assert paid.status_code == 200, paid.get_json()
    number = body["order"]["order_number"]

    # then the order ships from two warehouses, each parcel with its own lines
    parcels = list(db.session.scalars(select(Fulfillment).where(Fulfillment.order_number == number)
                                      .order_by(Fulfillment.location_id)))
    assert [(f.location.code, [(line.order_item.sku, line.quantity) for line in f.lines])
            for f in parcels] == [
        ("NORTH", [("BOOTS", 3)]), ("SOUTH", [("BOOTS", 1), ("SOCKS", 1)])]
    assert (row_at(boots, north).quantity, row_at(boots, south).quantity) == (0, 4)

    # when the first parcel ships, the order is partially shipped; with the second, shipped
    first, second = parcels
    for step in (fulfillment.mark_processing, fulfillment.mark_packed):
        step(first, actor=CLERK)
        step(second, actor=CLERK)
    fulfillment.ship_fulfillment(first, carrier="DHL", tracking_number="TRACK-NORTH", actor=CLERK)
    assert first.order.status == OrderStatus.PARTIALLY_SHIPPED
    fulfillment.ship_fulfillment(second, carrier="UPS", tracking_number="TRACK-SOUTH", actor=CLERK)
    order = second.order
    assert order.status == OrderStatus.SHIPPED and order.shipped_at
    db.session.commit()

    # then two ORDER_SHIPPED events name each parcel's lines and tracking number, and mail them
    shipped = _events("ORDER_SHIPPED")
    assert [(e["tracking_number"], e["partial"], [(i["sku"], i["quantity"]) for i in e["shipment"]["lines"]])
            for e in shipped] == [("TRACK-NORTH", True, [("BOOTS", 3)]),
                                  ("TRACK-SOUTH", False, [("BOOTS", 1), ("SOCKS", 1)])]
    mails = _mail("ORDER_SHIPPED")
    assert len(mails) == 2
    assert "TRACK-NORTH" in mails[0].body and "3 x" in mails[0].body and "partly shipped" in mails[0].subject
    assert "TRACK-SOUTH" in mails[1].body and "TRACK-NORTH" not in mails[1].body
    # and the shopper's API shows both parcels
    shown = client.get(f"/api/v1/orders/{number}", headers=auth(shopper)).get_json()
    assert shown["status"] == "shipped"
    assert [f["tracking_number"] for f in shown["fulfillments"]] == ["TRACK-NORTH", "TRACK-SOUTH"]

    # when both arrive, the order is delivered (once, after the last)
    fulfillment.mark_delivered(first, actor=CLERK)
    assert first.order.status == OrderStatus.SHIPPED
    fulfillment.mark_delivered(second, actor=CLERK)
    assert second.order.status == OrderStatus.DELIVERED
    assert len(_events("ORDER_DELIVERED")) == 1


def _paid_pickup_order(store, shelf, units=2):
    variant = VariantFactory(sku=f"MUG-{store.id}")
    place(variant, shelf, 5)
    place(variant, warehouse(1), 50)
    order = make_order(UserFactory(), [(variant, units)], status=OrderStatus.PAID)
    stock.reserve_stock(order, ttl_seconds=60, pickup_store_id=store.id)
    stock.commit_stock(order)
    [parcel] = fulfillment.create_fulfillments(order, pickup_store_id=store.id)
    return order, parcel, variant


def test_click_and_collect_end_to_end_with_its_notification(db):
    # given a paid pickup order, its units taken at the store
    store, shelf = store_location(opening_hours={"Mon-Fri": "09:00-18:00", "Sun": "closed"})
    order, parcel, variant = _paid_pickup_order(store, shelf)
    assert parcel.is_pickup and parcel.location_id == shelf.id
    assert row_at(variant, shelf).quantity == 3

    # when the store picks it and puts it on the shelf
    fulfillment.mark_processing(parcel, actor=CLERK)
    fulfillment.mark_ready_for_pickup(parcel, actor=CLERK)
    db.session.commit()

    # then the order is ready and the customer is told where and when
    assert order.status == OrderStatus.READY_FOR_PICKUP
    [ready] = _events("ORDER_READY_FOR_PICKUP")
    assert ready["store"]["name"] == store.name and "5 Market Square" in ready["store"]["address"]
    [mail] = _mail("ORDER_READY_FOR_PICKUP")
    assert "ready for pickup" in mail.subject
    for shown in (store.name, "5 Market Square, Leeds", "Mon-Fri: 09:00-18:00", "Sun: closed", "2 x"):
        assert shown in mail.body, shown

    # when the customer collects it, the order is delivered
    fulfillment.mark_picked_up(parcel, actor=CLERK)
    assert (parcel.status, order.status) == ("picked_up", OrderStatus.DELIVERED)
    assert order.delivered_at and parcel.picked_up_at
    assert [e["order_number"] for e in _events("ORDER_DELIVERED")] == [order.order_number]


def test_a_pickup_is_never_packed_or_shipped_and_a_shipment_never_waits_at_a_store(db):
    store, shelf = store_location()
    _, parcel, _ = _paid_pickup_order(store, shelf)
    fulfillment.mark_processing(parcel, actor=CLERK)
    with pytest.raises(InvalidTransition):
        fulfillment.mark_packed(parcel, actor=CLERK)
    assert parcel.status == "processing"

    variant = VariantFactory()
    place(variant, warehouse(1), 3)
    order = make_order(UserFactory(), [(variant, 1)], status=OrderStatus.PAID)
    stock.reserve_stock(order, ttl_seconds=60)
    stock.commit_stock(order)
    [shipment] = fulfillment.create_fulfillments(order)
    fulfillment.mark_processing(shipment, actor=CLERK)
    with pytest.raises(InvalidTransition):
        fulfillment.mark_ready_for_pickup(shipment, actor=CLERK)
    assert (shipment.status, order.status) == ("processing", OrderStatus.PAID)


def test_an_uncollected_pickup_can_be_cancelled_and_its_units_go_back_to_the_store(db):
    from ecom.commerce.cancellation import cancel_order

    store, shelf = store_location()
    order, parcel, variant = _paid_pickup_order(store, shelf)
    fulfillment.mark_processing(parcel, actor=CLERK)
    fulfillment.mark_ready_for_pickup(parcel, actor=CLERK)

    cancel_order(order, actor=CLERK, reason="never collected")

    assert (order.status, parcel.status) == (OrderStatus.CANCELLED, "cancelled")
    assert row_at(variant, shelf).quantity == 5
    assert stock.ledger_total(variant.id, shelf.id) == 5
