""""Available" and "low" are defined once, on Inventory, and mean the same in Python and SQL."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from sqlalchemy import select

from admin.dashboard import low_stock_variants
from ecom.catalog import queries
from ecom.inventory.models import Inventory, available_units
from tests.factories import InventoryFactory, VariantFactory

ROOT = Path(__file__).resolve().parents[3]
SCANNED = ("ecom", "admin", "storefront_api")
HOME_OF_THE_RULE = Path("ecom/inventory/models.py")
# "available": quantity - reserved in any spelling (Inventory.quantity - Inventory.reserved,
# i.quantity - i.reserved in raw SQL, max(inv.quantity - inv.reserved, 0)), and the same rule as
# a comparison (reserved + n <= quantity, quantity >= reserved + n); "low": anything compared
# with the threshold.
RESTATEMENTS = [
    re.compile(r"quantity\s*-\s*[\w.\[\]\"']*reserved"),
    re.compile(r"reserved\s*\+\s*[\w.]+\s*<=?\s*[\w.]*quantity"),
    re.compile(r"quantity\s*>=?\s*[\w.]*reserved\s*\+"),
    re.compile(r"[<>]=?\s*[\w.]*low_stock_threshold|low_stock_threshold\s*[<>]"),
]


def _restatements_in(root: Path) -> list[str]:
    found = []
    for package in SCANNED:
        for path in sorted((root / package).rglob("*")):
            if path.suffix not in {".py", ".html", ".sql"} or path.relative_to(root) == HOME_OF_THE_RULE:
                continue
            for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
                if any(pattern.search(line) for pattern in RESTATEMENTS):
                    found.append(f"{path.relative_to(root)}:{number}: {line.strip()}")
    return found


def test_available_is_written_only_on_inventory():
    # Use Inventory.available / Inventory.is_low (Python or SQL) instead of restating them.
    assert _restatements_in(ROOT) == []


def test_the_scan_catches_a_restatement(tmp_path):
    # Given the rule written again somewhere it does not belong
    for package in SCANNED:
        (tmp_path / package).mkdir()
    (tmp_path / "admin" / "report.py").write_text(
        "low = (Inventory.quantity - Inventory.reserved) <= Inventory.low_stock_threshold\n"
        "fits = Inventory.reserved + units <= Inventory.quantity\n"
        "low = row.available <= row.low_stock_threshold\n")
    (tmp_path / "ecom" / "sql.py").write_text('SQL = "SELECT i.quantity - i.reserved FROM inventory i"\n')

    # then the scan names every line
    assert [hit.split(":")[0:2] for hit in _restatements_in(tmp_path)] == [
        ["ecom/sql.py", "1"], ["admin/report.py", "1"], ["admin/report.py", "2"], ["admin/report.py", "3"]]


@pytest.mark.parametrize(("quantity", "reserved", "threshold", "available", "low"), [
    (10, 0, 5, 10, False),
    (10, 4, 5, 6, False),
    (10, 5, 5, 5, True),  # at the threshold counts as low
    (10, 10, 0, 0, True),
    (0, 0, 0, 0, True),
    (7, 2, 0, 5, False),
])
def test_available_and_low_in_python(quantity, reserved, threshold, available, low):
    inventory = Inventory(quantity=quantity, reserved=reserved, low_stock_threshold=threshold)

    assert (inventory.available, inventory.is_low) == (available, low)


def test_available_never_goes_negative_before_a_flush():
    # An object changed in Python but not yet checked by the database's constraints.
    assert Inventory(quantity=1, reserved=3, low_stock_threshold=0).available == 0


def test_sql_and_python_agree_row_for_row(db):
    # Given inventories on both sides of their thresholds
    cases = [(10, 0, 5), (10, 4, 5), (10, 5, 5), (10, 10, 0), (0, 0, 0), (7, 2, 0), (3, 1, 2)]
    rows = [InventoryFactory(quantity=q, reserved=r, low_stock_threshold=t) for q, r, t in cases]
    db.session.flush()
    ids = [row.id for row in rows]

    # when the database computes them
    in_sql = dict(db.session.execute(
        select(Inventory.id, Inventory.available).where(Inventory.id.in_(ids))).all())
    low_in_sql = set(db.session.scalars(
        select(Inventory.id).where(Inventory.id.in_(ids), Inventory.is_low)))
    not_low_in_sql = set(db.session.scalars(
        select(Inventory.id).where(Inventory.id.in_(ids), ~Inventory.is_low)))
    has_available_in_sql = set(db.session.scalars(
        select(Inventory.id).where(Inventory.id.in_(ids), Inventory.has_available)))

    # then they match the Python attributes
    assert in_sql == {row.id: row.available for row in rows}
    assert low_in_sql == {row.id for row in rows if row.is_low}
    assert not_low_in_sql == set(ids) - low_in_sql
    assert has_available_in_sql == {row.id for row in rows if row.has_available} == {
        row.id for row in rows if row.available > 0}


def test_every_reader_uses_the_same_rule(db):
    # Given a variant with 2 of 6 units reserved, threshold 4: available 4, low
    variant = VariantFactory(sku="EDGE-1")
    InventoryFactory(variant=variant, quantity=6, reserved=2, low_stock_threshold=4)
    untracked = VariantFactory(sku="NO-ROW")
    db.session.flush()

    # then cart, catalog and dashboard all read 4 available and low
    assert available_units(variant) == variant.inventory.available == 4
    assert available_units(untracked) == 0
    [row] = [r for r in low_stock_variants(limit=50) if r["sku"] == "EDGE-1"]
    assert row["available"] == 4
    assert queries.product_in_stock(variant.product)


def test_the_catalog_filters_emit_the_measured_sql():
    # The in-stock filters test has_available, spelled as the predicate of the partial index
    # ix_inventory_variant_available: PostgreSQL uses the index only for that exact spelling.
    assert str(queries.in_stock_clause().compile()).count("inventory.quantity > inventory.reserved") == 1
    assert str(queries.in_stock_probe(1).compile()).count("inventory.quantity > inventory.reserved") == 1
    assert str(Inventory.is_low.compile()) == (
        "inventory.quantity - inventory.reserved <= inventory.low_stock_threshold")
