"""Categories, products and reviews (read-only except posting a review)."""

from __future__ import annotations

import re
from collections.abc import Callable
from decimal import Decimal
from typing import Annotated, Any, Literal

from flask import current_app, jsonify, request
from pydantic import Field, StringConstraints, model_validator
from pydantic.json_schema import SkipJsonSchema

from ecom.catalog import images, navigation, queries, reviews
from ecom.catalog.models import Category, Product, Review
from ecom.inventory.models import available_units
from ecom.inventory.services import pickup_stock
from storefront_api import api
from storefront_api.caching import cached_page
from storefront_api.openapi import endpoint
from storefront_api.pagination import page_of
from storefront_api.schemas import (
    ApiModel,
    ItemList,
    JsonInt,
    Money,
    Page,
    PageQuery,
    Query,
    RequestBody,
    UtcDateTime,
    money_text,
)
from storefront_api.security import current_user

# A query-string price is a plain decimal with at most two places ("19.99").
PriceParam = Annotated[str, StringConstraints(pattern=r"^\d{1,10}(\.\d{1,2})?$")]


class CategoryLink(ApiModel):
    id: int
    slug: str
    name: str


class CategoryOut(ApiModel):
    id: int
    name: str
    slug: str
    description: str
    image_url: str | None
    product_count: int = Field(description="Active products, subcategories included")
    parent: CategoryLink | None
    children: list[CategoryLink] = Field(description="Direct subcategories, in display order")


class CategoryTreeNode(CategoryOut):
    children: list[CategoryTreeNode] = Field(description="Direct subcategories, each with its own")


class CategoryList(ApiModel):
    items: list[CategoryOut | CategoryTreeNode] = Field(
        description="Every category in display order; with tree=true the root categories, "
        "their subcategories nested in children")


class CategoryQuery(Query):
    tree: bool = Field(False, description="Nest the categories: roots, each with its children")


class CategoryRef(ApiModel):
    slug: str
    name: str


class ImageRef(ApiModel):
    url: str = Field(description="Absolute URL of the image (local media or the S3 bucket)")
    alt_text: str
    thumbnail_url: str = Field(description="Absolute URL of the 200 px WebP thumbnail; the "
                                           "original until the thumbnail is made")


class ImageOut(ImageRef):
    is_primary: bool
    display_order: int
    large_url: str = Field(description="Absolute URL of the 800 px WebP version; the original "
                                       "until it is made")


def _absolute(url: str) -> str:
    """A path on this site (local media) made absolute; other URLs as they are."""
    if url.startswith("/") and not url.startswith("//"):
        return request.url_root.rstrip("/") + url
    return url


def image_ref(image) -> ImageRef:
    return ImageRef(url=_absolute(images.image_url(image)), alt_text=image.alt_text or "",
                    thumbnail_url=_absolute(images.thumbnail_url(image, 200)))


def image_out(image) -> ImageOut:
    return ImageOut(**image_ref(image).model_dump(), is_primary=image.is_primary,
                    display_order=image.display_order,
                    large_url=_absolute(images.thumbnail_url(image, 800)))


class PriceRange(ApiModel):
    min: Money
    max: Money


class Rating(ApiModel):
    average: float | None = Field(description="Mean of visible reviews, 2 places; null without reviews")
    count: int


class ProductSummary(ApiModel):
    id: int
    slug: str
    name: str
    base_price: Money
    currency: str
    category: CategoryRef | None
    primary_image: ImageRef | None
    price_range: PriceRange
    in_stock: bool
    rating: Rating
    featured: bool


class PickupStock(ApiModel):
    store_id: int
    available: int = Field(ge=0)


class VariantOut(ApiModel):
    id: int
    sku: str
    name: str
    price: Money
    attributes: dict[str, Any]
    available: int = Field(ge=0, description="Units for shipping: every active location that ships orders")
    in_stock: bool
    pickup: list[PickupStock] | None = Field(
        None, description="Only with ?pickup=true: units to collect at each click & collect store")


class ProductDetailQuery(Query):
    pickup: bool = Field(False, description="Add each variant's stock per click & collect store")


class ProductDetail(ProductSummary):
    description: str
    images: list[ImageOut]
    variants: list[VariantOut]


ATTRIBUTE_PARAM = re.compile(r"^attr\.(?P<name>[A-Za-z0-9_\-]{1,40})$")
MAX_ATTRIBUTE_FILTERS = 10
MAX_ATTRIBUTE_VALUES = 20


class ProductQuery(PageQuery):
    category: str | None = Field(None, max_length=140, description="slug; includes subcategories")
    q: str | None = Field(None, max_length=200, description=(
        "full-text search over name and description; when it finds fewer than "
        f"{queries.TYPO_FALLBACK_BELOW} products, names that look like the text match too (typos)"))
    min_price: PriceParam | None = None
    max_price: PriceParam | None = None
    featured: bool | None = None
    in_stock: bool | None = None
    sort: Literal["relevance", "price_asc", "price_desc", "newest", "name", "rating"] = "relevance"
    facets: bool = Field(False, description="Also count the matching products by category, price "
                         "and attribute (facets in the answer; null without)")
    # attr.<name>=<value>[,<value>...]: not a declared parameter (OpenAPI cannot name a family
    # of parameters); collected here from the raw query, sorted, so the cache key is stable.
    attributes: SkipJsonSchema[tuple[tuple[str, tuple[str, ...]], ...]] = Field((), exclude=True)

    @model_validator(mode="before")
    @classmethod
    def _collect_attributes(cls, raw: Any) -> Any:
        if not isinstance(raw, dict):
            return raw
        found: dict[str, tuple[str, ...]] = {}
        for key, value in raw.items():
            if not isinstance(key, str) or not key.startswith("attr."):
                continue
            match = ATTRIBUTE_PARAM.match(key)
            if match is None:
                raise ValueError(f"{key}: filter by attribute as attr.<name>=<value>, the name in "
                                 "letters, digits, _ and - (at most 40)")
            values = tuple(sorted({part.strip() for part in str(value).split(",") if part.strip()}))
            if not values or len(values) > MAX_ATTRIBUTE_VALUES or any(len(v) > 100 for v in values):
                raise ValueError(f"{key}: 1 to {MAX_ATTRIBUTE_VALUES} comma-separated values of at most "
                                 "100 characters")
            found[match.group("name")] = values
        if len(found) > MAX_ATTRIBUTE_FILTERS:
            raise ValueError(f"At most {MAX_ATTRIBUTE_FILTERS} attribute filters")
        rest = {key: value for key, value in raw.items()
                if not (isinstance(key, str) and key.startswith("attr."))}
        return {**rest, "attributes": tuple(sorted(found.items()))}

    def cache_key(self) -> dict:
        """The parsed query as the catalog cache names the page: attribute filters included."""
        return {**self.model_dump(mode="json"),
                "attr": ";".join(f"{name}={','.join(values)}" for name, values in self.attributes)}


class CategoryCount(ApiModel):
    slug: str
    name: str
    count: int


class PriceBucketOut(ApiModel):
    min: Money
    max: Money | None = Field(description="Exclusive upper end; null: no upper end")
    count: int


class AttributeCount(ApiModel):
    value: str
    count: int


class FacetsOut(ApiModel):
    category: list[CategoryCount] = Field(
        description="By the product's own category, under the other filters")
    price: list[PriceBucketOut] = Field(description="By lowest price, under the other filters; empty "
                                        "buckets left out")
    attributes: dict[str, list[AttributeCount]] = Field(
        description="Per variant attribute (active variants), the values and how many products have "
        "them; each attribute counted under every filter but its own")


class ProductPage(Page[ProductSummary]):
    facets: FacetsOut | None = Field(description="Only when asked for with facets=true; null otherwise")
    search: Literal["fulltext", "fuzzy"] | None = Field(
        description="How q matched: fulltext, or fuzzy when names that look like it were added; "
        "null without q")


class SuggestQuery(Query):
    q: str = Field(min_length=1, max_length=100, description="What the shopper has typed so far")
    limit: int = Field(8, ge=1, le=navigation.MAX_SUGGESTIONS)


class SuggestionOut(ApiModel):
    text: str
    kind: Literal["category", "product"]
    slug: str = Field(description="The category's or product's slug")


class ReviewIn(RequestBody):
    rating: JsonInt = Field(ge=1, le=5)
    title: str = Field("", max_length=200)
    comment: str = Field("", max_length=5000)


class ReviewOut(ApiModel):
    id: int
    rating: int
    title: str
    comment: str
    author_name: str
    verified_purchase: bool
    created_at: UtcDateTime


def _link(category: Category) -> CategoryLink:
    return CategoryLink(id=category.id, slug=category.slug, name=category.name)


def _category_fields(category: Category, product_count: int, parent: Category | None) -> dict:
    return {
        "id": category.id,
        "name": category.name,
        "slug": category.slug,
        "description": category.description or "",
        "image_url": category.image_url,
        "product_count": product_count,
        "parent": _link(parent) if parent is not None else None,
    }


def category_out(category: Category, product_count: int, parent: Category | None,
                 children: list[Category]) -> CategoryOut:
    return CategoryOut(**_category_fields(category, product_count, parent),
                       children=[_link(child) for child in children])


def tree_node_out(node: navigation.CategoryNode, parent: Category | None = None) -> CategoryTreeNode:
    return CategoryTreeNode(**_category_fields(node.category, node.product_count, parent),
                            children=[tree_node_out(child, node.category) for child in node.children])


def facets_out(facets: navigation.Facets) -> FacetsOut:
    return FacetsOut(
        category=[CategoryCount(slug=slug, name=name, count=count) for slug, name, count in facets.category],
        price=[PriceBucketOut(min=b.min, max=b.max, count=b.count) for b in facets.price],
        attributes={name: [AttributeCount(value=value, count=count) for value, count in values]
                    for name, values in facets.attributes.items()},
    )


def _summary_fields(product: Product) -> dict:
    low, high = queries.price_range(product)
    image = queries.primary_image(product)
    average = product.rating_average
    return {
        "id": product.id,
        "slug": product.slug,
        "name": product.name,
        "base_price": product.base_price,
        "currency": current_app.config["CURRENCY"],
        "category": CategoryRef.model_validate(product.category) if product.category else None,
        "primary_image": image_ref(image) if image else None,
        "price_range": PriceRange(min=low, max=high),
        "in_stock": queries.product_in_stock(product),
        "rating": Rating(average=float(average) if average is not None else None, count=product.rating_count),
        "featured": product.featured,
    }


def summary_renderer() -> Callable[[queries.ListedProduct], dict]:
    """Renders a listed product (queries.list_summaries) as the JSON data of a ProductSummary,
    without building the model: what ``product_summary(...).model_dump(mode="json")`` gives
    for the same product (the list's hot path; the detail still goes through pydantic)."""
    currency = current_app.config["CURRENCY"]
    root = request.url_root.rstrip("/")

    def absolute(url: str) -> str:  # _absolute, with the request's root read once
        return root + url if url.startswith("/") and not url.startswith("//") else url

    def render(product: queries.ListedProduct) -> dict:
        image, category, average = product.image, product.category, product.rating_average
        return {
            "id": product.id,
            "slug": product.slug,
            "name": product.name,
            "base_price": money_text(product.base_price),
            "currency": currency,
            "category": {"slug": category[0], "name": category[1]} if category else None,
            "primary_image": {
                "url": absolute(images.image_url(image)),
                "alt_text": image.alt_text or "",
                "thumbnail_url": absolute(images.thumbnail_url(image, queries.LISTING_THUMBNAIL)),
            } if image else None,
            "price_range": {"min": money_text(product.low_price), "max": money_text(product.high_price)},
            "in_stock": product.in_stock,
            "rating": {"average": float(average) if average is not None else None,
                       "count": product.rating_count},
            "featured": product.featured,
        }

    return render


def product_summary(product: Product) -> ProductSummary:
    return ProductSummary(**_summary_fields(product))


def product_detail(product: Product, *, pickup: bool = False) -> ProductDetail:
    at_stores = pickup_stock(v.id for v in queries.active_variants(product)) if pickup else {}
    variants = [
        VariantOut(
            id=variant.id,
            sku=variant.sku,
            name=variant.name,
            price=variant.price,
            attributes=variant.attributes or {},
            available=available_units(variant),
            in_stock=available_units(variant) > 0,
            pickup=at_stores.get(variant.id, []) if pickup else None,
        )
        for variant in queries.active_variants(product)
    ]
    return ProductDetail(
        **_summary_fields(product),
        description=product.description or "",
        images=[image_out(image) for image in product.images],
        variants=variants,
    )


def review_out(review: Review) -> ReviewOut:
    return ReviewOut(
        id=review.id,
        rating=review.rating,
        title=review.title,
        comment=review.comment,
        author_name=reviews.author_name(review),
        verified_purchase=review.verified_purchase,
        created_at=review.created_at,
    )


@api.get("/categories")
@cached_page
@endpoint(query=CategoryQuery, response=CategoryList, tags=["catalog"])
def list_categories(query: CategoryQuery):
    """All categories with their number of active products, parent and children.

    With `tree=true` the answer is the tree: the root categories, each with its
    subcategories nested in `children` to any depth."""
    if query.tree:
        return CategoryList(items=[tree_node_out(node) for node in navigation.category_tree()])
    listed = queries.list_categories()
    by_id = {category.id: category for category, _ in listed}
    children = navigation.children_of([category for category, _ in listed])
    return CategoryList(items=[category_out(c, n, by_id.get(c.parent_id), children.get(c.id, []))
                               for c, n in listed])


@api.get("/categories/<slug>")
@cached_page
@endpoint(response=CategoryOut, tags=["catalog"])
def get_category(slug: str):
    """One category, with its parent and its direct subcategories."""
    category, count = queries.get_category(slug)
    return category_out(category, count, category.parent, queries.subcategories(category))


@api.get("/products")
@cached_page
@endpoint(query=ProductQuery, response=ProductPage, tags=["catalog"])
def list_products(query: ProductQuery):
    """Active products: filter, search, sort, paginate, with facets.

    Filter by variant attribute with `attr.<name>=<value>` (e.g. `attr.colour=red`;
    `attr.size=M,L` for either; several attributes must all match; values compare
    case-insensitively): a product matches when one of its active variants does.
    With `facets=true` the answer's `facets` counts the matching products by category, price
    bucket and attribute value, each dimension under all the other filters."""
    filters = queries.ProductFilters(
        category=query.category,
        q=query.q,
        min_price=Decimal(query.min_price) if query.min_price is not None else None,
        max_price=Decimal(query.max_price) if query.max_price is not None else None,
        featured=query.featured,
        in_stock=query.in_stock,
        sort=query.sort,
        attributes=query.attributes,
    )
    listed, total, filters = queries.list_summaries_searching(filters, page=query.page,
                                                              per_page=query.per_page)
    page = page_of(listed, page=query.page, per_page=query.per_page, total=total,
                   render=summary_renderer())
    facets = facets_out(navigation.product_facets(filters)).model_dump(mode="json") if query.facets else None
    # Built as plain JSON data, not as a ProductPage: the fields and formats are ProductPage's
    # (tests/storefront_api/test_catalog_fast_path.py compares with the pydantic rendering).
    return jsonify({**page, "facets": facets, "search": filters.search})


@api.get("/search/suggest")
@cached_page
@endpoint(query=SuggestQuery, response=ItemList[SuggestionOut], tags=["catalog"])
def suggest_search(query: SuggestQuery):
    """Completions for a search box: categories and products whose name (or a word of it)
    starts with `q`, shortest first; names that look like `q` when none does (typos)."""
    found = navigation.suggest(query.q, limit=query.limit)
    return {"items": [SuggestionOut(text=s.text, kind=s.kind, slug=s.slug) for s in found]}


@api.get("/products/<slug>")
@cached_page
@endpoint(query=ProductDetailQuery, response=ProductDetail, tags=["catalog"])
def get_product(slug: str, query: ProductDetailQuery):
    """One active product with images and variants.

    With ``?pickup=true`` each variant adds ``pickup: [{store_id, available}]``, its units
    at every click & collect store; without it the variants carry no ``pickup`` key.
    """
    detail = product_detail(queries.get_product(slug), pickup=query.pickup)
    if query.pickup:
        return detail
    shown = detail.model_dump(mode="json")
    for variant in shown["variants"]:
        del variant["pickup"]
    return jsonify(shown)


@api.get("/products/<slug>/reviews")
@endpoint(query=PageQuery, response=Page[ReviewOut], tags=["catalog"])
def list_product_reviews(slug: str, query: PageQuery):
    """Visible reviews of a product, newest first."""
    product = queries.get_visible_product(slug)
    items, total = reviews.list_reviews(product, page=query.page, per_page=query.per_page)
    return page_of(items, page=query.page, per_page=query.per_page, total=total, render=review_out)


@api.post("/products/<slug>/reviews")
@endpoint(body=ReviewIn, response=ReviewOut, status=201, auth="required", tags=["catalog"], errors=[409])
def create_product_review(slug: str, body: ReviewIn):
    """Review a product (once per shopper)."""
    product = queries.get_visible_product(slug)
    review = reviews.create_review(
        product, current_user(), rating=body.rating, title=body.title, comment=body.comment
    )
    return review_out(review)
