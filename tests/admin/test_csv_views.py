"""CSV round trip through the back office: export, edit, import with some bad rows."""

from __future__ import annotations

import csv
import io
from decimal import Decimal

from sqlalchemy import select

from ecom.catalog.models import ImportJob, Product, Variant
from tests.factories import CategoryFactory, ProductFactory, ProductImageFactory, VariantFactory


def _rows(text: str) -> list[dict]:
    return list(csv.DictReader(io.StringIO(text)))


def _csv(rows: list[dict]) -> bytes:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(rows[0]))
    writer.writeheader()
    writer.writerows(rows)
    return buffer.getvalue().encode()


def test_export_edit_import_round_trip(as_role, db):
    # Given a product with two stocked variants
    category = CategoryFactory(slug="mugs")
    product = ProductFactory(name="Mug", slug="mug", category=category)
    ProductImageFactory(product=product, url="https://img.example.com/mug.jpg")
    from tests.factories import InventoryFactory

    for sku, qty in (("MUG-S", 5), ("MUG-L", 7)):
        variant = VariantFactory(product=product, sku=sku, price=Decimal("8.00"))
        InventoryFactory(variant=variant, quantity=qty)
    db.session.commit()
    client = as_role("merchandiser")

    # When it is exported
    exported = client.get("/admin/product/export.csv")
    assert exported.status_code == 200 and exported.mimetype == "text/csv"
    rows = _rows(exported.get_data(as_text=True))
    assert [r["sku"] for r in rows] == ["MUG-S", "MUG-L"]
    assert rows[0]["image_urls"] == "https://img.example.com/mug.jpg" and rows[0]["stock"] == "5"

    # and edited: a price change, a new variant, and three bad rows
    rows[0]["price"] = "9.25"
    rows[1]["stock"] = "10"
    new = dict(rows[0], sku="MUG-XL", variant_name="XL", price="11.00", attributes='{"size": "XL"}',
               stock="3")
    bad_price = dict(rows[0], sku="MUG-BAD", price="cheap")
    bad_attributes = dict(rows[0], sku="MUG-BAD2", attributes="[1, 2]")
    bad_category = dict(rows[0], sku="MUG-BAD3", product_slug="other-mug", category_slug="nope")
    upload = _csv([rows[0], rows[1], bad_price, new, bad_attributes, bad_category])

    # then imported
    response = client.post("/admin/product/import", data={"file": (io.BytesIO(upload), "edited.csv")},
                           content_type="multipart/form-data")
    assert response.status_code == 302
    job = db.session.scalar(select(ImportJob).order_by(ImportJob.id.desc()))
    report = client.get(response.headers["Location"]).get_data(as_text=True)

    # good rows landed
    assert (job.status, job.total_rows, job.processed_rows) == ("finished", 6, 6)
    assert (job.created_count, job.updated_count) == (1, 2)
    variants = {v.sku: v for v in db.session.scalars(select(Variant).where(Variant.product_id == product.id))}
    assert variants["MUG-S"].price == Decimal("9.25")
    assert variants["MUG-L"].inventory.quantity == 10
    assert variants["MUG-XL"].inventory.quantity == 3 and variants["MUG-XL"].attributes == {"size": "XL"}
    db.session.refresh(product)
    assert (product.min_price, product.max_price) == (Decimal("8.00"), Decimal("11.00"))
    # bad rows are reported by line number and left nothing behind
    assert [(e["line"], e["sku"]) for e in job.errors] == [(4, "MUG-BAD"), (6, "MUG-BAD2"), (7, "MUG-BAD3")]
    assert "price must be a number" in report and "No category with slug" in report
    assert db.session.scalar(select(Variant).where(Variant.sku.like("MUG-BAD%"))) is None
    assert db.session.scalar(select(Product).where(Product.slug == "other-mug")) is None


def test_a_file_without_the_needed_columns_fails_with_a_report(as_role, db):
    response = as_role("admin").post("/admin/product/import",
                                     data={"file": (io.BytesIO(b"name,colour\nx,y\n"), "x.csv")},
                                     content_type="multipart/form-data", follow_redirects=True)
    page = response.get_data(as_text=True)
    assert "Missing column(s)" in page and "failed" in page


def test_warehouse_may_export_but_not_import(as_role, db):
    client = as_role("warehouse")
    assert client.get("/admin/product/export.csv").status_code == 200
    assert client.get("/admin/product/import").status_code == 403


def test_export_follows_the_list_filters(as_role, db):
    ProductFactory(name="Red kettle", slug="red-kettle")
    ProductFactory(name="Blue pan", slug="blue-pan")
    text = as_role("admin").get("/admin/product/export.csv?search=kettle").get_data(as_text=True)
    assert "red-kettle" in text and "blue-pan" not in text


def test_import_runs_on_the_rq_default_queue_with_redis(app, db, redis_url, as_role):
    from redis import Redis
    from rq import Queue

    app.config["REDIS_URL"] = redis_url
    try:
        response = as_role("admin").post(
            "/admin/product/import",
            data={"file": (io.BytesIO(b"product_name,sku,price\nQueued,Q-1,1.00\n"), "q.csv")},
            content_type="multipart/form-data")
    finally:
        app.config["REDIS_URL"] = None
    assert response.status_code == 302
    job = db.session.scalar(select(ImportJob).order_by(ImportJob.id.desc()))
    assert job.status == "queued"
    queue = Queue("default", connection=Redis.from_url(redis_url))
    [queued] = queue.get_jobs()
    assert queued.func_name == "workers.jobs.run_import_job" and queued.args == (job.id,)
    # the job body, as a worker would run it (inside this test's transaction)
    from workers.jobs import run_import_job

    assert run_import_job(job.id) == "finished"
    assert db.session.scalar(select(Variant).where(Variant.sku == "Q-1")) is not None
    assert run_import_job(job.id) == "finished"  # a re-run does nothing new
