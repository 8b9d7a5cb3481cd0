"""Read side of the catalog for the storefront: only active products are ever visible.

Listing and sorting use the denormalised ``products.min_price``, ``max_price``,
``rating_average`` and ``rating_count`` columns (kept current by the catalog's
write services and by reviews). Every list loads its relations in a fixed
number of statements, whatever the page size.
"""

from __future__ import annotations

import re
from collections import defaultdict
from dataclasses import dataclass, replace
from decimal import Decimal
from difflib import SequenceMatcher
from functools import lru_cache

from sqlalchemy import (
    Integer,
    String,
    and_,
    bindparam,
    case,
    cast,
    exists,
    false,
    func,
    literal_column,
    or_,
    select,
    true,
)
from sqlalchemy.orm import joinedload, selectinload

from ecom.catalog.models import Category, Product, ProductImage, Variant
from ecom.errors import NotFound
from ecom.extensions import db
from ecom.inventory.models import Inventory, StockLocation, available_units

SORTS = ("relevance", "price_asc", "price_desc", "newest", "name", "rating")
MAX_SEARCH_TERMS = 12
# Full-text search finding fewer products than this widens to names that look like the query
# (a typo: "hikng boots"). PostgreSQL: pg_trgm's similarity operators on products.name, which
# its trigram index (migration 0003) serves, at pg_trgm's default thresholds (0.3 whole-name
# similarity, 0.6 word similarity). SQLite: every query word must look like a word of the name.
TYPO_FALLBACK_BELOW = 3
SQLITE_WORD_SIMILARITY = 0.75

FULLTEXT, FUZZY = "fulltext", "fuzzy"
SEARCH_TEXT = "search_text"  # the bound parameter of the search text (PostgreSQL)
LISTING_THUMBNAIL = 200  # px: the thumbnail a product summary links


@dataclass(frozen=True)
class ProductFilters:
    category: str | None = None
    q: str | None = None
    min_price: Decimal | None = None
    max_price: Decimal | None = None
    featured: bool | None = None
    in_stock: bool | None = None
    sort: str = "relevance"
    # (name, accepted values): a product matches when one of its active variants has the
    # attribute at one of the values (compared case-insensitively); several names all apply.
    attributes: tuple[tuple[str, tuple[str, ...]], ...] = ()
    # How ``q`` is matched: FULLTEXT or FUZZY; None lets search_mode() decide.
    search: str | None = None

    def without(self, dimension: str) -> ProductFilters:
        """These filters less one dimension ("category", "price" or "attr.<name>"): facets count
        each dimension's values under every other filter."""
        if dimension == "category":
            return replace(self, category=None)
        if dimension == "price":
            return replace(self, min_price=None, max_price=None)
        name = dimension.removeprefix("attr.")
        return replace(self, attributes=tuple(item for item in self.attributes if item[0] != name))


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


def subcategories(category: Category) -> list[Category]:
    """The category's direct children, in display order."""
    return list(db.session.scalars(
        select(Category).where(Category.parent_id == category.id)
        .order_by(Category.display_order, Category.name)))


# --- products ----------------------------------------------------------------


def lowest_price():
    return func.coalesce(Product.min_price, Product.base_price)


def highest_price():
    return func.coalesce(Product.max_price, Product.base_price)


def _in_stock_criteria(product_id) -> tuple:
    return (
        Variant.product_id == product_id,
        Variant.is_active.is_(True),
        Inventory.variant_id == Variant.id,
        Inventory.has_available,
        StockLocation.id == Inventory.location_id,
        StockLocation.ships,
    )


def in_stock_clause(product_id=Product.id):
    """Some active variant of the product (``product_id``: a column, default products.id) has a
    unit available at a location that ships."""
    return exists().where(*_in_stock_criteria(product_id))


def in_stock_probe(product_id):
    """``in_stock_clause`` as a column for a page of rows: a variant id that makes the product
    in stock, or NULL. A correlated scalar subquery with LIMIT 1 runs per row of the page;
    PostgreSQL may answer an EXISTS in the select list with a hashed subplan instead, which
    reads every variant and inventory row of the catalog to list 24 products."""
    return select(Variant.id).where(*_in_stock_criteria(product_id)).limit(1).scalar_subquery()


# The catalog's tables are read from memory, where an index probe costs about what a
# sequential page does; PostgreSQL's default random_page_cost (4) prices a disk seek. With it,
# category=X&in_stock=true hashed every variant and inventory row of the catalog to test the
# category's 100 products (2.5x the CPU of probing the index for each); the facets statement
# 4x (2 000 products). Set for the filtered list's transaction only, as ops would for the
# whole database (ALTER DATABASE ... SET random_page_cost).
IN_MEMORY_RANDOM_PAGE_COST = "1.1"


def plan_in_memory(connection, **settings: str) -> None:
    """For the rest of the transaction (PostgreSQL): plan as for tables in memory, with
    ``settings`` (planner settings, e.g. jit="off") too; one statement.

    enable_seqscan="off" is for the typo search's list (``FUZZY``): PostgreSQL prices a trigram
    comparison like an integer one, so it compared every name with the text (18 ms of CPU,
    2 000 products) rather than read the trigram and full-text indexes (6 ms). The default
    ("on") is set again by every later call in the transaction."""
    settings = {"random_page_cost": IN_MEMORY_RANDOM_PAGE_COST, "enable_seqscan": "on", **settings}
    calls = ", ".join(f"set_config('{name}', '{value}', true)" for name, value in sorted(settings.items()))
    connection.exec_driver_sql(f"SELECT {calls}")


def is_postgres() -> bool:
    return db.session.get_bind().dialect.name == "postgresql"


def _search_terms(q: str) -> list[str]:
    return re.findall(r"\w+", q.lower())[:MAX_SEARCH_TERMS]


def _search(statement, q: str, mode: str, *, postgres: bool, alike: dict[int, float]):
    """Filter by the search text; returns the statement and a relevance expression.

    FULLTEXT: PostgreSQL full-text search with ranking (every term, stemmed), or on SQLite
    every term somewhere in the name or description. FUZZY: the full-text matches plus the
    products whose name looks like the query (see TYPO_FALLBACK_BELOW); on SQLite ``alike`` holds
    them (``_names_alike``, read beforehand).
    """
    if postgres:
        # products.search_vector is a generated tsvector created by the migration only.
        vector = literal_column("products.search_vector")
        # A named parameter: a built statement serves every search text (statement_key).
        q = bindparam(SEARCH_TEXT, q, type_=String)
        query = func.websearch_to_tsquery(literal_column("'english'::regconfig"), q)
        matches, rank = vector.op("@@")(query), func.ts_rank(vector, query)
        if mode != FUZZY:
            return statement.where(matches), rank
        # name % q: whole-name similarity; name %> q (q <% name, its commutator, written with
        # the column first so that the trigram index can serve it): q is like a part of the name.
        text = q
        looks_like = or_(Product.name.op("%")(text), Product.name.op("%>")(text))
        similarity = func.greatest(func.similarity(Product.name, text),
                                   func.word_similarity(text, Product.name))
        return statement.where(or_(matches, looks_like)), rank + similarity
    terms = _search_terms(q)
    if not terms:
        return statement.where(false()), None
    contained = [or_(Product.name.ilike(f"%{term}%"), Product.description.ilike(f"%{term}%"))
                 for term in terms]
    name_hits = sum(case((Product.name.ilike(f"%{term}%"), 1), else_=0) for term in terms)
    if mode != FUZZY or not alike:
        return statement.where(*contained), name_hits
    score = case(alike, value=Product.id, else_=0.0)
    return statement.where(or_(and_(*contained), Product.id.in_(alike))), name_hits + score


def _names_alike(terms: list[str]) -> dict[int, float]:
    """SQLite's stand-in for trigram similarity: the visible products each of whose query words
    is close (difflib ratio) to some word of the name, with the mean closeness. Reads every
    visible name, which suits SQLite's small development catalogs."""
    found: dict[int, float] = {}
    rows = db.session.execute(select(Product.id, Product.name).where(Product.is_active.is_(True)))
    for product_id, name in rows:
        words = re.findall(r"\w+", name.lower())
        if not words:
            continue
        scores = [max(SequenceMatcher(None, term, word).ratio() for word in words) for term in terms]
        if min(scores) >= SQLITE_WORD_SIMILARITY:
            found[product_id] = sum(scores) / len(scores)
    return found


def attribute_pairs():
    """(variant id, key, value as text) of every variant's attributes: a table-valued function
    joined to variants (implicitly lateral on both databases)."""
    name = "jsonb_each_text" if is_postgres() else "json_each"
    return getattr(func, name)(Variant.attributes).table_valued("key", "value")


def attribute_clause(name: str, values: tuple[str, ...]):
    """Some active variant of the product has attribute ``name`` at one of ``values``, compared
    case-insensitively (a number or true/false as its JSON text)."""
    # variants.attributes ->> name (JSON_EXTRACT on SQLite, cast: a number is compared as text):
    # one hashed semi-join, where a json_each per product cost 15 times as much (10 000 products).
    # Not jsonb containment (@>), which the column's type would allow: it compares exactly, in
    # case and in type ("M" vs "m", 42 vs "42").
    value = cast(Variant.attributes[name].as_string(), String)
    return Product.id.in_(
        select(Variant.product_id).where(Variant.is_active.is_(True),
                                         func.lower(value).in_([v.lower() for v in values])))


def search_mode(filters: ProductFilters) -> str | None:
    """FULLTEXT, or FUZZY when full-text search finds fewer than TYPO_FALLBACK_BELOW products
    under the other filters; None without a search text."""
    if not (filters.q and filters.q.strip()):
        return None
    if filters.search is not None:
        return filters.search
    strict = replace(filters, search=FULLTEXT)
    resolved = resolve(strict)
    key, parameters = statement_key(strict, resolved)
    found = db.session.connection().execute(_fulltext_probe(key, resolved), parameters).scalar() or 0
    return FULLTEXT if found >= TYPO_FALLBACK_BELOW else FUZZY


def list_summaries_searching(filters: ProductFilters, *, page: int, per_page: int
                             ) -> tuple[list[ListedProduct], int, ProductFilters]:
    """``list_summaries`` with the search mode decided as ``search_mode`` decides it, from the
    full-text page itself: its total is what the probe would count, so a search that finds
    enough costs one statement, not two; one that finds fewer than TYPO_FALLBACK_BELOW is
    listed again, FUZZY. Returns the page, the total and the filters with the mode set."""
    if filters.search is not None or not (filters.q and filters.q.strip()):
        filters = replace(filters, search=search_mode(filters))
        return *list_summaries(filters, page=page, per_page=per_page), filters
    strict = replace(filters, search=FULLTEXT)
    listed, total = list_summaries(strict, page=page, per_page=per_page)
    if total >= TYPO_FALLBACK_BELOW:
        return listed, total, strict
    fuzzy = replace(filters, search=FUZZY)
    return *list_summaries(fuzzy, page=page, per_page=per_page), fuzzy


@lru_cache(maxsize=256)
def _fulltext_probe(filters: ProductFilters, resolved: Resolved):
    """How many products (up to TYPO_FALLBACK_BELOW) full-text search finds: built once per
    filters, like the listing (see _summaries_statement)."""
    strict = filtered(filters, resolved)[0].with_only_columns(Product.id)
    return select(func.count()).select_from(strict.limit(TYPO_FALLBACK_BELOW).subquery())


def statement_key(filters: ProductFilters, resolved: Resolved) -> tuple[ProductFilters, dict]:
    """The filters as the key of a built statement, and the parameters the key leaves out: on
    PostgreSQL the search text is a bound parameter (SEARCH_TEXT), so the statement built for
    one search serves all (SQLite's search has a clause per word, so its text stays in)."""
    if resolved.postgres and filters.q and filters.q.strip():
        return replace(filters, q="?"), {SEARCH_TEXT: filters.q.strip()}
    return filters, {}


def _sort_keys(sort: str, relevance) -> list[tuple]:
    """The listing order as (expression, direction) pairs; direction is one of "asc", "desc",
    "desc nulls last". Ends in the id: a stable order across pages."""
    by = {
        "price_asc": [(lowest_price(), "asc")],
        "price_desc": [(highest_price(), "desc")],
        "newest": [(Product.created_at, "desc")],
        "name": [(Product.name, "asc")],
        "rating": [(Product.rating_average, "desc nulls last"), (Product.rating_count, "desc")],
    }.get(sort)
    if by is None:  # relevance: the search rank, else featured first and newest
        by = [(relevance, "desc")] if relevance is not None else []
        by += [(Product.featured, "desc"), (Product.created_at, "desc")]
    return [*by, (Product.id, "desc")]


def _directed(expression, direction: str):
    if direction == "asc":
        return expression.asc()
    if direction == "desc":
        return expression.desc()
    return expression.desc().nulls_last()


def _order(statement, sort: str, relevance):
    return statement.order_by(*[_directed(expression, direction)
                                for expression, direction in _sort_keys(sort, relevance)])


def product_listing(filters: ProductFilters):
    """The select of visible products matching ``filters``, sorted."""
    statement, relevance = filtered_products(filters)
    return _order(statement, filters.sort, relevance)


@dataclass(frozen=True)
class Resolved:
    """What a listing's SQL depends on besides the filters, read from the database first: so
    that building the statement reads nothing, and a built statement can be reused for the
    same filters and the same resolved data."""

    postgres: bool
    category_ids: tuple[int, ...] | None = None  # the category and its descendants; () unknown
    alike: tuple[tuple[int, float], ...] = ()  # SQLite's fuzzy search: (product id, closeness)


def resolve(filters: ProductFilters) -> Resolved:
    """What the filters' SQL depends on, read from the database (see Resolved)."""
    postgres = is_postgres()
    category_ids = None
    if filters.category:
        # The whole tree in one Core statement (categories are few): the slug's id, its descendants.
        tree = db.session.connection().execute(select(Category.id, Category.parent_id, Category.slug)).all()
        found = next((row.id for row in tree if row.slug == filters.category), None)
        children: dict[int | None, list[int]] = defaultdict(list)
        for row in tree:
            children[row.parent_id].append(row.id)
        category_ids = tuple(sorted(_descendants(found, children))) if found is not None else ()
    alike: tuple[tuple[int, float], ...] = ()
    if not postgres and filters.search == FUZZY and filters.q and filters.q.strip():
        terms = _search_terms(filters.q.strip())
        alike = tuple(sorted(_names_alike(terms).items())) if terms else ()
    return Resolved(postgres, category_ids, alike)


def filtered_products(filters: ProductFilters):
    """The unordered select of visible products matching ``filters``, and the search relevance."""
    return filtered(filters, resolve(filters))


def filtered(filters: ProductFilters, resolved: Resolved):
    """``filtered_products`` from what ``resolve`` read: builds, reads nothing."""
    statement = select(Product).where(Product.is_active.is_(True))
    if resolved.category_ids is not None:
        statement = statement.where(category_clause(resolved))
    relevance = None
    if filters.q and filters.q.strip():
        statement, relevance = _search(statement, filters.q.strip(), filters.search or FULLTEXT,
                                       postgres=resolved.postgres, alike=dict(resolved.alike))
    statement = statement.where(*price_clauses(filters))
    if filters.featured is not None:
        statement = statement.where(Product.featured.is_(filters.featured))
    if filters.in_stock is True:
        statement = statement.where(in_stock_clause())
    elif filters.in_stock is False:
        statement = statement.where(~in_stock_clause())
    for name, values in filters.attributes:
        statement = statement.where(attribute_clause(name, values))
    return statement, relevance


def category_clause(resolved: Resolved):
    """The product is in the filtered category or below it (``resolved.category_ids`` set)."""
    return Product.category_id.in_(resolved.category_ids) if resolved.category_ids else false()


def price_clauses(filters: ProductFilters) -> list:
    """The price range filter: the product's lowest price within it."""
    clauses = []
    if filters.min_price is not None:
        clauses.append(lowest_price() >= filters.min_price)
    if filters.max_price is not None:
        clauses.append(lowest_price() <= filters.max_price)
    return clauses


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
            Inventory.has_available,
            StockLocation.ships,
        )
    )) if products else set()
    for product in products:
        product.__dict__[_IN_STOCK] = product.id in stocked
    return list(products), total


@dataclass(frozen=True, slots=True)
class ListedImage:
    """A product's primary image as a listing shows it: the fields ``ecom.catalog.images``'
    URL helpers read, without an ORM object."""

    url: str
    alt_text: str | None
    storage_key: str | None
    thumbnails: dict  # the LISTING_THUMBNAIL size's key only, when made


@dataclass(frozen=True, slots=True)
class ListedProduct:
    """What a product summary shows, read with Core (see ``list_summaries``)."""

    id: int
    slug: str
    name: str
    base_price: Decimal
    low_price: Decimal
    high_price: Decimal
    featured: bool
    rating_average: Decimal | None
    rating_count: int
    category: tuple[str, str] | None  # (slug, name)
    image: ListedImage | None
    in_stock: bool


def first_image_id(product_id):
    """The id of the image a summary shows (the primary one, else the first in display order)
    of ``product_id`` (a column), as a correlated scalar subquery; ``primary_image`` is the
    same rule over loaded images."""
    image = ProductImage.__table__.alias("candidate")  # the query it is used in joins product_images
    return (select(image.c.id).where(image.c.product_id == product_id)
            .order_by(image.c.is_primary.desc(), image.c.display_order, image.c.id)
            .limit(1).scalar_subquery())


def summaries_statement(filters: ProductFilters, *, page: int, per_page: int):
    """The statement ``list_summaries`` runs and its page parameters."""
    resolved = resolve(filters)
    key, parameters = statement_key(filters, resolved)
    return (_summaries_statement(key, resolved),
            {**parameters, "page_limit": per_page, "page_offset": (page - 1) * per_page})


# Building the listing's SELECT took 4 of its 9 ms of CPU per request (2 000-product bench,
# PROFILE in docs/v2/issue-17-catalog.md); built once per filters (the page is a bound
# parameter), it is reused by every page and every later request with the same filters. The
# key holds everything the SQL depends on (the filters and what resolve read), so a reused
# statement is the one that would be built; bounded, so distinct searches cannot grow it.
@lru_cache(maxsize=256)
def _summaries_statement(filters: ProductFilters, resolved: Resolved):
    """One SELECT for a listing page: the page's products (filtered, sorted, limited) in a
    subquery, with the total count of matches, then per row its category, primary image and
    in-stock flag. Rows come in page order.
    Bound parameters: ``page_limit``, ``page_offset``."""
    matching, relevance = filtered(filters, resolved)
    keys = _sort_keys(filters.sort, relevance)
    if replace(filters, sort="relevance") == ProductFilters():
        # Every visible product: the page walks the listing index and stops after the page;
        # the total is an index-only count.
        total = select(func.count()).select_from(matching.with_only_columns(Product.id).subquery())
        total_column = total.scalar_subquery()
    else:
        # A filter (search, attributes, stock...) has to find every match to sort them anyway:
        # counted in the same pass (a window over the matches), not by evaluating it twice.
        total_column = func.count().over()
    page_rows = (
        matching.with_only_columns(
            Product.id, Product.slug, Product.name, Product.base_price, Product.category_id,
            lowest_price().label("low_price"), highest_price().label("high_price"), Product.featured,
            Product.rating_average, Product.rating_count, total_column.label("total"),
            *[expression.label(f"sort_{n}") for n, (expression, _) in enumerate(keys)])
        .order_by(*[_directed(expression, direction) for expression, direction in keys])
        .limit(bindparam("page_limit", type_=Integer)).offset(bindparam("page_offset", type_=Integer))
        .subquery("page")
    )
    image = _page_image(page_rows.c.id, postgres=resolved.postgres)
    return (
        select(page_rows.c.id, page_rows.c.slug, page_rows.c.name, page_rows.c.base_price,
               page_rows.c.low_price, page_rows.c.high_price, page_rows.c.featured,
               page_rows.c.rating_average, page_rows.c.rating_count,
               Category.slug.label("category_slug"), Category.name.label("category_name"),
               image.c.url.label("image_url"), image.c.alt_text.label("image_alt_text"),
               image.c.storage_key.label("image_storage_key"),
               image.c.thumbnail.label("image_thumbnail"),
               in_stock_probe(page_rows.c.id).label("in_stock"), page_rows.c.total)
        .select_from(page_rows)
        .outerjoin(Category, Category.id == page_rows.c.category_id)
        .outerjoin(image, true() if resolved.postgres else image.c.product_id == page_rows.c.id)
        .order_by(*[_directed(page_rows.c[f"sort_{n}"], direction) for n, (_, direction) in enumerate(keys)])
    )


def _page_image(product_id, *, postgres: bool):
    """The summary's image of each page row (``product_id``: the page's id column), to join.

    PostgreSQL: a LATERAL subquery, one index probe per row (a plain join on a correlated
    subquery let it hash every image of the catalog). SQLite has no LATERAL; its nested-loop
    join over ``first_image_id`` probes per row anyway."""
    # Only the listing's thumbnail key, as text: decoding every image's whole JSON cost more.
    columns = (ProductImage.product_id, ProductImage.url, ProductImage.alt_text, ProductImage.storage_key,
               ProductImage.thumbnails[str(LISTING_THUMBNAIL)].as_string().label("thumbnail"))
    if postgres:
        return (select(*columns).where(ProductImage.product_id == product_id)
                .order_by(ProductImage.is_primary.desc(), ProductImage.display_order, ProductImage.id)
                .limit(1).lateral("image"))
    return (select(*columns).where(ProductImage.id == first_image_id(ProductImage.product_id))
            .subquery("image"))


def list_summaries(filters: ProductFilters, *, page: int, per_page: int) -> tuple[list[ListedProduct], int]:
    """One page of visible products as summaries, and the total count: the storefront list's
    path. One statement through Core (no ORM objects, no session identity map); a second one
    only to count when the page is past the end. ``list_products`` is the ORM form of the
    same page (same filters, order and stock rule)."""
    connection = db.session.connection()
    statement, parameters = summaries_statement(filters, page=page, per_page=per_page)
    if replace(filters, sort="relevance", search=None) != ProductFilters() and is_postgres():
        # psycopg prepares a statement run 5 times, and PostgreSQL then may plan it once for
        # any parameters: for attr.size=Small&in_stock=true that generic plan cost 154 ms of
        # PostgreSQL CPU against 31 ms planned for the values (2 000 products). A filtered
        # list is planned for its values; the plain list keeps the prepared plan.
        plan_in_memory(connection, plan_cache_mode="force_custom_plan",
                       enable_seqscan="off" if filters.search == FUZZY else "on")
    rows = connection.execute(statement, parameters).all()
    if not rows and page == 1:
        return [], 0  # nothing on the first page: nothing at all
    if not rows:
        matching, _ = filtered_products(filters)
        total = connection.execute(
            select(func.count()).select_from(matching.with_only_columns(Product.id).subquery())).scalar()
        return [], total or 0
    thumbnail_size = str(LISTING_THUMBNAIL)
    listed = [  # rows unpacked as tuples, in the select's column order: attribute access cost more
        ListedProduct(
            id=id_, slug=slug, name=name, base_price=base_price, low_price=low, high_price=high,
            featured=bool(featured), rating_average=rating_average, rating_count=rating_count,
            category=(category_slug, category_name) if category_slug is not None else None,
            image=ListedImage(image_url, image_alt_text, image_storage_key,
                              {thumbnail_size: thumbnail} if thumbnail else {})
            if image_url is not None else None,
            in_stock=in_stock is not None,
        )
        for (id_, slug, name, base_price, low, high, featured, rating_average, rating_count, category_slug,
             category_name, image_url, image_alt_text, image_storage_key, thumbnail, in_stock, _total) in rows
    ]
    return listed, rows[0].total


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
