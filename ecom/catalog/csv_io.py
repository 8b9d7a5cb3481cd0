"""Product CSV export and import, one format both ways: one row per variant.

Import validates each row on its own inside a savepoint: a valid row lands
whole, an invalid one is reported with its line number and leaves nothing
behind. Progress and the error report live in ``import_jobs``. This module
only flushes; workers/imports.py runs an import to the end, committing each
step (queued as an RQ job with ``REDIS_URL``, otherwise inline).
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterable, Iterator
from decimal import Decimal, InvalidOperation

from sqlalchemy import select
from sqlalchemy.exc import DataError, IntegrityError
from sqlalchemy.orm import selectinload

from ecom.actor import SYSTEM, Actor
from ecom.catalog import services
from ecom.catalog.models import ImportJob, Product, Variant
from ecom.db import utcnow
from ecom.errors import EcomError, NotFound, ValidationFailed
from ecom.extensions import db

COLUMNS = [
    "product_slug", "product_name", "category_slug", "description", "base_price", "is_active",
    "featured", "image_urls", "sku", "variant_name", "price", "weight", "attributes",
    "variant_active", "stock",
]
REQUIRED = ("product_name", "sku", "price")
TRUE, FALSE = {"1", "true", "yes", "y"}, {"0", "false", "no", "n", ""}
PROGRESS_EVERY = 25
# The longest text each column's database field holds; a longer cell is reported for its row.
MAX_LENGTH = {"product_slug": 220, "product_name": 200, "category_slug": 140, "sku": 64,
              "variant_name": 200}
# On hand is an INTEGER column; a CSV asks for far less than this.
MAX_STOCK = 1_000_000_000
# PostgreSQL cannot store a NUL byte in text: an uploaded file keeps this in its place, and
# the row whose cell holds it is reported (the others still land).
NUL_STAND_IN = "\ufffd"
# A cell starting with one of these is a formula to a spreadsheet: the export puts a quote
# before it (and before a leading quote, so that the import can take exactly that one away).
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r", "'")


# ---------------------------------------------------------------- export

def export_rows(products: Iterable[Product]) -> Iterator[dict]:
    """One dict per variant (a product without variants gives one row with empty variant fields).
    ``stock`` is the on-hand quantity at the default location, the one the import sets."""
    from ecom.inventory.services import default_location

    home = default_location().id
    for product in products:
        shared = {
            "product_slug": product.slug,
            "product_name": product.name,
            "category_slug": product.category.slug if product.category else "",
            "description": product.description or "",
            "base_price": str(product.base_price),
            "is_active": _flag(product.is_active),
            "featured": _flag(product.featured),
            "image_urls": "|".join(image.url for image in product.images),
        }
        if not product.variants:
            yield {**shared, **{c: "" for c in COLUMNS if c not in shared}}
        for variant in product.variants:
            yield {
                **shared,
                "sku": variant.sku,
                "variant_name": variant.name,
                "price": str(variant.price),
                "weight": "" if variant.weight is None else str(variant.weight),
                "attributes": json.dumps(variant.attributes or {}, sort_keys=True),
                "variant_active": _flag(variant.is_active),
                "stock": str(sum(row.quantity for row in variant.inventories if row.location_id == home)),
            }


def export_products_csv(query=None, *, batch: int = 500) -> Iterator[str]:
    """The CSV text, streamed in chunks; ``query`` is a select(Product) (default: all products)."""
    query = query if query is not None else select(Product)
    query = query.order_by(Product.id).options(
        selectinload(Product.category), selectinload(Product.images),
        selectinload(Product.variants).selectinload(Variant.inventories),
    )
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=COLUMNS, lineterminator="\n")
    writer.writeheader()
    yield _drain(buffer)
    offset = 0
    while True:
        products = list(db.session.scalars(query.offset(offset).limit(batch)).unique())
        if not products:
            return
        writer.writerows({k: neutralise_cell(v) for k, v in row.items()} for row in export_rows(products))
        yield _drain(buffer)
        offset += batch


def neutralise_cell(value: str) -> str:
    """``value`` safe to open in a spreadsheet: a formula-like start gets a leading quote."""
    return "'" + value if value.startswith(FORMULA_STARTS) else value


def restore_cell(value: str) -> str:
    """The inverse of ``neutralise_cell``: what the export wrote, the import reads back."""
    return value[1:] if value.startswith("'") and value[1:].startswith(FORMULA_STARTS) else value


def _drain(buffer: io.StringIO) -> str:
    text = buffer.getvalue()
    buffer.seek(0)
    buffer.truncate()
    return text


def _flag(value: bool) -> str:
    return "true" if value else "false"


# ---------------------------------------------------------------- import

def parse_rows(content: str) -> tuple[list[tuple[int, dict]], list[str]]:
    """(line number, row) pairs of a CSV text and the header problems, if any."""
    reader = csv.DictReader(io.StringIO(content.lstrip("\ufeff")))
    try:
        header = [h.strip() for h in (reader.fieldnames or [])]
    except csv.Error as exc:
        return [], [f"The header line is not valid CSV ({exc})."]
    missing = [c for c in REQUIRED if c not in header]
    if missing:
        return [], [f"Missing column(s): {', '.join(missing)}. Expected: {', '.join(COLUMNS)}."]
    reader.fieldnames = header
    rows = []
    try:
        for row in reader:
            if not any((v or "").strip() for k, v in row.items() if k is not None):
                continue
            rows.append((reader.line_num, {k: restore_cell((v or "").strip())
                                           for k, v in row.items() if k is not None}))
    except csv.Error as exc:
        # A malformed line (a field past the csv module's size limit, say) ends the reading:
        # what came before it is imported, and the job fails with the line named.
        return rows, [f"Line {reader.line_num} is not valid CSV ({exc}); the rows after it were not read."]
    return rows, []


def _check_cells(row: dict) -> None:
    """Refuse a row with a cell no column can store: a NUL byte, or more characters than it holds."""
    bad = {field: ["Contains a NUL byte or a character that is not text."]
           for field, value in row.items() if NUL_STAND_IN in value or "\x00" in value}
    bad.update({field: [f"At most {limit} characters."] for field, limit in MAX_LENGTH.items()
                if len(row.get(field, "")) > limit and field not in bad})
    if bad:
        raise ValidationFailed("The row has a value its column cannot hold.", bad)


def _bool(row: dict, field: str, default: bool) -> bool:
    value = row.get(field, "").lower()
    if value == "" or field not in row:
        return default
    if value in TRUE:
        return True
    if value in FALSE:
        return False
    raise ValidationFailed(f"{field} must be true or false.", {field: [f"'{row[field]}' is not true/false."]})


def _decimal(row: dict, field: str, *, required: bool) -> Decimal | None:
    value = row.get(field, "")
    if value == "":
        if required:
            raise ValidationFailed(f"{field} is required.", {field: ["Required."]})
        return None
    try:
        number = Decimal(value)
    except InvalidOperation:
        number = None
    if number is None or not number.is_finite():
        raise ValidationFailed(f"{field} must be a number.", {field: [f"'{value[:40]}' is not a number."]})
    return number


def _stock(row: dict) -> int | None:
    value = row.get("stock", "")
    if value == "":
        return None
    if not (value.isascii() and value.isdigit()) or len(value) > 10 or int(value) > MAX_STOCK:
        raise ValidationFailed(f"stock must be a whole number from 0 to {MAX_STOCK}.",
                               {"stock": [value[:40]]})
    return int(value)


def import_row(row: dict, *, actor: Actor) -> str:
    """Create or update one product/variant from a CSV row; 'created' or 'updated'.

    Stock (at the default location, ``ecom.inventory.services.default_location``): a new
    variant receives its ``stock``; an existing one is corrected to it through a
    ``correction`` stock movement. Raises ValidationFailed, DuplicateError,
    NotFound (unknown category), Conflict (stock below what is reserved).
    """
    from ecom.inventory.services import adjust_stock, ensure_inventory, receive_stock

    _check_cells(row)
    for field in REQUIRED:
        if not row.get(field):
            raise ValidationFailed(f"{field} is required.", {field: ["Required."]})
    category = None
    if row.get("category_slug"):
        category = services.get_category_by_slug(row["category_slug"])
        if category is None:
            raise NotFound(f"No category with slug '{row['category_slug']}'.")
    price = _decimal(row, "price", required=True)
    base_price = _decimal(row, "base_price", required=False) or price
    weight = _decimal(row, "weight", required=False)
    stock = _stock(row)
    attributes = services.validate_attributes(row.get("attributes") or "")
    product_fields = dict(
        name=row["product_name"], category=category, description=row.get("description", ""),
        base_price=base_price, is_active=_bool(row, "is_active", True),
        featured=_bool(row, "featured", False),
    )
    product = services.get_product_by_slug(row["product_slug"]) if row.get("product_slug") else None
    if product is None:
        product = services.create_product(slug=row.get("product_slug") or None, actor=actor, **product_fields)
    else:
        services.update_product(product, actor=actor, **product_fields)
    if "image_urls" in row and row["image_urls"]:
        services.set_product_images(product, row["image_urls"].split("|"))

    variant = services.get_variant_by_sku(row["sku"])
    variant_fields = dict(name=row.get("variant_name") or "Default", price=price, weight=weight,
                          attributes=attributes, is_active=_bool(row, "variant_active", True))
    if variant is None:
        variant = services.add_variant(product, sku=row["sku"], actor=actor, **variant_fields)
        if stock:
            receive_stock(variant, stock, actor=actor, note="CSV import")
        return "created"
    if variant.product_id != product.id:
        raise ValidationFailed(f"SKU '{variant.sku}' belongs to another product ({variant.product.slug}).")
    services.update_variant(variant, actor=actor, **variant_fields)
    current = ensure_inventory(variant).quantity
    if stock is not None and stock != current:
        adjust_stock(variant, stock - current, "correction", actor=actor, note="CSV import")
    return "updated"


def import_steps(job: ImportJob, *, actor: Actor | None = None) -> Iterator[ImportJob]:
    """Import the job's CSV row by row; flushes only.

    Yields ``job`` at each point its progress should become visible - running,
    every PROGRESS_EVERY rows, finished - for the caller to commit there. Each
    row is validated in a savepoint: a bad one is reported by line number and
    leaves nothing behind. A file that is not valid CSV past some line imports the rows
    before it and ends ``failed`` with that line reported.
    """
    actor = actor or _job_actor(job)
    rows, file_errors = parse_rows(job.content)
    job.status, job.total_rows, job.errors = "running", len(rows), []
    db.session.flush()
    yield job
    if file_errors and not rows:
        yield _finish(job, "failed", [{"line": 1, "errors": file_errors}])
        return
    errors: list[dict] = []
    for index, (line, row) in enumerate(rows, start=1):
        savepoint = db.session.begin_nested()
        try:
            outcome = import_row(row, actor=actor)
            savepoint.commit()
        except (EcomError, IntegrityError, DataError) as exc:
            # DataError: a value the checks above let through and the database refused.
            savepoint.rollback()
            errors.append({"line": line, "sku": _printable(row.get("sku", ""))[:64],
                           "errors": _messages(exc)})
        else:
            if outcome == "created":
                job.created_count += 1
            else:
                job.updated_count += 1
        job.processed_rows = index
        if index % PROGRESS_EVERY == 0:
            job.errors = list(errors)
            db.session.flush()
            yield job
    if file_errors:
        yield _finish(job, "failed", [*errors, {"line": len(rows) + 1, "errors": file_errors}])
        return
    yield _finish(job, "finished", errors)


def fail_import(job: ImportJob, message: str) -> ImportJob:
    """Mark ``job`` failed with ``message`` added to its errors (the run stopped part-way)."""
    return _finish(job, "failed", [*(job.errors or []), {"line": 0, "errors": [message]}])


def _printable(text: str) -> str:
    return text.replace("\x00", "").replace(NUL_STAND_IN, "")


def _finish(job: ImportJob, status: str, errors: list[dict]) -> ImportJob:
    job.status, job.errors, job.finished_at = status, errors, utcnow()
    db.session.flush()
    return job


def _messages(exc: Exception) -> list[str]:
    if isinstance(exc, ValidationFailed) and exc.errors:
        return [f"{exc.message}"] + [f"{field}: {' '.join(m)}" for field, m in exc.errors.items()]
    if isinstance(exc, EcomError):
        return [exc.message]
    return ["The database refused this row (a duplicate or an invalid value)."]


def _job_actor(job: ImportJob) -> Actor:
    if job.user_id:
        from ecom.identity.models import User

        user = db.session.get(User, job.user_id)
        if user is not None:
            return Actor.of_user(user)
    return SYSTEM


def create_import_job(content: str, *, filename: str, user_id: int | None) -> ImportJob:
    """Store an uploaded CSV as a queued import job. Raises ValidationFailed for an empty or non-text file.

    NUL bytes, which no text column stores, are kept as NUL_STAND_IN: their rows are reported."""
    if not content.strip():
        raise ValidationFailed("The file is empty.")
    content = content.replace("\x00", NUL_STAND_IN)
    filename = _printable(filename)
    job = ImportJob(filename=filename[:255] or "upload.csv", content=content, user_id=user_id,
                    status="queued", errors=[])
    db.session.add(job)
    db.session.flush()
    return job

