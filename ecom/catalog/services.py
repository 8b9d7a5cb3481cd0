"""Catalog writes: categories, products, variants, images.

Every function validates with ``ValidationFailed``/``DuplicateError`` before
the database would refuse, flushes, and leaves the commit to its caller.
Variant writes keep ``products.min_price``/``max_price`` in step with the
product's active variants and make sure every variant has an inventory row.
"""

from __future__ import annotations

import json
import re
import unicodedata
from collections.abc import Iterable
from decimal import Decimal, InvalidOperation
from urllib.parse import urlsplit

from sqlalchemy import func, select, update

from ecom.actor import Actor
from ecom.audit.services import record_change
from ecom.catalog.models import Category, Product, ProductImage, Variant
from ecom.db import MONEY, fits_numeric, money
from ecom.errors import DuplicateError, ValidationFailed
from ecom.extensions import db
from ecom.inventory.models import Inventory

SLUG_MAX = {Category: 140, Product: 220}
NAME_MAX = {Category: 120, Product: 200, Variant: 200}
URL_MAX = 500
WEIGHT_PRECISION, WEIGHT_SCALE = 10, 3
ATTRIBUTE_VALUE_TYPES = (str, int, float, bool)


# ---------------------------------------------------------------- slugs

def slugify(text: str) -> str:
    """Lower-case ASCII words joined by hyphens ("Crème Brûlée!" -> "creme-brulee")."""
    ascii_text = unicodedata.normalize("NFKD", text or "").encode("ascii", "ignore").decode("ascii")
    return re.sub(r"[^a-z0-9]+", "-", ascii_text.lower()).strip("-")


def unique_slug(model: type[Category] | type[Product], wanted: str, *, exclude_id: int | None = None) -> str:
    """``wanted`` if no other row of ``model`` has it, else ``wanted-2``, ``wanted-3``, ..."""
    base = (slugify(wanted) or "item")[: SLUG_MAX[model] - 6]
    taken_query = select(model.slug).where(
        (model.slug == base) | model.slug.like(f"{base}-%")
    )
    if exclude_id is not None:
        taken_query = taken_query.where(model.id != exclude_id)
    taken = set(db.session.scalars(taken_query))
    if base not in taken:
        return base
    n = 2
    while f"{base}-{n}" in taken:
        n += 1
    return f"{base}-{n}"


def _checked_slug(model, slug: str | None, name: str, *, exclude_id: int | None) -> str:
    """An explicit slug must be well-formed and free; an empty one is generated from the name."""
    if not (slug or "").strip():
        return unique_slug(model, name, exclude_id=exclude_id)
    slug = slug.strip().lower()
    if slugify(slug) != slug:
        raise ValidationFailed(
            "A slug may only contain lower-case letters, digits and hyphens.",
            {"slug": [f"'{slug}' is not a valid slug."]},
        )
    clash = select(model.id).where(model.slug == slug)
    if exclude_id is not None:
        clash = clash.where(model.id != exclude_id)
    if db.session.scalar(clash) is not None:
        raise DuplicateError(f"The slug '{slug}' is already used.")
    return slug


def _require_name(name: str | None, max_length: int) -> str:
    name = (name or "").strip()
    if not name:
        raise ValidationFailed("A name is required.", {"name": ["This field is required."]})
    if len(name) > max_length:
        raise ValidationFailed(f"A name has at most {max_length} characters.", {"name": ["Too long."]})
    return name


def _price(value, field: str) -> Decimal:
    try:
        amount = money(value if not isinstance(value, float) else str(value))
    except (InvalidOperation, TypeError, ValueError):
        raise ValidationFailed(f"{field} must be a number.", {field: ["Not a valid amount."]}) from None
    if not fits_numeric(amount, precision=MONEY.precision, scale=MONEY.scale):
        raise ValidationFailed(f"{field} must be a finite amount below 10 000 000 000.",
                               {field: ["Not a valid amount."]})
    if amount < 0:
        raise ValidationFailed(f"{field} must not be negative.", {field: ["Must be 0 or more."]})
    return amount


def checked_url(url: str | None, field: str) -> str | None:
    """An image or link URL as stored: http(s) with a host, or a local path (``/media/x.jpg``).

    Empty gives None. Anything else - ``javascript:``, ``data:``, a protocol-relative
    ``//host``, control characters or spaces - raises ValidationFailed: the back office and
    the shop render these into ``src`` and ``href`` attributes.
    """
    url = (url or "").strip()
    if not url:
        return None
    refused = ValidationFailed("An image URL must be an http(s):// address or a path starting with /.",
                               {field: [url[:100]]})
    if len(url) > URL_MAX or any(ch.isspace() or ord(ch) < 0x20 or ord(ch) == 0x7F for ch in url):
        raise refused
    try:
        parts = urlsplit(url)
    except ValueError:
        raise refused from None
    if parts.scheme:
        if parts.scheme.lower() not in ("http", "https") or not parts.netloc:
            raise refused
    elif parts.netloc or not url.startswith("/") or url.startswith(("//", "/\\")):
        raise refused
    return url


# ---------------------------------------------------------------- snapshots for the audit log

def snapshot(obj) -> dict:
    """The column values of a row, for before/after audit records."""
    from sqlalchemy import inspect

    mapper = inspect(obj).mapper
    return {attr.key: getattr(obj, attr.key) for attr in mapper.column_attrs}


def _audit(actor: Actor | None, action: str, obj, before: dict | None) -> None:
    if actor is None:
        return
    after = snapshot(obj) if action != "delete" else None
    record_change(actor, action, obj.__tablename__, obj.id, before, after)


# ---------------------------------------------------------------- categories

def prepare_category(category: Category) -> Category:
    """Normalise a category about to be saved: name required, slug from the name when empty.

    Raises ValidationFailed, DuplicateError (slug taken).
    """
    category.name = _require_name(category.name, NAME_MAX[Category])
    category.image_url = checked_url(category.image_url, "image_url")
    # The row being prepared may be pending and incomplete: no autoflush while checking.
    with db.session.no_autoflush:
        category.slug = _checked_slug(Category, category.slug, category.name, exclude_id=category.id)
        _refuse_ancestry_cycle(category)
    return category


# pg_advisory_xact_lock key serialising moves within the category tree (any fixed number
# no other lock in the app uses).
CATEGORY_TREE_LOCK = 0x0CA7_0001


def _refuse_ancestry_cycle(category: Category) -> None:
    """A category can't sit under itself or under one of its own subcategories.

    Walks up from the new parent. On PostgreSQL the walk holds one transaction-scoped
    advisory lock for the tree's shape, so two concurrent moves (A under B, B under A)
    can't both pass: the second waits for the first to commit, then sees its parent and
    is refused (row locks on the ancestors would deadlock instead). Raises ValidationFailed.
    """
    node = category.parent
    if node is None and category.parent_id is not None:
        node = db.session.get(Category, category.parent_id)
    # The part of the chain not in the database yet (new categories) is walked in memory.
    while node is not None and node.id is None:
        if node is category:
            break
        node = node.parent
    current = node.id if node is not None and node is not category else None
    if current is not None and category.id is not None and db.session.get_bind().dialect.name == "postgresql":
        db.session.execute(select(func.pg_advisory_xact_lock(CATEGORY_TREE_LOCK)))
    seen: set[int] = set()
    while current is not None and current not in seen and current != category.id:
        seen.add(current)
        current = db.session.scalar(select(Category.parent_id).where(Category.id == current))
    if node is category or (current is not None and current == category.id):
        raise ValidationFailed(
            "A category can't be placed under itself or under one of its own subcategories.",
            {"parent": [f"{category.parent or 'That category'} is {category.name} or inside it; "
                        "pick a parent outside it."]})


def create_category(*, name: str, slug: str | None = None, parent: Category | None = None,
                    description: str = "", image_url: str | None = None, display_order: int = 0,
                    actor: Actor | None = None) -> Category:
    """Add a category. Raises ValidationFailed, DuplicateError."""
    category = Category(name=name, slug=slug, parent=parent, description=description or "",
                        image_url=image_url, display_order=display_order)
    prepare_category(category)
    db.session.add(category)
    db.session.flush()
    _audit(actor, "create", category, None)
    return category


def update_category(category: Category, *, actor: Actor | None = None, **fields) -> Category:
    """Change a category's fields. Raises ValidationFailed, DuplicateError."""
    before = snapshot(category)
    for key, value in fields.items():
        setattr(category, key, value)
    prepare_category(category)
    db.session.flush()
    _audit(actor, "update", category, before)
    return category


def delete_category(category: Category, *, actor: Actor | None = None) -> None:
    """Remove a category; its products stay, without a category."""
    before = snapshot(category)
    db.session.delete(category)
    db.session.flush()
    _audit(actor, "delete", category, before)


def category_paths() -> dict[int, list[str]]:
    """Every category's names from its root down to itself (a broken, cyclic ancestry stops
    where it repeats). One statement, for the back office's tree column."""
    rows = {category_id: (name, parent_id)
            for category_id, name, parent_id in db.session.execute(
                select(Category.id, Category.name, Category.parent_id))}
    paths: dict[int, list[str]] = {}
    for category_id in rows:
        names, seen, current = [], set(), category_id
        while current in rows and current not in seen:
            seen.add(current)
            name, parent_id = rows[current]
            names.append(name)
            current = parent_id
        paths[category_id] = names[::-1]
    return paths


def category_tree_order() -> list[int]:
    """Every category id in tree order: each root (by display order, then name) followed by its
    subcategories, depth first; categories caught in a hand-made parent cycle come last."""
    rows = db.session.execute(select(Category.id, Category.parent_id)
                              .order_by(Category.display_order, Category.name, Category.id)).all()
    known = {category_id for category_id, _ in rows}
    children: dict[int | None, list[int]] = {}
    for category_id, parent_id in rows:
        children.setdefault(parent_id if parent_id in known else None, []).append(category_id)
    order: list[int] = []
    placed: set[int] = set()
    stack = list(reversed(children.get(None, [])))
    while stack:
        current = stack.pop()
        if current in placed:
            continue
        order.append(current)
        placed.add(current)
        stack.extend(reversed(children.get(current, [])))
    return order + [category_id for category_id, _ in rows if category_id not in placed]


def get_category_by_slug(slug: str) -> Category | None:
    return db.session.scalar(select(Category).where(Category.slug == slug))


# ---------------------------------------------------------------- variants

def validate_attributes(value) -> dict:
    """A variant's attributes: a JSON object of scalar values ({"size": "M", "colour": "red"}).

    Accepts a dict or its JSON text. Raises ValidationFailed.
    """
    if value in (None, ""):
        return {}
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except json.JSONDecodeError as exc:
            raise ValidationFailed(
                "Attributes must be valid JSON.", {"attributes": [f"Invalid JSON: {exc.msg}."]}
            ) from None
    if not isinstance(value, dict):
        raise ValidationFailed(
            "Attributes must be a JSON object.", {"attributes": ['Use an object like {"size": "M"}.']}
        )
    bad = [k for k, v in value.items() if not isinstance(v, ATTRIBUTE_VALUE_TYPES) or not str(k).strip()]
    if bad:
        raise ValidationFailed(
            "Attribute values must be text, numbers or true/false.",
            {"attributes": [f"Invalid value for: {', '.join(map(str, bad))}."]},
        )
    return {str(k).strip(): v for k, v in value.items()}


def prepare_variant(variant: Variant) -> Variant:
    """Normalise a variant about to be saved: SKU required and unique, price >= 0, attributes an object.

    Raises ValidationFailed, DuplicateError (SKU taken).
    """
    sku = (variant.sku or "").strip()
    if not sku:
        raise ValidationFailed("A SKU is required.", {"sku": ["This field is required."]})
    if len(sku) > 64:
        raise ValidationFailed("A SKU has at most 64 characters.", {"sku": ["Too long."]})
    variant.sku = sku
    variant.name = (variant.name or "").strip() or "Default"
    if len(variant.name) > NAME_MAX[Variant]:
        raise ValidationFailed(f"A variant name has at most {NAME_MAX[Variant]} characters.",
                               {"variant_name": ["Too long."]})
    variant.price = _price(variant.price, "price")
    if variant.weight is not None:
        _check_weight(Decimal(str(variant.weight)))
    variant.attributes = validate_attributes(variant.attributes)
    clash = select(Variant.id).where(Variant.sku == sku)
    if variant.id is not None:
        clash = clash.where(Variant.id != variant.id)
    with db.session.no_autoflush:
        taken = db.session.scalar(clash) is not None
    if taken:
        raise DuplicateError(f"The SKU '{sku}' is already used by another variant.")
    return variant


def _check_weight(weight: Decimal) -> None:
    if not fits_numeric(weight, precision=WEIGHT_PRECISION, scale=WEIGHT_SCALE):
        raise ValidationFailed("Weight must be a finite number below 10 000 000.",
                               {"weight": ["Not a valid weight."]})
    if weight < 0:
        raise ValidationFailed("Weight must not be negative.", {"weight": ["Must be 0 or more."]})


def ensure_variant_inventory(variant: Variant) -> Inventory:
    """The variant's inventory row, created empty if missing (via the inventory service)."""
    from ecom.inventory.services import ensure_inventory

    if variant.id is None:
        db.session.flush()
    return ensure_inventory(variant)


def refresh_price_range(product: Product) -> Product:
    """Recompute the product's min/max price from its active variants (None without any)."""
    if product.id is not None:
        db.session.flush()
        low, high = db.session.execute(
            select(func.min(Variant.price), func.max(Variant.price)).where(
                Variant.product_id == product.id, Variant.is_active.is_(True)
            )
        ).one()
    else:
        prices = [v.price for v in product.variants if v.is_active]
        low, high = (min(prices), max(prices)) if prices else (None, None)
    product.min_price = money(low) if low is not None else None
    product.max_price = money(high) if high is not None else None
    return product


def add_variant(product: Product, *, sku: str, price, name: str = "Default", weight=None,
                attributes=None, is_active: bool = True, actor: Actor | None = None) -> Variant:
    """Add a variant with an (empty) inventory row. Raises ValidationFailed, DuplicateError."""
    variant = Variant(product=product, sku=sku, name=name, price=price, weight=weight,
                      attributes=attributes, is_active=is_active)
    prepare_variant(variant)
    db.session.add(variant)
    db.session.flush()
    ensure_variant_inventory(variant)
    refresh_price_range(product)
    _audit(actor, "create", variant, None)
    return variant


def update_variant(variant: Variant, *, actor: Actor | None = None, **fields) -> Variant:
    """Change a variant's fields. Raises ValidationFailed, DuplicateError."""
    before = snapshot(variant)
    for key, value in fields.items():
        setattr(variant, key, value)
    prepare_variant(variant)
    db.session.flush()
    ensure_variant_inventory(variant)
    refresh_price_range(variant.product)
    _audit(actor, "update", variant, before)
    return variant


def delete_variant(variant: Variant, *, actor: Actor | None = None) -> None:
    """Remove a variant (and its inventory row)."""
    product = variant.product
    before = snapshot(variant)
    db.session.delete(variant)
    db.session.flush()
    db.session.expire(product, ["variants"])
    refresh_price_range(product)
    _audit(actor, "delete", variant, before)


def get_variant_by_sku(sku: str) -> Variant | None:
    return db.session.scalar(select(Variant).where(Variant.sku == sku.strip()))


# ---------------------------------------------------------------- products

def prepare_product(product: Product) -> Product:
    """Normalise a product and its variants about to be saved.

    Name required, slug from the name when empty and unique, base price >= 0,
    every variant valid with unique SKUs (also among themselves) and an
    inventory row, min/max price refreshed. Raises ValidationFailed, DuplicateError.
    """
    product.name = _require_name(product.name, NAME_MAX[Product])
    with db.session.no_autoflush:
        product.slug = _checked_slug(Product, product.slug, product.name, exclude_id=product.id)
    product.base_price = _price(product.base_price, "base_price")
    product.description = product.description or ""
    skus = [(v.sku or "").strip() for v in product.variants]
    duplicates = sorted({s for s in skus if s and skus.count(s) > 1})
    if duplicates:
        raise DuplicateError(f"The SKU '{duplicates[0]}' appears twice in this product.")
    for variant in product.variants:
        prepare_variant(variant)
    for image in product.images:
        image.url = checked_url(image.url, "images")
        if image.url is None:
            raise ValidationFailed("An image needs a URL.", {"images": ["Required."]})
    if product.images and not any(image.is_primary for image in product.images):
        product.images[0].is_primary = True
    return product


def finish_product(product: Product) -> Product:
    """After a product and its variants are flushed: inventory rows and the price range."""
    db.session.flush()
    for variant in product.variants:
        ensure_variant_inventory(variant)
    refresh_price_range(product)
    return product


def create_product(*, name: str, base_price, slug: str | None = None, category: Category | None = None,
                   description: str = "", is_active: bool = True, featured: bool = False,
                   actor: Actor | None = None) -> Product:
    """Add a product (without variants yet). Raises ValidationFailed, DuplicateError."""
    product = Product(name=name, slug=slug, base_price=base_price, category=category,
                      description=description, is_active=is_active, featured=featured)
    prepare_product(product)
    db.session.add(product)
    finish_product(product)
    _audit(actor, "create", product, None)
    return product


def update_product(product: Product, *, actor: Actor | None = None, **fields) -> Product:
    """Change a product's fields. Raises ValidationFailed, DuplicateError."""
    before = snapshot(product)
    for key, value in fields.items():
        setattr(product, key, value)
    prepare_product(product)
    finish_product(product)
    _audit(actor, "update", product, before)
    return product


def delete_product(product: Product, *, actor: Actor | None = None) -> None:
    """Remove a product with its variants, images and reviews."""
    before = snapshot(product)
    db.session.delete(product)
    db.session.flush()
    _audit(actor, "delete", product, before)


def get_product_by_slug(slug: str) -> Product | None:
    return db.session.scalar(select(Product).where(Product.slug == slug))


def set_product_images(product: Product, urls: Iterable[str], *, alt_text: str = "") -> list[ProductImage]:
    """Replace the product's images with ``urls``, the first one primary."""
    urls = [checked_url(u, "images") for u in urls if u and u.strip()]
    if [image.url for image in product.images] == urls:
        return product.images  # unchanged: keep the rows (and their alt texts)
    product.images.clear()
    for index, url in enumerate(urls):
        product.images.append(
            ProductImage(url=url, alt_text=alt_text or product.name, is_primary=index == 0,
                         display_order=index)
        )
    db.session.flush()
    return product.images


def add_product_image(product: Product, *, url: str, alt_text: str = "", is_primary: bool = False,
                      actor: Actor | None = None) -> ProductImage:
    """Add one image; a primary one demotes the previous primary. Raises ValidationFailed."""
    url = checked_url(url, "url")
    if url is None:
        raise ValidationFailed("An image needs a URL.", {"url": ["Required."]})
    if is_primary:
        for image in product.images:
            image.is_primary = False
    image = ProductImage(url=url.strip(), alt_text=alt_text, is_primary=is_primary or not product.images,
                         display_order=len(product.images))
    product.images.append(image)
    db.session.flush()
    _audit(actor, "create", image, None)
    return image


# ---------------------------------------------------------------- bulk actions

def _bulk_set(product_ids: Iterable[int], field: str, value: bool, actor: Actor | None) -> int:
    ids = sorted({int(i) for i in product_ids})
    if not ids:
        return 0
    changing = list(db.session.execute(
        select(Product.id).where(Product.id.in_(ids), getattr(Product, field) != value)
    ).scalars())
    if changing:
        db.session.execute(
            update(Product).where(Product.id.in_(changing)).values({field: value}),
            execution_options={"synchronize_session": "fetch"},
        )
        db.session.flush()
        for product_id in changing:
            if actor is not None:
                record_change(actor, "update", "products", product_id, {field: not value}, {field: value})
    return len(changing)


def set_products_active(product_ids: Iterable[int], active: bool, *, actor: Actor | None = None) -> int:
    """Activate or deactivate many products at once; returns how many changed."""
    return _bulk_set(product_ids, "is_active", active, actor)


def set_products_featured(product_ids: Iterable[int], featured: bool, *, actor: Actor | None = None) -> int:
    """Feature or unfeature many products at once; returns how many changed."""
    return _bulk_set(product_ids, "featured", featured, actor)
