"""Finding one's way around the catalog: the category tree, facets of a product listing,
search suggestions. Read-only, visible (active) products only, like ``queries``.

Facets count each dimension under every *other* filter of the listing (the way Shopify,
Algolia and Elasticsearch's post_filter do): with ``attr.colour=red`` the colour facet still
shows how many products are blue, so a shopper can widen the choice, while the category,
price and size facets count red products only. Counts are of products, not variants.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from decimal import Decimal

from sqlalchemy import String, case, cast, func, literal, or_, select, text, true

from ecom.catalog import queries
from ecom.catalog.models import Category, Product, Variant
from ecom.extensions import db

# Price facet buckets by a product's lowest price: [0, 25), [25, 50), ... [500, no upper end).
PRICE_EDGES = (Decimal(0), Decimal(25), Decimal(50), Decimal(100), Decimal(200), Decimal(500))
MAX_FACET_VALUES = 50  # per attribute, the most frequent first
MAX_SUGGESTIONS = 20
# A half-typed word resembles the start of a name less than a whole one does: below pg_trgm's
# default word-similarity threshold (0.6), "hikng" is 0.5 like "Hiking Boots".
SUGGEST_SIMILARITY = 0.4


# --- the category tree ----------------------------------------------------------------------


@dataclass
class CategoryNode:
    category: Category
    product_count: int
    children: list[CategoryNode] = field(default_factory=list)


def category_tree() -> list[CategoryNode]:
    """Every category as a tree: the roots (no parent) in display order, each with its
    children, nested to any depth; product counts include subcategories. A category whose
    ancestry is broken (a parent cycle the database was given by hand) is shown as a root."""
    listed = queries.list_categories()
    nodes = {category.id: CategoryNode(category, count) for category, count in listed}
    children = children_of([category for category, _ in listed])
    roots: list[CategoryNode] = []
    placed: set[int] = set()

    def attach(root: CategoryNode) -> None:
        roots.append(root)
        placed.add(root.category.id)
        stack = [root]
        while stack:
            current = stack.pop()
            current.children = [nodes[c.id] for c in children.get(current.category.id, [])
                                if c.id not in placed]
            placed.update(child.category.id for child in current.children)
            stack.extend(current.children)

    for category, _ in listed:
        if category.parent_id is None or category.parent_id not in nodes:
            attach(nodes[category.id])
    for category, _ in listed:  # unreachable from every root: a parent cycle
        if category.id not in placed:
            attach(nodes[category.id])
    return roots


def children_of(categories: list[Category]) -> dict[int, list[Category]]:
    """Each category's direct children, in the given (display) order."""
    children: dict[int, list[Category]] = {}
    for category in categories:
        if category.parent_id is not None:
            children.setdefault(category.parent_id, []).append(category)
    return children


# --- facets ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class PriceBucket:
    min: Decimal
    max: Decimal | None  # None: no upper end
    count: int


@dataclass(frozen=True)
class Facets:
    category: list[tuple[str, str, int]]  # (slug, name, count)
    price: list[PriceBucket]
    attributes: dict[str, list[tuple[str, int]]]  # name -> [(value, count)]


def _matching_ids(filters: queries.ProductFilters):
    statement, _ = queries.filtered_products(filters)
    return statement.with_only_columns(Product.id).order_by(None).subquery()


def product_facets(filters: queries.ProductFilters) -> Facets:
    """The facets of the products ``filters`` select (each dimension under the others).

    ``filters.search`` should be resolved (queries.search_mode) so that every count uses
    the same search as the listing. A fixed number of statements, plus one per attribute
    filter."""
    if queries.is_postgres():
        # PostgreSQL guesses 100 rows per json_each_text call, so the attribute count looks
        # costly enough to compile: JIT then took 270 of its 410 ms (10 000 products x 3
        # variants). For the rest of this (read-only) transaction only.
        db.session.execute(text("SET LOCAL jit = off"))
    return Facets(category=_category_counts(filters.without("category")),
                  price=_price_counts(filters.without("price")),
                  attributes=_attribute_counts(filters))


def _category_counts(filters: queries.ProductFilters) -> list[tuple[str, str, int]]:
    ids = _matching_ids(filters)
    rows = db.session.execute(
        select(Category.slug, Category.name, func.count(Product.id))
        .join(Product, Product.category_id == Category.id)
        .where(Product.id.in_(select(ids.c.id)))
        .group_by(Category.id, Category.slug, Category.name)
        .order_by(func.count(Product.id).desc(), Category.name)
    )
    return [(slug, name, count) for slug, name, count in rows]


def _price_counts(filters: queries.ProductFilters) -> list[PriceBucket]:
    ids = _matching_ids(filters)
    price = queries.lowest_price()
    bucket = case(*[(price >= edge, index) for index, edge in reversed(list(enumerate(PRICE_EDGES)))],
                  else_=0)
    rows = db.session.execute(
        select(bucket.label("bucket"), func.count(Product.id))
        .where(Product.id.in_(select(ids.c.id)))
        .group_by("bucket")
    ).all()
    counts = dict(rows)
    return [PriceBucket(edge, PRICE_EDGES[index + 1] if index + 1 < len(PRICE_EDGES) else None, counts[index])
            for index, edge in enumerate(PRICE_EDGES) if counts.get(index)]


def _attribute_rows(filters: queries.ProductFilters, name: str | None = None):
    ids = _matching_ids(filters)
    pairs = queries.attribute_pairs()
    value = cast(pairs.c.value, String)
    statement = (
        select(pairs.c.key, value, func.count(func.distinct(Variant.product_id)))
        .select_from(Variant)
        .join(pairs, true())
        .where(Variant.is_active.is_(True), Variant.product_id.in_(select(ids.c.id)),
               value.is_not(None))
        .group_by(pairs.c.key, value)
    )
    if name is not None:
        statement = statement.where(pairs.c.key == name)
    return db.session.execute(statement).all()


def _attribute_counts(filters: queries.ProductFilters) -> dict[str, list[tuple[str, int]]]:
    filtered = {name for name, _ in filters.attributes}
    rows = [row for row in _attribute_rows(filters) if row[0] not in filtered]
    for name in sorted(filtered):
        rows += _attribute_rows(filters.without(f"attr.{name}"), name)
    found: dict[str, list[tuple[str, int]]] = {}
    for key, value, count in rows:
        found.setdefault(key, []).append((value, count))
    return {key: sorted(values, key=lambda pair: (-pair[1], pair[0]))[:MAX_FACET_VALUES]
            for key, values in sorted(found.items())}


# --- search suggestions ---------------------------------------------------------------------


@dataclass(frozen=True)
class Suggestion:
    text: str
    kind: str  # "category" or "product"
    slug: str


def _like_escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def suggest(q: str, *, limit: int = 8) -> list[Suggestion]:
    """Completions of what a shopper is typing: categories, then visible products, whose name
    starts with ``q`` or has a word starting with it (case-insensitive), shortest first. On
    PostgreSQL, when nothing starts so, names that look like ``q`` (a typo) by trigram
    similarity. An empty or blank ``q`` suggests nothing."""
    q = re.sub(r"\s+", " ", q).strip()
    if not q:
        return []
    limit = max(1, min(limit, MAX_SUGGESTIONS))
    prefix = _like_escape(q)
    suggestions: list[Suggestion] = []
    sources = ((Category, "category", ()), (Product, "product", (Product.is_active.is_(True),)))
    for model, kind, extra in sources:
        starts = or_(model.name.ilike(f"{prefix}%", escape="\\"),
                     model.name.ilike(f"% {prefix}%", escape="\\"))
        rows = db.session.execute(
            select(model.name, model.slug).where(starts, *extra)
            .order_by(case((model.name.ilike(f"{prefix}%", escape="\\"), 0), else_=1),
                      func.length(model.name), model.name)
            .limit(limit - len(suggestions))
        ).all()
        suggestions += [Suggestion(name, kind, slug) for name, slug in rows]
        if len(suggestions) >= limit:
            return suggestions
    if not suggestions and queries.is_postgres():
        typed = literal(q, String)
        closeness = func.word_similarity(typed, Product.name)
        rows = db.session.execute(
            select(Product.name, Product.slug)
            .where(Product.is_active.is_(True), closeness >= SUGGEST_SIMILARITY)
            .order_by(closeness.desc(), Product.name)
            .limit(limit)
        ).all()
        suggestions += [Suggestion(name, "product", slug) for name, slug in rows]
    return suggestions
