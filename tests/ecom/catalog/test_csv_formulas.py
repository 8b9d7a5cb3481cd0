"""The product CSV export is safe to open in a spreadsheet and still imports back as it was."""

from __future__ import annotations

import csv
import io

import pytest
from sqlalchemy import select

from ecom.actor import SYSTEM
from ecom.catalog.csv_io import export_products_csv, import_row, neutralise_cell, parse_rows, restore_cell
from ecom.catalog.models import Product
from tests.factories import ProductFactory, VariantFactory

FORMULAS = ["=HYPERLINK(\"http://evil.example\",\"click\")", "+1+2", "-2+3", "@SUM(A1)", "'=quoted",
            "''", "'plain"]


@pytest.mark.parametrize("value", FORMULAS + ["plain", "", "a=b", "\tTab", "\rCR"])
def test_neutralised_cells_restore_exactly(value):
    assert restore_cell(neutralise_cell(value)) == value


def test_exported_cells_never_start_a_formula_and_import_back_unchanged(db):
    # Given products whose names and descriptions start like spreadsheet formulas
    for index, text in enumerate(FORMULAS):
        product = ProductFactory(name=text, slug=f"formula-{index}", description=text)
        VariantFactory(product=product, sku=f"F-{index}", name=text)
    db.session.flush()
    # When the catalog is exported
    exported = "".join(export_products_csv())
    # Then no cell starts with = + - @ (a spreadsheet would run it)
    for row in csv.DictReader(io.StringIO(exported)):
        for column in ("product_name", "description", "variant_name"):
            assert not row[column].startswith(("=", "+", "-", "@", "\t", "\r")), row[column]
    # and importing the export changes no name
    rows, problems = parse_rows(exported)
    assert problems == []
    for _, row in rows:
        import_row(row, actor=SYSTEM)
    db.session.flush()
    names = {p.slug: (p.name, p.description) for p in db.session.scalars(
        select(Product).where(Product.slug.like("formula-%")))}
    assert names == {f"formula-{i}": (text, text) for i, text in enumerate(FORMULAS)}
