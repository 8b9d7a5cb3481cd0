"""A CSV import always ends finished or failed: bad cells are reported per row, the rest lands."""

from __future__ import annotations

import csv
import io

import pytest
from sqlalchemy import select

from ecom.catalog import csv_io
from ecom.catalog.csv_io import create_import_job
from ecom.catalog.models import Product, Variant
from ecom.inventory.models import Inventory
from workers.imports import run_import


def _csv(rows: list[dict]) -> str:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=["product_name", "sku", "price", "weight", "stock",
                                                "variant_name", "image_urls"])
    writer.writeheader()
    writer.writerows(rows)
    return buffer.getvalue()


def _row(sku: str, **cells) -> dict:
    return {"product_name": f"Product {sku}", "sku": sku, "price": "5.00", **cells}


BAD_ROWS = {
    "price out of range": _row("BAD-RANGE", price="99999999999999"),
    "price NaN": _row("BAD-NAN", price="NaN"),
    "price Infinity": _row("BAD-INF", price="Infinity"),
    "weight NaN": _row("BAD-WEIGHT", weight="NaN"),
    "weight out of range": _row("BAD-WEIGHT2", weight="1e12"),
    "name over 200 characters": _row("BAD-NAME", product_name="n" * 201),
    "variant name over 200": _row("BAD-VNAME", variant_name="v" * 201),
    "NUL byte": _row("BAD-NUL", variant_name="Mug\x00"),
    "stock beyond 32 bits": _row("BAD-STOCK", stock="99999999999"),
    "stock in other digits": _row("BAD-DIGITS", stock="²"),
    "javascript image": _row("BAD-IMAGE", image_urls="javascript:alert(1)"),
}


@pytest.mark.parametrize("case", sorted(BAD_ROWS))
def test_one_bad_cell_is_reported_for_its_row_and_the_other_rows_land(db, case):
    # Given a file with a good row, the bad one and another good row
    content = _csv([_row("GOOD-1", stock="3"), BAD_ROWS[case], _row("GOOD-2")])
    job = create_import_job(content, filename="mixed.csv", user_id=None)
    db.session.commit()
    # When it is imported
    run_import(job)
    # Then the job finished, the bad row is reported by its line, and the good rows landed whole
    assert job.status == "finished"
    assert [(e["line"], e["sku"]) for e in job.errors] == [(3, BAD_ROWS[case]["sku"])]
    assert (job.created_count, job.processed_rows) == (2, 3)
    skus = set(db.session.scalars(select(Variant.sku)))
    assert {"GOOD-1", "GOOD-2"} <= skus and BAD_ROWS[case]["sku"] not in skus
    bad_name = f"Product {BAD_ROWS[case]['sku']}"
    assert db.session.scalar(select(Product).where(Product.name == bad_name)) is None
    stock = db.session.scalar(select(Inventory.quantity).join(Variant).where(Variant.sku == "GOOD-1"))
    assert stock == 3


def test_a_crash_mid_run_marks_the_job_failed_and_keeps_what_was_imported(db, monkeypatch):
    # Given a file of three rows and an import that breaks on the second row
    content = _csv([_row("ROW-1"), _row("ROW-2"), _row("ROW-3")])
    job = create_import_job(content, filename="crash.csv", user_id=None)
    db.session.commit()
    real_import_row = csv_io.import_row

    def breaking(row, **kwargs):
        if row["sku"] == "ROW-2":
            raise RuntimeError("disk on fire")
        return real_import_row(row, **kwargs)

    monkeypatch.setattr(csv_io, "import_row", breaking)
    monkeypatch.setattr(csv_io, "PROGRESS_EVERY", 1)
    # When it runs
    finished = run_import(job)
    # Then it ends failed, with a message, never left "running"
    assert finished.status == "failed" and finished.finished_at is not None
    assert "stopped unexpectedly" in finished.errors[-1]["errors"][0]
    assert "disk on fire" not in str(finished.errors)
    # and the row committed before the crash stays
    assert db.session.scalar(select(Variant).where(Variant.sku == "ROW-1")) is not None


def test_a_file_with_a_nul_byte_is_stored_and_only_its_row_is_reported(db):
    # Given an uploaded file whose second row holds a NUL byte
    content = "product_name,sku,price\nFine,FINE-1,1.00\nBro\x00ken,NUL-1,1.00\n"
    # When it is stored and imported
    job = create_import_job(content, filename="n\x00ul.csv", user_id=None)
    db.session.commit()
    run_import(job)
    # Then the other row landed and the NUL row is reported
    assert job.status == "finished" and job.created_count == 1
    assert [e["line"] for e in job.errors] == [3]
    assert job.filename == "nul.csv"
