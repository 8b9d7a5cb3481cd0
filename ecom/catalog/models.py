from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from sqlalchemy import (
    JSON,
    Boolean,
    CheckConstraint,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column, relationship

from ecom.db import MONEY, Timestamp, TimestampMixin, one_of, utcnow
from ecom.extensions import db


class Category(TimestampMixin, db.Model):
    __tablename__ = "categories"
    # The service also refuses a parent among the category's descendants (ecom.catalog.services).
    __table_args__ = (CheckConstraint("parent_id IS NULL OR parent_id <> id", name="not_own_parent"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    parent_id: Mapped[int | None] = mapped_column(
        ForeignKey("categories.id", ondelete="SET NULL"), index=True
    )
    name: Mapped[str] = mapped_column(String(120))
    slug: Mapped[str] = mapped_column(String(140), unique=True)
    description: Mapped[str] = mapped_column(Text, default="")
    image_url: Mapped[str | None] = mapped_column(String(500))
    display_order: Mapped[int] = mapped_column(Integer, default=0, server_default="0")

    parent: Mapped[Category | None] = relationship(remote_side=[id], back_populates="children")
    children: Mapped[list[Category]] = relationship(back_populates="parent")
    products: Mapped[list[Product]] = relationship(back_populates="category")

    def __str__(self) -> str:
        return self.name


class Product(TimestampMixin, db.Model):
    __tablename__ = "products"
    __table_args__ = (
        CheckConstraint("base_price >= 0", name="base_price_not_negative"),
        Index("ix_products_active_created", "is_active", "created_at"),
        Index("ix_products_active_featured", "is_active", "featured"),
        # The storefront's default listing order (featured, created_at, id, all descending):
        # read backwards, this index makes a page an index scan instead of a sort of every row.
        Index("ix_products_listing", "is_active", "featured", "created_at", "id"),
        # Back-office lists (migration 0013): each ends in the id, so a page is read off it.
        Index("ix_products_updated_id", "updated_at", "id"),
        Index("ix_products_name_id", "name", "id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    category_id: Mapped[int | None] = mapped_column(
        ForeignKey("categories.id", ondelete="SET NULL"), index=True
    )
    name: Mapped[str] = mapped_column(String(200), index=True)
    slug: Mapped[str] = mapped_column(String(220), unique=True)
    description: Mapped[str] = mapped_column(Text, default="")
    base_price: Mapped[Decimal] = mapped_column(MONEY)
    is_active: Mapped[bool] = mapped_column(Boolean, default=True, server_default=text("true"))
    featured: Mapped[bool] = mapped_column(Boolean, default=False, server_default=text("false"))
    # Denormalised for fast listing and sorting; maintained by catalog services.
    min_price: Mapped[Decimal | None] = mapped_column(MONEY)
    max_price: Mapped[Decimal | None] = mapped_column(MONEY)
    rating_average: Mapped[Decimal | None] = mapped_column(db.Numeric(3, 2))
    rating_count: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    # Null: the standard tax class (ecom.pricing).
    tax_class_id: Mapped[int | None] = mapped_column(ForeignKey("tax_classes.id", ondelete="SET NULL"))

    category: Mapped[Category | None] = relationship(back_populates="products")
    tax_class = relationship("TaxClass")
    images: Mapped[list[ProductImage]] = relationship(
        back_populates="product",
        cascade="all, delete-orphan",
        order_by="(ProductImage.display_order, ProductImage.id)",
    )
    variants: Mapped[list[Variant]] = relationship(
        back_populates="product", cascade="all, delete-orphan", order_by="Variant.id"
    )
    reviews: Mapped[list[Review]] = relationship(
        back_populates="product", cascade="all, delete-orphan"
    )

    def __str__(self) -> str:
        return self.name


class ProductImage(db.Model):
    __tablename__ = "product_images"

    id: Mapped[int] = mapped_column(primary_key=True)
    product_id: Mapped[int] = mapped_column(
        ForeignKey("products.id", ondelete="CASCADE"), index=True
    )
    # An uploaded image: its storage key's URL (``ecom.media``); a URL given by hand otherwise.
    url: Mapped[str] = mapped_column(String(500))
    alt_text: Mapped[str] = mapped_column(String(300), default="")
    is_primary: Mapped[bool] = mapped_column(Boolean, default=False, server_default=text("false"))
    display_order: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    # Uploaded images only: where the original is stored, what it is, and its thumbnails
    # ({"200": key, "800": key}, WebP, made by a worker job after the upload).
    storage_key: Mapped[str | None] = mapped_column(String(300), unique=True)
    content_type: Mapped[str | None] = mapped_column(String(40))
    byte_size: Mapped[int | None] = mapped_column(Integer)
    width: Mapped[int | None] = mapped_column(Integer)
    height: Mapped[int | None] = mapped_column(Integer)
    thumbnails: Mapped[dict] = mapped_column(JSON, default=dict)

    product: Mapped[Product] = relationship(back_populates="images")

    def __str__(self) -> str:
        return self.url


class Variant(TimestampMixin, db.Model):
    __tablename__ = "variants"
    __table_args__ = (
        CheckConstraint("price >= 0", name="price_not_negative"),
        CheckConstraint("compare_at_price IS NULL OR compare_at_price >= 0", name="compare_at_not_negative"),
        # Back-office lists (migration 0013): each ends in the id, so a page is read off it.
        Index("ix_variants_price_id", "price", "id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    product_id: Mapped[int] = mapped_column(
        ForeignKey("products.id", ondelete="CASCADE"), index=True
    )
    sku: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    price: Mapped[Decimal] = mapped_column(MONEY)
    # The "was" price shown struck through beside the price; pricing never charges it.
    compare_at_price: Mapped[Decimal | None] = mapped_column(MONEY)
    weight: Mapped[Decimal | None] = mapped_column(db.Numeric(10, 3))  # kg
    # jsonb on PostgreSQL (migration 0015): the attribute filter and facet read keys of every
    # variant, which a json column parses again for each.
    attributes: Mapped[dict] = mapped_column(JSON().with_variant(JSONB(), "postgresql"), default=dict)
    is_active: Mapped[bool] = mapped_column(Boolean, default=True, server_default=text("true"))

    product: Mapped[Product] = relationship(back_populates="variants")
    # One row per stock location (ecom.inventory.models.available_units sums them).
    inventories: Mapped[list[Inventory]] = relationship(  # noqa: F821
        "Inventory", back_populates="variant", cascade="all, delete-orphan", order_by="Inventory.location_id"
    )

    @property
    def inventory(self) -> Inventory | None:  # noqa: F821
        """The row at its first location by id (the default warehouse, for a variant stocked
        in one place): what the one-location CSV format reads. Sums use available_units."""
        return self.inventories[0] if self.inventories else None

    def __str__(self) -> str:
        return f"{self.sku} — {self.name}"


class Review(db.Model):
    __tablename__ = "reviews"
    __table_args__ = (
        CheckConstraint("rating BETWEEN 1 AND 5", name="rating_range"),
        UniqueConstraint("product_id", "user_id"),
        Index("ix_reviews_product_created", "product_id", "created_at"),
        # Back-office lists (migration 0013): each ends in the id, so a page is read off it.
        Index("ix_reviews_created_id", "created_at", "id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    product_id: Mapped[int] = mapped_column(ForeignKey("products.id", ondelete="CASCADE"))
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    rating: Mapped[int] = mapped_column(Integer)
    title: Mapped[str] = mapped_column(String(200), default="")
    comment: Mapped[str] = mapped_column(Text, default="")
    verified_purchase: Mapped[bool] = mapped_column(
        Boolean, default=False, server_default=text("false")
    )
    is_hidden: Mapped[bool] = mapped_column(Boolean, default=False, server_default=text("false"))
    created_at: Mapped[datetime] = mapped_column(db.DateTime(timezone=True), default=utcnow)

    product: Mapped[Product] = relationship(back_populates="reviews")
    user = relationship("User")


class ImportJob(db.Model):
    """A product CSV import: progress and a per-row error report."""

    __tablename__ = "import_jobs"
    __table_args__ = (one_of("status", ["queued", "running", "finished", "failed"]),)

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    filename: Mapped[str] = mapped_column(String(255))
    content: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(10), default="queued")
    total_rows: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    processed_rows: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    created_count: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    updated_count: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    errors: Mapped[list] = mapped_column(JSON, default=list)
    created_at: Mapped[datetime] = mapped_column(db.DateTime(timezone=True), default=utcnow)
    finished_at: Mapped[datetime | None] = Timestamp(nullable=True)
