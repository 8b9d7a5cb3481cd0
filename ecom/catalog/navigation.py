"""Finding one's way around the catalog: the category tree, facets of a product listing,
search suggestions. Read-only, visible (active) products only, like ``queries``.

Facets count each dimension under every *other* filter of the listing (the way Shopify,
Algolia and Elasticsearch's post_filter do): with ``attr.colour=red`` the colour facet still
shows how many products are blue, so a shopper can widen the choice, while the category,
price and size facets count red products only. Counts are of products, not variants.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace
from decimal import Decimal
from functools import lru_cache

from sqlalchemy import String, and_, case, cast, func, literal, null, or_, select, true, union_all

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


def product_facets(filters: queries.ProductFilters) -> Facets:
    """The facets of the products ``filters`` select (each dimension under the others).

    ``filters.search`` should be resolved (queries.search_mode) so that every count uses
    the same search as the listing. One statement (see _facets_statement)."""
    connection = db.session.connection()
    if queries.is_postgres():
        # PostgreSQL guesses 100 rows per jsonb_each_text call, so the attribute count looks
        # costly enough to compile: JIT then took 270 of its 410 ms (10 000 products x 3
        # variants). For the rest of this (read-only) transaction only.
        queries.plan_in_memory(connection, jit="off")
    resolved = queries.resolve(filters)
    key, parameters = queries.statement_key(filters, resolved)
    rows = connection.execute(_facets_statement(key, resolved), parameters).all()
    categories, buckets, values = [], {}, {}
    for dimension, key_text, value, count, rank in rows:
        if dimension == CATEGORY:
            categories.append((rank, key_text, value, count))
        elif dimension == PRICE:
            buckets[int(key_text)] = count
        else:
            values.setdefault(key_text, []).append((value, count))
    return Facets(
        category=[(slug, name, count) for _, slug, name, count in sorted(categories)],
        price=[PriceBucket(edge, PRICE_EDGES[index + 1] if index + 1 < len(PRICE_EDGES) else None,
                           buckets[index])
               for index, edge in enumerate(PRICE_EDGES) if buckets.get(index)],
        attributes={name: sorted(found, key=lambda pair: (-pair[1], pair[0]))[:MAX_FACET_VALUES]
                    for name, found in sorted(values.items())},
    )


CATEGORY, PRICE, ATTRIBUTE = "category", "price", "attribute"


# Built once per filters and resolved data, like the listing's statement
# (queries._summaries_statement): on PostgreSQL the search text is a bound parameter.
@lru_cache(maxsize=256)
def _facets_statement(filters: queries.ProductFilters, resolved: queries.Resolved):
    """Every facet count in one statement. The products matching every filter but category,
    price and attributes are found once (the ``matching`` CTE), each with a flag per filter of
    those dimensions; each dimension then counts the rows whose flags of the *other*
    dimensions hold. (It was one statement per dimension, each finding the matching products
    again: the in_stock filter three times over the catalog.)

    Rows: (dimension, key, value, count, rank). Category: slug, name, products, and the rank
    of (count desc, name) in the database's collation; price: the bucket's index; attribute:
    name, value, products with an active variant having it."""
    others = replace(filters, category=None, min_price=None, max_price=None, attributes=())
    statement, _ = queries.filtered(others, replace(resolved, category_ids=None))
    in_category = queries.category_clause(resolved) if resolved.category_ids is not None else true()
    in_price = and_(true(), *queries.price_clauses(filters))
    price = queries.lowest_price()
    bucket = case(*[(price >= edge, index) for index, edge in reversed(list(enumerate(PRICE_EDGES)))],
                  else_=0)
    names = [name for name, _ in filters.attributes]
    matching = statement.with_only_columns(
        Product.id, Product.category_id, bucket.label("bucket"), in_category.label("in_category"),
        in_price.label("in_price"),
        *[queries.attribute_clause(name, values).label(f"attr_{n}")
          for n, (name, values) in enumerate(filters.attributes)],
    ).cte("matching")
    every_attribute = [matching.c[f"attr_{n}"] for n in range(len(names))]
    count = func.count()
    by_category = (
        select(literal(CATEGORY, String), Category.slug, Category.name, count,
               func.row_number().over(order_by=(count.desc(), Category.name)))
        .select_from(matching).join(Category, Category.id == matching.c.category_id)
        .where(matching.c.in_price, *every_attribute)
        .group_by(Category.id, Category.slug, Category.name)
    )
    by_price = (
        select(literal(PRICE, String), cast(matching.c.bucket, String), null(), count, literal(0))
        .where(matching.c.in_category, *every_attribute)
        .group_by(matching.c.bucket)
    )
    return union_all(by_category, by_price, _attribute_values(matching, names, None),
                     *[_attribute_values(matching, names, name) for name in names])


def _attribute_values(matching, names: list[str], name: str | None):
    """Attribute facet rows: with ``name``, that filtered attribute's values counted under every
    filter but its own; without, every attribute not filtered, under all the filters."""
    pairs = queries.attribute_pairs()
    value = cast(pairs.c.value, String)
    flags = [matching.c[f"attr_{n}"] for n, other in enumerate(names) if other != name]
    statement = (
        select(literal(ATTRIBUTE, String), pairs.c.key, value, func.count(func.distinct(Variant.product_id)),
               literal(0))
        .select_from(matching).join(Variant, Variant.product_id == matching.c.id).join(pairs, true())
        .where(Variant.is_active.is_(True), value.is_not(None), matching.c.in_category, matching.c.in_price,
               *flags)
        .group_by(pairs.c.key, value)
    )
    if name is not None:
        return statement.where(pairs.c.key == name)
    return statement.where(pairs.c.key.not_in(names)) if names else statement


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
