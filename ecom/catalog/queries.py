"""Read side of the catalog for the storefront: only active products are ever visible.

Listing and sorting use the denormalised ``products.min_price``, ``max_price``,
``rating_average`` and ``rating_count`` columns (kept current by the catalog's
write services and by reviews). Every list loads its relations in a fixed
number of statements, whatever the page size.
"""

from __future__ import annotations

import re
from collections import defaultdict
from dataclasses import dataclass
from decimal import Decimal

from sqlalchemy import case, exists, false, func, literal_column, or_, select
from sqlalchemy.orm import joinedload, selectinload

from ecom.catalog.models import Category, Product, Variant
from ecom.errors import NotFound
from ecom.extensions import db
from ecom.inventory.models import Inventory, StockLocation, available_units

SORTS = ("relevance", "price_asc", "price_desc", "newest", "name", "rating")
MAX_SEARCH_TERMS = 12


@dataclass(frozen=True)
class ProductFilters:
    category: str | None = None
    q: str | None = None
    min_price: Decimal | None = None
    max_price: Decimal | None = None
    featured: bool | None = None
    in_stock: bool | None = None
    sort: str = "relevance"


# --- categories --------------------------------------------------------------


def _children_by_parent() -> dict[int | None, list[int]]:
    children: dict[int | None, list[int]] = defaultdict(list)
    for category_id, parent_id in db.session.execute(select(Category.id, Category.parent_id)):
        children[parent_id].append(category_id)
    return children


def _descendants(category_id: int, children: dict[int | None, list[int]]) -> set[int]:
    found, stack = set(), [category_id]
    while stack:  # iterative, and the seen-set stops a corrupt parent cycle
        current = stack.pop()
        if current in found:
            continue
        found.add(current)
        stack.extend(children.get(current, []))
    return found


def category_ids_with_descendants(category: Category) -> set[int]:
    """The category's id and those of all its subcategories, at any depth."""
    return _descendants(category.id, _children_by_parent())


def _active_counts() -> dict[int, int]:
    rows = db.session.execute(
        select(Product.category_id, func.count(Product.id))
        .where(Product.is_active.is_(True), Product.category_id.is_not(None))
        .group_by(Product.category_id)
    )
    return dict(rows.all())


def list_categories() -> list[tuple[Category, int]]:
    """Every category with its number of active products, subcategories included."""
    categories = db.session.scalars(select(Category).order_by(Category.display_order, Category.name)).all()
    children, counts = _children_by_parent(), _active_counts()
    return [
        (category, sum(counts.get(i, 0) for i in _descendants(category.id, children)))
        for category in categories
    ]


def get_category(slug: str) -> tuple[Category, int]:
    """A category and its active product count. Raises NotFound."""
    category = db.session.scalar(select(Category).where(Category.slug == slug))
    if category is None:
        raise NotFound("Category not found.")
    counts = _active_counts()
    return category, sum(counts.get(i, 0) for i in category_ids_with_descendants(category))


# --- products ----------------------------------------------------------------


def lowest_price():
    return func.coalesce(Product.min_price, Product.base_price)


def highest_price():
    return func.coalesce(Product.max_price, Product.base_price)


def in_stock_clause():
    """Some active variant of the product has a unit available at a location that ships."""
    return exists().where(
        Variant.product_id == Product.id,
        Variant.is_active.is_(True),
        Inventory.variant_id == Variant.id,
        Inventory.available > 0,
        StockLocation.id == Inventory.location_id,
        StockLocation.ships,
    )


def _is_postgres() -> bool:
    return db.session.get_bind().dialect.name == "postgresql"


def _search(statement, q: str):
    """Filter by the search text; returns the statement and a relevance expression."""
    if _is_postgres():
        # products.search_vector is a generated tsvector created by the migration only.
        vector = literal_column("products.search_vector")
        query = func.websearch_to_tsquery(literal_column("'english'::regconfig"), q)
        return statement.where(vector.op("@@")(query)), func.ts_rank(vector, query)
    terms = re.findall(r"\w+", q.lower())[:MAX_SEARCH_TERMS]
    if not terms:
        return statement.where(false()), None
    for term in terms:
        pattern = f"%{term}%"
        statement = statement.where(or_(Product.name.ilike(pattern), Product.description.ilike(pattern)))
    name_hits = sum(case((Product.name.ilike(f"%{term}%"), 1), else_=0) for term in terms)
    return statement, name_hits


def _order(statement, sort: str, relevance):
    by = {
        "price_asc": [lowest_price().asc()],
        "price_desc": [highest_price().desc()],
        "newest": [Product.created_at.desc()],
        "name": [Product.name.asc()],
        "rating": [Product.rating_average.desc().nulls_last(), Product.rating_count.desc()],
    }.get(sort)
    if by is None:  # relevance: the search rank, else featured first and newest
        by = [relevance.desc()] if relevance is not None else []
        by += [Product.featured.desc(), Product.created_at.desc()]
    return statement.order_by(*by, Product.id.desc())  # id: a stable order across pages


def product_listing(filters: ProductFilters):
    """The select of visible products matching ``filters``, sorted."""
    statement = select(Product).where(Product.is_active.is_(True))
    if filters.category:
        category = db.session.scalar(select(Category).where(Category.slug == filters.category))
        if category is None:
            statement = statement.where(false())
        else:
            statement = statement.where(Product.category_id.in_(category_ids_with_descendants(category)))
    relevance = None
    if filters.q and filters.q.strip():
        statement, relevance = _search(statement, filters.q.strip())
    if filters.min_price is not None:
        statement = statement.where(lowest_price() >= filters.min_price)
    if filters.max_price is not None:
        statement = statement.where(lowest_price() <= filters.max_price)
    if filters.featured is not None:
        statement = statement.where(Product.featured.is_(filters.featured))
    if filters.in_stock is True:
        statement = statement.where(in_stock_clause())
    elif filters.in_stock is False:
        statement = statement.where(~in_stock_clause())
    return _order(statement, filters.sort, relevance)


def with_listing_relations(statement):
    """Load what a product summary shows in a fixed number of statements."""
    return statement.options(
        selectinload(Product.category),
        selectinload(Product.images),
        selectinload(Product.variants).selectinload(Variant.inventories).joinedload(Inventory.location),
    )


def with_summary_relations(statement):
    """Load what a product summary shows, stock aside, in a fixed number of statements."""
    return statement.options(selectinload(Product.category), selectinload(Product.images))


def list_products(filters: ProductFilters, *, page: int, per_page: int) -> tuple[list[Product], int]:
    """One page of visible products and the total count.

    Whether each product is in stock comes from one statement over the page's
    ids, rather than from loading every variant and inventory row of the page
    (bench/catalog_bench.py measured about half the CPU time per request).
    """
    statement = product_listing(filters)
    total = db.session.scalar(select(func.count()).select_from(statement.order_by(None).subquery())) or 0
    products = db.session.scalars(
        with_summary_relations(statement).limit(per_page).offset((page - 1) * per_page)
    ).all()
    stocked = set(db.session.scalars(
        select(Variant.product_id).distinct().join(Inventory, Inventory.variant_id == Variant.id)
        .join(StockLocation, StockLocation.id == Inventory.location_id).where(
            Variant.product_id.in_([product.id for product in products]),
            Variant.is_active.is_(True),
            Inventory.available > 0,
            StockLocation.ships,
        )
    )) if products else set()
    for product in products:
        product.__dict__[_IN_STOCK] = product.id in stocked
    return list(products), total


def get_product(slug: str) -> Product:
    """A visible product with images, variants and stock. Raises NotFound (also when inactive).

    Three statements: the product with its category, its images, its variants with
    their inventory rows (one per location) and those rows' locations joined.
    """
    product = db.session.scalar(
        select(Product)
        .where(Product.slug == slug, Product.is_active.is_(True))
        .options(
            joinedload(Product.category),
            selectinload(Product.images),
            selectinload(Product.variants).joinedload(Variant.inventories).joinedload(Inventory.location),
        )
    )
    if product is None:
        raise NotFound("Product not found.")
    return product


def get_visible_product(slug: str) -> Product:
    """A visible product without its relations. Raises NotFound."""
    product = db.session.scalar(select(Product).where(Product.slug == slug, Product.is_active.is_(True)))
    if product is None:
        raise NotFound("Product not found.")
    return product


# --- shapes the storefront shows ---------------------------------------------


def active_variants(product: Product) -> list[Variant]:
    return [variant for variant in product.variants if variant.is_active]


_IN_STOCK = "_listing_in_stock"  # set by list_products on the products of its page


def product_in_stock(product: Product) -> bool:
    known = product.__dict__.get(_IN_STOCK)
    if known is not None and "variants" not in product.__dict__:
        return known
    return any(available_units(variant) > 0 for variant in active_variants(product))


def primary_image(product: Product):
    images = product.images
    return next((image for image in images if image.is_primary), images[0] if images else None)


def price_range(product: Product) -> tuple[Decimal, Decimal]:
    low = product.min_price if product.min_price is not None else product.base_price
    high = product.max_price if product.max_price is not None else product.base_price
    return low, high
