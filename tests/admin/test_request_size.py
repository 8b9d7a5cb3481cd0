"""The back office keeps MAX_REQUEST_BYTES except on the CSV import, which takes up to 20 MB."""

from __future__ import annotations

import io

from sqlalchemy import select

from admin.base import MAX_IMPORT_BYTES
from ecom.catalog.models import ImportJob

HEADER = "product_name,sku,price\n"


def test_a_csv_import_larger_than_the_request_limit_is_accepted(app, as_role, db):
    # Given a 2 MB CSV, over the general request limit and under the import's 20 MB
    row = "Mug,MUG-1,9.99\n"
    content = HEADER + row + "\n" * (app.config["MAX_CONTENT_LENGTH"] * 2)
    assert app.config["MAX_CONTENT_LENGTH"] < len(content) < MAX_IMPORT_BYTES
    client = as_role("merchandiser")
    # When it is uploaded
    response = client.post("/admin/product/import", data={"file": (io.BytesIO(content.encode()), "big.csv")},
                           content_type="multipart/form-data")
    # Then it is imported, not refused for its size
    assert response.status_code == 302
    job = db.session.scalars(select(ImportJob).order_by(ImportJob.id.desc())).first()
    assert (job.status, job.created_count) == ("finished", 1)


def test_any_other_back_office_post_over_the_limit_is_a_413(app, as_role, db):
    # Given a form post larger than the request limit to a back-office page other than the import
    client = as_role("admin")
    big = "x" * (app.config["MAX_CONTENT_LENGTH"] + 1)
    # When it is posted
    response = client.post("/admin/order/cancel/1", data={"reason": big})
    # Then it is refused for its size
    assert response.status_code == 413


def test_an_import_over_20_mb_is_a_413(app, as_role, db):
    client = as_role("merchandiser")
    content = HEADER + "\n" * (MAX_IMPORT_BYTES + 100 * 1024)
    response = client.post("/admin/product/import", data={"file": (io.BytesIO(content.encode()), "huge.csv")},
                           content_type="multipart/form-data")
    assert response.status_code == 413
