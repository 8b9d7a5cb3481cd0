"""Catalog screens: forms go through the catalog services and leave an audit trail."""

from __future__ import annotations

import io
import re
from decimal import Decimal

from sqlalchemy import select

from ecom.audit.models import AuditLog
from ecom.catalog.models import Category, Product, Variant
from ecom.inventory.models import Inventory
from tests.factories import CategoryFactory, ProductFactory, VariantFactory
from tests.media_support import image_bytes


def _audit(db, entity):
    return db.session.scalars(select(AuditLog).where(AuditLog.entity == entity).order_by(AuditLog.id)).all()


def test_creating_a_category_generates_its_slug_and_audits(as_role, db, staff):
    response = as_role("merchandiser").post("/admin/category/new/", data={"name": "Garden Tools", "slug": ""})
    assert response.status_code == 302
    category = db.session.scalar(select(Category).where(Category.name == "Garden Tools"))
    assert category.slug == "garden-tools"
    [entry] = _audit(db, "categories")
    assert entry.action == "create" and entry.user_id == staff["merchandiser"].id
    assert entry.changes["slug"] == {"before": None, "after": "garden-tools"}


def test_a_second_category_of_the_same_name_gets_a_unique_slug(as_role, db):
    CategoryFactory(name="Garden", slug="garden")
    as_role("admin").post("/admin/category/new/", data={"name": "Garden"})
    slugs = sorted(db.session.scalars(select(Category.slug).where(Category.name == "Garden")))
    assert slugs == ["garden", "garden-2"]


def test_editing_records_before_and_after(as_role, db):
    category = CategoryFactory(name="Old", slug="old")
    response = as_role("admin").post(f"/admin/category/edit/?id={category.id}",
                                     data={"name": "New", "slug": "old", "display_order": "3"})
    assert response.status_code == 302
    [entry] = _audit(db, "categories")
    assert entry.action == "update"
    assert entry.changes["name"] == {"before": "Old", "after": "New"}
    assert entry.changes["display_order"] == {"before": 0, "after": 3}


def test_deleting_is_audited(as_role, db):
    category = CategoryFactory(name="Doomed", slug="doomed")
    as_role("admin").post("/admin/category/delete/", data={"id": category.id})
    assert db.session.get(Category, category.id) is None
    [entry] = _audit(db, "categories")
    assert entry.action == "delete" and entry.changes["name"]["before"] == "Doomed"


def test_a_taken_slug_is_a_message_not_a_500(as_role, db):
    CategoryFactory(name="A", slug="taken")
    response = as_role("admin").post("/admin/category/new/", data={"name": "B", "slug": "taken"},
                                     follow_redirects=True)
    assert response.status_code == 200
    assert "already" in response.get_data(as_text=True).lower()
    assert db.session.scalar(select(Category).where(Category.name == "B")) is None


def test_product_with_inline_variant_gets_inventory_and_price_range(as_role, db, media_root):
    category = CategoryFactory()
    response = as_role("merchandiser").post("/admin/product/new/", content_type="multipart/form-data", data={
        "name": "Trail Shoe", "slug": "", "category": str(category.id), "base_price": "80.00",
        "is_active": "y", "description": "Grippy",
        "variants-0-sku": "TRAIL-42", "variants-0-name": "EU 42", "variants-0-price": "89.50",
        "variants-0-attributes": '{"size": 42}', "variants-0-is_active": "y",
        "variants-1-sku": "TRAIL-43", "variants-1-name": "EU 43", "variants-1-price": "92.00",
        "variants-1-attributes": '{"size": 43}', "variants-1-is_active": "y",
        "variants-1-receive_stock": "6",
        "upload_images": [(io.BytesIO(image_bytes("PNG")), "trail.png")],
    })
    assert response.status_code == 302, response.get_data(as_text=True)[:2000]
    product = db.session.scalar(select(Product).where(Product.name == "Trail Shoe"))
    assert product.slug == "trail-shoe"
    assert (product.min_price, product.max_price) == (Decimal("89.50"), Decimal("92.00"))
    assert {v.sku: v.attributes for v in product.variants} == {"TRAIL-42": {"size": 42},
                                                               "TRAIL-43": {"size": 43}}
    inventories = db.session.scalars(select(Inventory).join(Variant).where(Variant.product_id == product.id))
    # Then the stock typed on the form was received, and the uploaded image is the primary one
    assert sorted(i.quantity for i in inventories) == [0, 6]
    assert [(i.content_type, i.is_primary) for i in product.images] == [("image/png", True)]
    assert (media_root / product.images[0].storage_key).is_file()
    assert set(product.images[0].thumbnails) == {"200", "800"}


def test_variant_attributes_must_be_a_json_object(as_role, db):
    product = ProductFactory()
    response = as_role("admin").post("/admin/variant/new/", data={
        "product": str(product.id), "sku": "BAD-1", "name": "x", "price": "1.00",
        "attributes": '["not", "an", "object"]', "is_active": "y"}, follow_redirects=True)
    assert "must be a JSON object" in response.get_data(as_text=True)
    assert db.session.scalar(select(Variant).where(Variant.sku == "BAD-1")) is None


def test_duplicate_sku_is_refused_with_a_message(as_role, db):
    VariantFactory(sku="DUP-1")
    product = ProductFactory()
    response = as_role("admin").post("/admin/variant/new/", data={
        "product": str(product.id), "sku": "DUP-1", "name": "x", "price": "1.00", "attributes": "{}"},
        follow_redirects=True)
    assert response.status_code == 200
    assert "already" in response.get_data(as_text=True).lower()


def test_bulk_actions_flip_flags_and_audit(as_role, db):
    products = [ProductFactory(is_active=False, featured=False) for _ in range(3)]
    ids = [str(p.id) for p in products]
    client = as_role("merchandiser")
    client.post("/admin/product/action/", data={"action": "activate", "rowid": ids})
    client.post("/admin/product/action/", data={"action": "feature", "rowid": ids[:2]})
    for p in products:
        db.session.refresh(p)
    assert [p.is_active for p in products] == [True, True, True]
    assert [p.featured for p in products] == [True, True, False]
    assert len(_audit(db, "products")) == 5


def test_search_finds_products_by_sku_once(as_role, db):
    product = ProductFactory(name="Plain name", slug="plain-name")
    VariantFactory(product=product, sku="FINDME-1")
    VariantFactory(product=product, sku="FINDME-2")
    ProductFactory(name="Other", slug="other")
    page = as_role("warehouse").get("/admin/product/?search=FINDME").get_data(as_text=True)
    assert page.count("plain-name") == 1
    assert "Other" not in page


def test_product_filters_by_category_and_price(app, as_role, db):
    shoes, hats = CategoryFactory(name="Shoes"), CategoryFactory(name="Hats")
    ProductFactory(name="Cheap shoe", category=shoes, min_price=Decimal("10.00"))
    ProductFactory(name="Dear shoe", category=shoes, min_price=Decimal("100.00"))
    ProductFactory(name="A hat", category=hats, min_price=Decimal("10.00"))
    client = as_role("admin")
    page = client.get("/admin/product/").get_data(as_text=True)
    assert "Cheap shoe" in page and "A hat" in page
    view = app.extensions["backoffice"]._views
    view = next(v for v in view if getattr(v, "endpoint", "") == "product")
    category_arg = next(view.get_filter_arg(i, f) for i, f in enumerate(view._filters)
                        if f.name == "Category")
    min_arg = next(view.get_filter_arg(i, f) for i, f in enumerate(view._filters)
                   if f.name == "Min price" and f.operation() == "greater than")
    url = f"/admin/product/?flt1_{category_arg}={shoes.id}&flt2_{min_arg}=50"
    page = client.get(url).get_data(as_text=True)
    assert "Dear shoe" in page
    assert "Cheap shoe" not in page
    assert "A hat" not in page


def test_inline_variant_edits_show_in_the_product_audit(as_role, db):
    product = ProductFactory(name="Cap", slug="cap")
    variant = VariantFactory(product=product, sku="CAP-1", price=Decimal("10.00"))
    db.session.commit()
    response = as_role("admin").post(f"/admin/product/edit/?id={product.id}", data={
        "name": "Cap", "slug": "cap", "base_price": "10.00", "is_active": "y",
        "variants-0-id": str(variant.id), "variants-0-sku": "CAP-1", "variants-0-name": "Default",
        "variants-0-price": "12.00", "variants-0-attributes": "{}", "variants-0-is_active": "y",
    })
    assert response.status_code == 302, response.get_data(as_text=True)[:500]
    [entry] = _audit(db, "products")
    assert entry.changes["variants"]["before"]["CAP-1"].startswith("Default 10.00")
    assert entry.changes["variants"]["after"]["CAP-1"].startswith("Default 12.00")
    db.session.refresh(product)
    assert product.min_price == Decimal("12.00")


def test_deleting_a_variant_refreshes_the_price_range_in_the_same_commit(as_role, db, staff):
    # Given a product priced 10-30 by two variants
    product = ProductFactory()
    VariantFactory(product=product, price=Decimal("10.00"), sku="CHEAP-1")
    dear = VariantFactory(product=product, price=Decimal("30.00"), sku="DEAR-1")
    product.min_price, product.max_price = Decimal("10.00"), Decimal("30.00")
    db.session.commit()

    # when the dear one is deleted in the back office
    response = as_role("merchandiser").post("/admin/variant/delete/", data={"id": dear.id})

    # then the range follows and the delete is audited once, by the signed-in user
    assert response.status_code == 302
    db.session.refresh(product)
    assert (product.min_price, product.max_price) == (Decimal("10.00"), Decimal("10.00"))
    [entry] = _audit(db, "variants")
    assert (entry.action, entry.user_id, entry.changes["sku"]["before"]) == (
        "delete", staff["merchandiser"].id, "DEAR-1")


def test_a_bulk_delete_is_one_unit_of_work(as_role, db):
    doomed = [CategoryFactory(name=f"Doomed {i}", slug=f"doomed-{i}") for i in range(3)]
    db.session.commit()

    response = as_role("admin").post("/admin/category/action/", data={
        "action": "delete", "rowid": [str(c.id) for c in doomed]}, follow_redirects=True)

    assert "3 records were successfully deleted" in response.get_data(as_text=True)
    assert [db.session.get(Category, c.id) for c in doomed] == [None, None, None]
    assert [e.action for e in _audit(db, "categories")] == ["delete"] * 3


def test_a_bulk_delete_that_fails_on_one_row_deletes_none(app, as_role, db, monkeypatch):
    from ecom.errors import Conflict

    # Given three categories, the last of which its view refuses to delete
    doomed = [CategoryFactory(name=f"Doomed {i}", slug=f"doomed-{i}") for i in range(3)]
    db.session.commit()
    [view] = [v for v in app.extensions["backoffice"]._views if getattr(v, "endpoint", "") == "category"]
    audit_and_refuse_last = view.on_model_delete

    def on_model_delete(model):
        audit_and_refuse_last(model)
        if model.slug == "doomed-2":
            raise Conflict("Doomed 2 is still needed.")

    monkeypatch.setattr(view, "on_model_delete", on_model_delete)

    # when all three are deleted at once
    response = as_role("admin").post("/admin/category/action/", data={
        "action": "delete", "rowid": [str(c.id) for c in doomed]}, follow_redirects=True)

    # then the refusal is the message, and every row and no audit entry is left
    assert "Doomed 2 is still needed." in response.get_data(as_text=True)
    assert all(db.session.get(Category, c.id) is not None for c in doomed)
    assert _audit(db, "categories") == []


def test_the_category_list_shows_each_category_in_its_place_in_the_tree(as_role, db):
    outdoor = CategoryFactory(name="Outdoor", slug="outdoor", display_order=1)
    footwear = CategoryFactory(name="Footwear", slug="footwear", parent=outdoor, display_order=2)
    CategoryFactory(name="Boots", slug="boots", parent=footwear, display_order=0)
    CategoryFactory(name="Kitchen", slug="kitchen", display_order=2)
    CategoryFactory(name="Tents", slug="tents", parent=outdoor, display_order=0)
    db.session.commit()

    page = as_role("merchandiser").get("/admin/category/").get_data(as_text=True)

    assert 'data-depth="2"' in page and "Outdoor › Footwear › </span><strong>Boots</strong>" in page
    assert 'data-depth="0"' in page and "<strong>Outdoor</strong>" in page
    # unsorted, the list is in tree order: each category right under its parent
    shown = [name for name in re.findall(r"<strong>([^<]+)</strong></span>", page)]
    assert shown == ["Outdoor", "Tents", "Footwear", "Boots", "Kitchen"]
    by_name = as_role("merchandiser").get("/admin/category/?sort=0").get_data(as_text=True)
    assert re.findall(r"<strong>([^<]+)</strong></span>", by_name) == sorted(shown)


def test_a_category_moved_under_its_own_subcategory_is_a_clear_message(as_role, db):
    outdoor = CategoryFactory(name="Outdoor", slug="outdoor")
    footwear = CategoryFactory(name="Footwear", slug="footwear", parent=outdoor)
    db.session.commit()

    response = as_role("admin").post(f"/admin/category/edit/?id={outdoor.id}",
                                     data={"name": "Outdoor", "slug": "outdoor", "parent": str(footwear.id)},
                                     follow_redirects=True)

    assert response.status_code == 200
    assert "under itself or under one of its own subcategories" in response.get_data(as_text=True)
    db.session.expire_all()
    assert db.session.get(Category, outdoor.id).parent_id is None


def test_the_category_list_counts_each_category_s_products(as_role, db):
    tents = CategoryFactory(name="Tents", slug="tents")
    CategoryFactory(name="Empty", slug="empty")
    for i in range(3):
        ProductFactory(name=f"Tent {i}", slug=f"tent-{i}", category=tents)
    ProductFactory(name="Loose", slug="loose", category=None)
    db.session.commit()
    page = as_role("merchandiser").get("/admin/category/").get_data(as_text=True)
    rows = re.findall(r'<tr>.*?</tr>', page, re.S)
    counts = {name: re.search(r'<td class="col-product_count">\s*(\d+)\s*</td>', row).group(1)
              for row in rows for name in re.findall(r"<strong>([^<]+)</strong>", row)}
    assert counts == {"Tents": "3", "Empty": "0"}
