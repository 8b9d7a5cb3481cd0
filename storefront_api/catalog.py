"""Categories, products and reviews (read-only except posting a review)."""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated, Any, Literal

from flask import current_app, request
from pydantic import Field, StringConstraints

from ecom.catalog import images, queries, reviews
from ecom.catalog.models import Category, Product, Review
from ecom.inventory.models import available_units
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
    RequestBody,
    UtcDateTime,
)
from storefront_api.security import current_user

# A query-string price is a plain decimal with at most two places ("19.99").
PriceParam = Annotated[str, StringConstraints(pattern=r"^\d{1,10}(\.\d{1,2})?$")]


class CategoryOut(ApiModel):
    id: int
    name: str
    slug: str
    description: str
    image_url: str | None
    product_count: int


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


class VariantOut(ApiModel):
    id: int
    sku: str
    name: str
    price: Money
    attributes: dict[str, Any]
    available: int = Field(ge=0)
    in_stock: bool


class ProductDetail(ProductSummary):
    description: str
    images: list[ImageOut]
    variants: list[VariantOut]


class ProductQuery(PageQuery):
    category: str | None = Field(None, max_length=140, description="slug; includes subcategories")
    q: str | None = Field(None, max_length=200, description="full-text search over name and description")
    min_price: PriceParam | None = None
    max_price: PriceParam | None = None
    featured: bool | None = None
    in_stock: bool | None = None
    sort: Literal["relevance", "price_asc", "price_desc", "newest", "name", "rating"] = "relevance"


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


def category_out(category: Category, product_count: int) -> CategoryOut:
    return CategoryOut(
        id=category.id,
        name=category.name,
        slug=category.slug,
        description=category.description or "",
        image_url=category.image_url,
        product_count=product_count,
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


def product_summary(product: Product) -> ProductSummary:
    return ProductSummary(**_summary_fields(product))


def product_detail(product: Product) -> ProductDetail:
    variants = [
        VariantOut(
            id=variant.id,
            sku=variant.sku,
            name=variant.name,
            price=variant.price,
            attributes=variant.attributes or {},
            available=available_units(variant),
            in_stock=available_units(variant) > 0,
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
@endpoint(response=ItemList[CategoryOut], tags=["catalog"])
def list_categories():
    """All categories with their number of active products."""
    return {"items": [category_out(c, n) for c, n in queries.list_categories()]}


@api.get("/categories/<slug>")
@cached_page
@endpoint(response=CategoryOut, tags=["catalog"])
def get_category(slug: str):
    """One category."""
    return category_out(*queries.get_category(slug))


@api.get("/products")
@cached_page
@endpoint(query=ProductQuery, response=Page[ProductSummary], tags=["catalog"])
def list_products(query: ProductQuery):
    """Active products: filter, search, sort, paginate."""
    filters = queries.ProductFilters(
        category=query.category,
        q=query.q,
        min_price=Decimal(query.min_price) if query.min_price is not None else None,
        max_price=Decimal(query.max_price) if query.max_price is not None else None,
        featured=query.featured,
        in_stock=query.in_stock,
        sort=query.sort,
    )
    products, total = queries.list_products(filters, page=query.page, per_page=query.per_page)
    return page_of(products, page=query.page, per_page=query.per_page, total=total, render=product_summary)


@api.get("/products/<slug>")
@cached_page
@endpoint(response=ProductDetail, tags=["catalog"])
def get_product(slug: str):
    """One active product with images and variants."""
    return product_detail(queries.get_product(slug))


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
