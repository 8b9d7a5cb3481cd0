"""Deleting what history refers to ends in an explanation and a way out, never a database error."""

from __future__ import annotations

from sqlalchemy import select

from ecom.catalog.models import Category, Product, Variant
from tests.factories import CategoryFactory, ProductFactory, VariantFactory


def test_a_product_with_orders_is_not_deleted_and_can_be_deactivated_instead(as_role, db, make_order):
    order = make_order("paid")
    product = db.session.get(Variant, order.items[0].variant_id).product
    admin = as_role("merchandiser")

    # When someone deletes an ordered product
    response = admin.post("/admin/product/delete/", data={"id": str(product.id)})

    # Then the page says why, offers deactivation, and the product stays
    body = response.get_data(as_text=True)
    assert response.status_code == 200
    assert "cannot be deleted: 1 order(s) include it" in body and 'id="deactivate-instead"' in body
    assert "IntegrityError" not in body and "SQL" not in body
    assert db.session.get(Product, product.id) is not None

    # When they follow the way out
    admin.post(f"/admin/product/deactivate/{product.id}", follow_redirects=True)
    db.session.expire_all()
    assert db.session.get(Product, product.id).is_active is False


def test_the_bulk_delete_of_an_ordered_product_deletes_nothing(as_role, db, make_order):
    order = make_order("paid")
    ordered = db.session.get(Variant, order.items[0].variant_id).product
    spare = ProductFactory()
    db.session.commit()

    response = as_role("admin").post("/admin/product/action/", data={
        "action": "delete", "rowid": [str(ordered.id), str(spare.id)]}, follow_redirects=True)

    body = response.get_data(as_text=True)
    assert "cannot be deleted" in body and "Nothing was deleted." in body
    assert db.session.get(Product, spare.id) is not None


def test_a_product_without_orders_is_deleted(as_role, db):
    product = ProductFactory()
    VariantFactory(product=product)
    db.session.commit()

    as_role("merchandiser").post("/admin/product/delete/", data={"id": str(product.id)})

    assert db.session.scalar(select(Product).where(Product.id == product.id)) is None


def test_an_ordered_variant_is_deactivated_instead(as_role, db, make_order):
    order = make_order("paid")
    variant_id = order.items[0].variant_id
    admin = as_role("admin")

    body = admin.post("/admin/variant/delete/", data={"id": str(variant_id)}).get_data(as_text=True)
    assert "cannot be deleted" in body
    admin.post(f"/admin/variant/deactivate/{variant_id}")

    db.session.expire_all()
    assert db.session.get(Variant, variant_id).is_active is False


def test_a_category_with_products_points_to_its_products(as_role, db):
    category = CategoryFactory(name="Lamps")
    ProductFactory(category=category)
    db.session.commit()

    response = as_role("merchandiser").post("/admin/category/delete/", data={"id": str(category.id)})

    body = response.get_data(as_text=True)
    assert "Lamps cannot be deleted: it holds 1 product(s)" in body
    assert f"/admin/product/?flt0_0={category.id}" in body
    assert db.session.get(Category, category.id) is not None


def test_a_product_with_stock_on_hand_is_deactivated_instead(as_role, db):
    from tests.factories import stocked_variant

    variant = stocked_variant(quantity=4)
    db.session.commit()

    body = as_role("merchandiser").post("/admin/product/delete/",
                                        data={"id": str(variant.product_id)}).get_data(as_text=True)

    assert "4 unit(s) are in stock" in body and 'id="deactivate-instead"' in body
    assert db.session.get(Product, variant.product_id) is not None


def test_a_store_with_stock_is_deactivated_instead(as_role, db):
    from ecom.inventory.models import StockLocation
    from ecom.stores.models import Store
    from tests.factories import InventoryFactory, StoreFactory, VariantFactory

    store = StoreFactory(name="Harbour Street")
    location = StockLocation(code="HARBOUR", name="Harbour Street", kind="store", store_id=store.id)
    db.session.add(location)
    db.session.flush()
    InventoryFactory(variant=VariantFactory(), location=location, quantity=3)
    db.session.commit()
    client = as_role("merchandiser")

    body = client.post("/admin/store/delete/", data={"id": str(store.id)}).get_data(as_text=True)
    assert "Harbour Street cannot be deleted: it has 3 unit(s) in stock" in body
    assert 'id="deactivate-instead"' in body and "IntegrityError" not in body

    client.post(f"/admin/store/deactivate/{store.id}")
    db.session.expire_all()
    assert db.session.get(Store, store.id).is_active is False
