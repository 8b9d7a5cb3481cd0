"""seed-demo and import-products."""

from __future__ import annotations

import re

import pytest
from sqlalchemy import func, select

from ecom.catalog.models import Category, Product, ProductImage, Variant
from ecom.commerce.models import Order, Return
from ecom.identity.models import User
from ecom.identity.passwords import verify_password
from ecom.inventory.models import Inventory, StockLocation
from ecom.inventory.services import ledger_total
from ecom.stores.models import Store


def _count(db, model, *where):
    return db.session.scalar(select(func.count()).select_from(model).where(*where))


@pytest.mark.slow
def test_seed_demo_builds_a_shop_and_is_idempotent(app, db):
    runner = app.test_cli_runner()
    first = runner.invoke(args=["seed-demo"])
    assert first.exit_code == 0, first.output
    assert "admin@example.com / demo-password-123" in first.output
    counts = {m: _count(db, m) for m in (Category, Product, Variant, Store, Order, User, Return)}
    assert counts[Category] >= 5 and counts[Store] == 5
    assert _count(db, Product, Product.is_active.is_(True)) >= 40
    per_product = db.session.scalars(select(func.count(Variant.id)).group_by(Variant.product_id)).all()
    assert per_product and all(2 <= n <= 4 for n in per_product)
    assert _count(db, ProductImage) >= counts[Product]
    # every variant stocked at the default warehouse; some at the second, featured ones in every store
    stocked = db.session.scalars(select(func.count(func.distinct(Inventory.variant_id)))
                                 .where(Inventory.quantity > 0)).one()
    assert stocked == counts[Variant]
    kinds = dict(db.session.execute(
        select(StockLocation.kind, func.count()).group_by(StockLocation.kind)).all())
    assert kinds == {"warehouse": 2, "store": 5}
    statuses = set(db.session.scalars(select(Order.status)))
    assert {"created", "paid", "packed", "shipped", "delivered", "cancelled"} <= statuses
    assert _count(db, Order, Order.user_id.is_(None), Order.order_token_hash.is_not(None)) == 1  # a guest's
    # the returns queue has work in each of its first states, and a delivered order is left to return
    assert sorted(db.session.scalars(select(Return.status))) == ["approved", "received", "requested"]
    returnable = re.search(r"order (\S+) \(customer@example.com\) is delivered and can be returned",
                           first.output)
    assert returnable, first.output
    order = db.session.scalar(select(Order).where(Order.order_number == returnable.group(1)))
    assert order.status == "delivered" and _count(db, Return, Return.order_id == order.id) == 0
    received = db.session.scalar(select(Return).where(Return.status == "received"))
    assert [(line.condition, line.location_id is not None) for line in received.lines] == [("restock", True)]
    roles = dict(db.session.execute(select(User.email, User.role)).all())
    assert roles["merch@example.com"] == "merchandiser" and roles["warehouse@example.com"] == "warehouse"
    admin = db.session.scalar(select(User).where(User.email == "admin@example.com"))
    assert verify_password("demo-password-123", admin.hashed_password)
    # every on-hand quantity is explained by the ledger
    for inventory in db.session.scalars(select(Inventory).limit(10)):
        assert ledger_total(inventory.variant_id, inventory.location_id) == inventory.quantity

    second = runner.invoke(args=["seed-demo"])
    assert second.exit_code == 0, second.output
    assert {m: _count(db, m) for m in counts} == counts


def test_import_products_command_reports_bad_rows(app, db, tmp_path):
    path = tmp_path / "products.csv"
    path.write_text(
        "product_slug,product_name,category_slug,base_price,sku,variant_name,price,attributes,stock\n"
        "cli-mug,CLI Mug,,9.00,CLI-MUG-1,Blue,9.50,\"{\"\"colour\"\": \"\"blue\"\"}\",4\n"
        "cli-mug,CLI Mug,,9.00,CLI-MUG-2,Red,not-a-price,{},1\n"
    )
    result = app.test_cli_runner().invoke(args=["import-products", str(path)])
    assert result.exit_code == 1
    assert "1 created" in result.output
    assert "line 3" in result.output
    variant = db.session.scalar(select(Variant).where(Variant.sku == "CLI-MUG-1"))
    assert variant.inventory.quantity == 4 and variant.attributes == {"colour": "blue"}
    assert db.session.scalar(select(Variant).where(Variant.sku == "CLI-MUG-2")) is None
