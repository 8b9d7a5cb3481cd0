"""Inventory screens: counts change only through stock movements."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from ecom.inventory.models import Inventory, StockMovement
from tests.factories import InventoryFactory, StoreFactory, VariantFactory, stocked_variant


def _movements(db, variant):
    return db.session.scalars(select(StockMovement).where(StockMovement.variant_id == variant.id)).all()


@pytest.mark.parametrize("role", ["admin", "merchandiser", "warehouse"])
def test_staff_who_may_adjust_counts_record_a_movement(as_role, db, staff, role):
    variant = stocked_variant(quantity=5)
    response = as_role(role).post(f"/admin/inventory/adjust/{variant.id}",
                                  data={"delta": "-2", "reason": "damage", "note": "dropped"})
    assert response.status_code == 302
    db.session.refresh(variant.inventory)
    assert variant.inventory.quantity == 3
    [movement] = _movements(db, variant)
    assert (movement.delta, movement.reason, movement.note, movement.user_id) == (
        -2, "damage", "dropped", staff[role].id)


def test_received_stock_is_booked_as_received(as_role, db):
    variant = VariantFactory()
    as_role("warehouse").post(f"/admin/inventory/adjust/{variant.id}",
                              data={"delta": "12", "reason": "received"})
    inventory = db.session.scalar(select(Inventory).where(Inventory.variant_id == variant.id))
    assert inventory.quantity == 12
    assert [m.reason for m in _movements(db, variant)] == ["received"]


def test_adjusting_below_zero_is_refused_with_a_message_and_nothing_changes(as_role, db):
    variant = stocked_variant(quantity=3)
    db.session.commit()
    response = as_role("warehouse").post(f"/admin/inventory/adjust/{variant.id}",
                                         data={"delta": "-5", "reason": "correction"})
    assert response.status_code == 200
    assert "only 3 on hand" in response.get_data(as_text=True)
    db.session.refresh(variant.inventory)
    assert variant.inventory.quantity == 3
    assert _movements(db, variant) == []


def test_adjusting_below_reserved_is_refused(as_role, db):
    variant = VariantFactory()
    InventoryFactory(variant=variant, quantity=5, reserved=4)
    db.session.commit()
    response = as_role("admin").post(f"/admin/inventory/adjust/{variant.id}",
                                     data={"delta": "-3", "reason": "correction"})
    assert "reserved" in response.get_data(as_text=True)
    db.session.refresh(variant.inventory)
    assert variant.inventory.quantity == 5


def test_a_zero_change_is_refused(as_role, db):
    variant = stocked_variant(quantity=3)
    db.session.commit()
    response = as_role("admin").post(f"/admin/inventory/adjust/{variant.id}",
                                     data={"delta": "0", "reason": "correction"})
    assert "non-zero" in response.get_data(as_text=True)
    assert _movements(db, variant) == []


def test_quantity_is_never_a_form_field(as_role, db):
    inventory = stocked_variant(quantity=3).inventory
    page = as_role("admin").get(f"/admin/inventory/edit/?id={inventory.id}").get_data(as_text=True)
    assert 'name="low_stock_threshold"' in page
    assert 'name="quantity"' not in page and 'name="reserved"' not in page
    # and posting one anyway changes nothing
    as_role("admin").post(f"/admin/inventory/edit/?id={inventory.id}",
                          data={"low_stock_threshold": "7", "quantity": "999"})
    db.session.refresh(inventory)
    assert (inventory.quantity, inventory.low_stock_threshold) == (3, 7)


def test_warehouse_may_adjust_counts_but_not_edit_thresholds(as_role, db):
    inventory = stocked_variant(quantity=3).inventory
    assert as_role("warehouse").get(f"/admin/inventory/edit/?id={inventory.id}").status_code == 403


def test_low_stock_rows_are_highlighted_and_filterable(as_role, db):
    low = VariantFactory(sku="LOW-1")
    InventoryFactory(variant=low, quantity=1, low_stock_threshold=2)
    plenty = VariantFactory(sku="PLENTY-1")
    InventoryFactory(variant=plenty, quantity=50, low_stock_threshold=2)
    client = as_role("merchandiser")
    page = client.get("/admin/inventory/").get_data(as_text=True)
    assert 'badge-warning">1<' in page
    low_only = client.get("/admin/inventory/?flt0_0=1").get_data(as_text=True)
    assert "LOW-1" in low_only and "PLENTY-1" not in low_only


def test_stock_movements_are_read_only(as_role, db):
    variant = stocked_variant(quantity=3)
    as_role("admin").post(f"/admin/inventory/adjust/{variant.id}",
                          data={"delta": "1", "reason": "correction"})
    client = as_role("admin")
    assert "correction" in client.get("/admin/stockmovement/").get_data(as_text=True)
    assert client.get("/admin/stockmovement/new/").status_code == 403
    movement = _movements(db, variant)[0]
    assert client.post("/admin/stockmovement/delete/", data={"id": movement.id}).status_code == 403


@pytest.mark.parametrize(("lat", "lng", "ok"),
                         [("51.5", "-0.12", True), ("91", "0", False), ("0", "-181", False)])
def test_store_coordinates_are_validated(as_role, db, lat, lng, ok):
    from ecom.stores.models import Store

    response = as_role("merchandiser").post("/admin/store/new/", data={
        "name": "Flagship", "address": "1 Way", "city": "London", "country": "gb",
        "latitude": lat, "longitude": lng, "is_active": "y"})
    store = db.session.scalar(select(Store).where(Store.name == "Flagship"))
    assert (store is not None) == ok
    if ok:
        assert response.status_code == 302 and store.country == "GB"
    else:
        assert "between" in response.get_data(as_text=True)


def test_store_active_toggle_from_the_list(as_role, db):
    store = StoreFactory(is_active=True)
    response = as_role("admin").post("/admin/store/ajax/update/",
                                     data={"list_form_pk": store.id, "is_active": ""})
    assert response.status_code == 200
    db.session.refresh(store)
    assert store.is_active is False


def test_received_stock_must_be_positive_and_the_rule_is_the_services(as_role, db):
    # Given a variant with stock, when someone books a negative delivery
    variant = stocked_variant(quantity=3)
    db.session.commit()
    response = as_role("warehouse").post(f"/admin/inventory/adjust/{variant.id}",
                                         data={"delta": "-2", "reason": "received"})

    # then ecom.inventory refuses it (its message, its field) and nothing moves
    page = response.get_data(as_text=True)
    assert "Received stock must be a positive number of units." in page
    assert "Must be positive for received stock." in page
    db.session.refresh(variant.inventory)
    assert variant.inventory.quantity == 3
    assert _movements(db, variant) == []


def test_a_back_office_adjustment_is_audited_once_with_the_signed_in_user(as_role, db, staff):
    from ecom.audit.models import AuditLog

    variant = stocked_variant(quantity=5)
    as_role("warehouse").post(f"/admin/inventory/adjust/{variant.id}",
                              data={"delta": "4", "reason": "received"})

    [entry] = db.session.scalars(select(AuditLog).where(AuditLog.entity == "inventory")).all()
    assert (entry.action, entry.user_id, entry.actor) == ("adjust_stock", staff["warehouse"].id,
                                                          "warehouse@shop.test")
    assert entry.changes["quantity"] == {"before": 5, "after": 9}


def test_the_low_stock_filter_and_badge_follow_inventory_is_low(as_role, db):
    # Given one row exactly at its threshold (low) and one a unit above it (not low)
    at = VariantFactory(sku="AT-THRESHOLD")
    InventoryFactory(variant=at, quantity=6, reserved=2, low_stock_threshold=4)
    above = VariantFactory(sku="ABOVE-THRESHOLD")
    InventoryFactory(variant=above, quantity=7, reserved=2, low_stock_threshold=4)
    client = as_role("admin")

    low = client.get("/admin/inventory/?flt0_0=1").get_data(as_text=True)
    not_low = client.get("/admin/inventory/?flt0_0=0").get_data(as_text=True)

    assert "AT-THRESHOLD" in low and "ABOVE-THRESHOLD" not in low
    assert "ABOVE-THRESHOLD" in not_low and "AT-THRESHOLD" not in not_low
    assert 'badge-warning">4<' in low and 'badge-light">5<' in not_low
