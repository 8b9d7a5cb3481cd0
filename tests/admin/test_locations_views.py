"""The back office's stock-location screens: locations (admin edits, others read),
scanner-friendly transfers and purchase orders, stock per variant and location on the
product, names and order numbers in the ledger, the queue and pick list per location."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from ecom.actor import Actor
from ecom.inventory import services as stock
from ecom.inventory.models import StockLocation
from ecom.stockroom.models import PurchaseOrder, StockTransfer
from tests.factories import ProductFactory, UserFactory, VariantFactory, make_order
from tests.locations_support import place, row_at, warehouse

CLERK = Actor("clerk@example.com", None)


@pytest.mark.parametrize(("role", "allowed"),
                         [("admin", True), ("merchandiser", False), ("warehouse", False)])
def test_only_admins_create_stock_locations(as_role, db, role, allowed):
    response = as_role(role).post("/admin/stocklocation/new/", data={
        "code": "dock", "name": "Dock 2", "kind": "warehouse", "priority": "30", "ships_orders": "y",
        "is_active": "y", "address": ""})
    created = db.session.scalar(select(StockLocation).where(StockLocation.code == "DOCK"))
    assert (created is not None) == allowed
    assert response.status_code == (302 if allowed else 403)


def test_a_transfer_is_scanned_sent_and_received_in_the_back_office(as_role, db):
    north, south = warehouse(1, code="NORTH"), warehouse(2, code="SOUTH")
    variant = VariantFactory(sku="SCAN-1")
    place(variant, north, 10)
    db.session.commit()
    client = as_role("warehouse")

    started = client.post("/admin/transfer/start", data={"source": north.id, "destination": south.id})
    transfer = db.session.scalar(select(StockTransfer))
    assert started.status_code == 302 and started.headers["Location"].endswith(f"/scan/{transfer.id}")
    page = client.get(f"/admin/transfer/scan/{transfer.id}").get_data(as_text=True)
    assert 'id="sku"' in page and "autofocus" in page
    # two scans of the same SKU and one typo
    for sku, qty in (("SCAN-1", "2"), ("SCAN-1", "1"), ("NOPE", "1")):
        client.post(f"/admin/transfer/scan/{transfer.id}", data={"step": "add", "sku": sku, "quantity": qty})
    page = client.get(f"/admin/transfer/scan/{transfer.id}").get_data(as_text=True)
    assert "No variant with SKU &#39;NOPE&#39;" in page or "No variant with SKU 'NOPE'" in page
    assert [(line.quantity) for line in transfer.lines] == [3]

    client.post(f"/admin/transfer/scan/{transfer.id}", data={"step": "send"})
    db.session.refresh(transfer)
    assert transfer.status == "in_transit" and row_at(variant, north).quantity == 7
    page = client.get(f"/admin/transfer/scan/{transfer.id}").get_data(as_text=True)
    assert 'id="step-receive"' in page and 'id="step-send"' not in page and 'id="sku"' not in page
    client.post(f"/admin/transfer/scan/{transfer.id}", data={"step": "receive"})
    assert row_at(variant, south).quantity == 3


@pytest.mark.parametrize("quantity", ["0", "-4", "x"])
def test_a_bad_scanned_quantity_is_a_message_and_nothing_is_written(as_role, db, quantity):
    north, south = warehouse(1), warehouse(2)
    VariantFactory(sku="SCAN-2")
    db.session.commit()
    client = as_role("merchandiser")
    client.post("/admin/transfer/start", data={"source": north.id, "destination": south.id})
    transfer = db.session.scalar(select(StockTransfer))
    response = client.post(f"/admin/transfer/scan/{transfer.id}",
                           data={"step": "add", "sku": "SCAN-2", "quantity": quantity}, follow_redirects=True)
    assert response.status_code == 200 and "alert-danger" in response.get_data(as_text=True)
    db.session.refresh(transfer)
    assert transfer.lines == []


def test_a_purchase_order_is_received_by_scanning_with_a_warning_for_too_many(as_role, db):
    dock = warehouse(1, code="DOCK")
    variant = VariantFactory(sku="PO-SCAN")
    db.session.commit()
    client = as_role("warehouse")
    client.post("/admin/purchaseorder/start", data={"supplier": "Acme", "destination": dock.id})
    purchase_order = db.session.scalar(select(PurchaseOrder))
    url = f"/admin/purchaseorder/scan/{purchase_order.id}"
    client.post(url, data={"step": "add", "sku": "PO-SCAN", "quantity": "5"})
    client.post(url, data={"step": "place"})
    client.post(url, data={"step": "receive_line", "sku": "PO-SCAN", "quantity": "3"})
    db.session.refresh(purchase_order)
    assert purchase_order.status == "partially_received"
    page = client.post(url, data={"step": "receive_line", "sku": "PO-SCAN", "quantity": "4"},
                       follow_redirects=True).get_data(as_text=True)
    assert "More than ordered: PO-SCAN: received 7 of 5 ordered (2 more)." in page
    db.session.refresh(purchase_order)
    assert purchase_order.status == "received" and row_at(variant, dock).quantity == 7


def test_receiving_into_an_inactive_location_is_a_message(as_role, db):
    dock = warehouse(1)
    VariantFactory(sku="PO-OFF")
    db.session.commit()
    client = as_role("admin")
    client.post("/admin/purchaseorder/start", data={"supplier": "Acme", "destination": dock.id})
    purchase_order = db.session.scalar(select(PurchaseOrder))
    url = f"/admin/purchaseorder/scan/{purchase_order.id}"
    client.post(url, data={"step": "add", "sku": "PO-OFF", "quantity": "5"})
    client.post(url, data={"step": "place"})
    dock.is_active = False
    db.session.commit()
    page = client.post(url, data={"step": "receive_line", "sku": "PO-OFF", "quantity": "5"},
                       follow_redirects=True).get_data(as_text=True)
    assert "inactive" in page
    db.session.refresh(purchase_order)
    assert purchase_order.status == "ordered"


def test_the_product_shows_stock_per_variant_and_location_and_adjusts_one_cell(as_role, db):
    north, south = warehouse(1, code="NORTH"), warehouse(2, code="SOUTH")
    product = ProductFactory(name="Lantern")
    variant = VariantFactory(product=product, sku="LANTERN-1")
    place(variant, north, 4)
    place(variant, south, 9)
    db.session.commit()
    client = as_role("warehouse")

    page = client.get(f"/admin/inventory/product/{product.id}").get_data(as_text=True)
    assert "4 / 4" in page and "9 / 9" in page
    assert f"location_id={south.id}" in page
    client.post(f"/admin/inventory/adjust/{variant.id}?location_id={south.id}",
                data={"location": south.id, "delta": "-2", "reason": "damage", "note": "wet"})
    assert (row_at(variant, north).quantity, row_at(variant, south).quantity) == (4, 7)
    assert "Lantern" in client.get("/admin/product/").get_data(as_text=True)


def test_ledger_and_inventory_lists_name_products_variants_locations_and_orders(as_role, db):
    north = warehouse(1, code="NORTH")
    product = ProductFactory(name="Kettle Deluxe")
    variant = VariantFactory(product=product, sku="KETTLE-1", name="Copper")
    place(variant, north, 5)
    order = make_order(UserFactory(), [(variant, 2)], number="ORD-LEDGER-1")
    stock.reserve_stock(order, ttl_seconds=60)
    stock.commit_stock(order)
    db.session.commit()
    client = as_role("merchandiser")

    ledger = client.get("/admin/stockmovement/").get_data(as_text=True)
    for shown in ("Kettle Deluxe", "Copper", "KETTLE-1", north.name, "ORD-LEDGER-1"):
        assert shown in ledger, shown
    listing = client.get(f"/admin/inventory/?flt0_1={north.id}").get_data(as_text=True)
    assert "Kettle Deluxe" in listing and north.name in listing


def test_fulfillment_queue_and_pick_list_per_location(as_role, db):
    from ecom.commerce.status import OrderStatus
    from ecom.fulfillment.services import create_fulfillments

    north, south = warehouse(1, code="NORTH"), warehouse(2, code="SOUTH")
    variant = VariantFactory(sku="PICK-1")
    place(variant, north, 1)
    place(variant, south, 5)
    order = make_order(UserFactory(), [(variant, 3)], status=OrderStatus.PAID, number="ORD-SPLIT-1")
    stock.reserve_stock(order, ttl_seconds=60)
    stock.commit_stock(order)
    create_fulfillments(order)
    db.session.commit()
    client = as_role("warehouse")

    queue = client.get(f"/admin/fulfillment/?flt0_0={south.id}").get_data(as_text=True)
    assert "ORD-SPLIT-1" in queue and south.name in queue
    picks = client.get(f"/admin/fulfillment/picklist?location_id={south.id}").get_data(as_text=True)
    assert "PICK-1" in picks and "<strong>2</strong>" in picks and "<strong>1</strong>" not in picks
    picks = client.get(f"/admin/fulfillment/picklist?location_id={north.id}").get_data(as_text=True)
    assert "<strong>1</strong>" in picks


def test_the_dashboard_shows_stock_per_location(as_role, db):
    north = warehouse(1, code="NORTH")
    place(VariantFactory(), north, 42)
    db.session.commit()
    page = as_role("warehouse").get("/admin/").get_data(as_text=True)
    assert 'id="stock-per-location"' in page and north.name in page and ">42<" in page
