"""The rules pricing reads (tax, shipping, promotions) and the record of each promotion's uses."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from enum import StrEnum

from sqlalchemy import (
    JSON,
    Boolean,
    CheckConstraint,
    ForeignKey,
    Index,
    Integer,
    Numeric,
    String,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from ecom.db import MONEY, Timestamp, TimestampMixin, one_of, utcnow
from ecom.extensions import db

# A tax rate as a fraction: 0.0800 is 8 %, 0.1900 is 19 %.
RATE = Numeric(7, 4, asdecimal=True)


class MethodKind(StrEnum):
    FLAT = "flat"  # one price (free over free_over)
    WEIGHT = "weight"  # the price of the first bracket the cart's weight fits
    PICKUP = "pickup"  # click & collect at a store, free, offered for any destination


class PromotionKind(StrEnum):
    PERCENT = "percent"  # value % off the eligible lines
    FIXED = "fixed"  # value off: per unit for a sale, off the eligible subtotal for a voucher
    FREE_SHIPPING = "free_shipping"


class PromotionScope(StrEnum):
    ALL = "all"
    CATEGORIES = "categories"  # lines whose product is in one of category_ids
    PRODUCTS = "products"  # lines whose product is one of product_ids


class TaxClass(db.Model):
    """What kind of goods a product is for tax (standard, reduced, zero...). A product without
    one is ``standard``."""

    __tablename__ = "tax_classes"

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(40), unique=True)
    name: Mapped[str] = mapped_column(String(120))

    rates: Mapped[list[TaxRate]] = relationship(back_populates="tax_class", cascade="all, delete-orphan")

    def __str__(self) -> str:
        return self.name


STANDARD_TAX_CLASS = "standard"


class TaxRate(db.Model):
    """The rate of one tax class in a country, or in one region of it (which wins)."""

    __tablename__ = "tax_rates"
    __table_args__ = (
        CheckConstraint("rate >= 0 AND rate < 1", name="rate_range"),
        CheckConstraint("length(country) = 2", name="country_alpha2"),
        UniqueConstraint("country", "region", "tax_class_id", name="uq_tax_rates_destination_class"),
        Index("ix_tax_rates_country", "country"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    country: Mapped[str] = mapped_column(String(2))
    # Null: the whole country. A region (a US state, "CA") wins over its country's rate.
    region: Mapped[str | None] = mapped_column(String(120))
    tax_class_id: Mapped[int] = mapped_column(ForeignKey("tax_classes.id", ondelete="CASCADE"))
    rate: Mapped[Decimal] = mapped_column(RATE)
    name: Mapped[str] = mapped_column(String(120))

    tax_class: Mapped[TaxClass] = relationship(back_populates="rates")

    def __str__(self) -> str:
        where = f"{self.country}-{self.region}" if self.region else self.country
        return f"{self.name} ({where})"


class ShippingZone(db.Model):
    """Countries shipped to alike. A country belongs to one zone (the first by id when an
    editor lists it twice)."""

    __tablename__ = "shipping_zones"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(120), unique=True)
    # ISO 3166-1 alpha-2 codes, upper case.
    countries: Mapped[list] = mapped_column(JSON, default=list)
    # Shipping is taxed (at the destination's standard rate) only where the zone says so.
    tax_shipping: Mapped[bool] = mapped_column(Boolean, default=False, server_default=text("false"))

    methods: Mapped[list[ShippingMethod]] = relationship(back_populates="zone", order_by="ShippingMethod.id")

    def __str__(self) -> str:
        return self.name


class ShippingMethod(TimestampMixin, db.Model):
    __tablename__ = "shipping_methods"
    __table_args__ = (
        one_of("kind", MethodKind),
        CheckConstraint("price >= 0", name="price_not_negative"),
        CheckConstraint("free_over IS NULL OR free_over >= 0", name="free_over_not_negative"),
        CheckConstraint("min_days IS NULL OR min_days >= 0", name="min_days_not_negative"),
        CheckConstraint("max_days IS NULL OR min_days IS NULL OR max_days >= min_days",
                        name="days_ordered"),
        CheckConstraint("kind <> 'pickup' OR (store_id IS NOT NULL AND price = 0)", name="pickup_at_a_store"),
        CheckConstraint("kind = 'pickup' OR zone_id IS NOT NULL", name="shipping_in_a_zone"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    # Null only for pickup methods, which are offered whatever the destination.
    zone_id: Mapped[int | None] = mapped_column(ForeignKey("shipping_zones.id", ondelete="CASCADE"),
                                                index=True)
    code: Mapped[str] = mapped_column(String(40), unique=True)
    name: Mapped[str] = mapped_column(String(120))
    kind: Mapped[str] = mapped_column(String(10), default=MethodKind.FLAT)
    price: Mapped[Decimal] = mapped_column(MONEY, default=Decimal("0.00"))
    # Free when the merchandise (after discounts) reaches this.
    free_over: Mapped[Decimal | None] = mapped_column(MONEY)
    # kind weight: [{"up_to": "1.000", "price": "4.99"}, ...] in kg, ascending; heavier carts
    # than the last bracket cannot use the method.
    weight_brackets: Mapped[list] = mapped_column(JSON, default=list)
    min_days: Mapped[int | None] = mapped_column(Integer)
    max_days: Mapped[int | None] = mapped_column(Integer)
    store_id: Mapped[int | None] = mapped_column(ForeignKey("stores.id", ondelete="CASCADE"), index=True)
    is_active: Mapped[bool] = mapped_column(Boolean, default=True, server_default=text("true"))

    zone: Mapped[ShippingZone | None] = relationship(back_populates="methods")
    store = relationship("Store")

    def __str__(self) -> str:
        return f"{self.name} ({self.code})"


class Promotion(TimestampMixin, db.Model):
    """A sale (no code: applies by itself to every eligible line during its window) or a
    voucher (a code the shopper enters; at most one per order)."""

    __tablename__ = "promotions"
    __table_args__ = (
        one_of("kind", PromotionKind),
        one_of("scope", PromotionScope),
        CheckConstraint("value >= 0", name="value_not_negative"),
        CheckConstraint("kind <> 'percent' OR value <= 100", name="percent_at_most_100"),
        CheckConstraint("min_subtotal IS NULL OR min_subtotal >= 0", name="min_subtotal_not_negative"),
        CheckConstraint("usage_limit IS NULL OR usage_limit >= 0", name="usage_limit_not_negative"),
        CheckConstraint("per_customer_limit IS NULL OR per_customer_limit >= 1",
                        name="per_customer_limit_positive"),
        CheckConstraint("times_used >= 0", name="times_used_not_negative"),
        # The counter the conditional UPDATE takes uses from; the database holds the limit too.
        CheckConstraint("usage_limit IS NULL OR times_used <= usage_limit", name="within_usage_limit"),
        CheckConstraint("ends_at IS NULL OR starts_at IS NULL OR ends_at > starts_at", name="window_ordered"),
        CheckConstraint("code IS NULL OR code = upper(code)", name="code_upper_case"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    # Stored upper case; shoppers enter it in any case. Null: an automatic promotion (a sale).
    code: Mapped[str | None] = mapped_column(String(64), unique=True)
    kind: Mapped[str] = mapped_column(String(20), default=PromotionKind.PERCENT)
    value: Mapped[Decimal] = mapped_column(MONEY, default=Decimal("0.00"))
    scope: Mapped[str] = mapped_column(String(20), default=PromotionScope.ALL)
    category_ids: Mapped[list] = mapped_column(JSON, default=list)
    product_ids: Mapped[list] = mapped_column(JSON, default=list)
    min_subtotal: Mapped[Decimal | None] = mapped_column(MONEY)
    starts_at: Mapped[datetime | None] = Timestamp(nullable=True)
    ends_at: Mapped[datetime | None] = Timestamp(nullable=True)
    usage_limit: Mapped[int | None] = mapped_column(Integer)
    per_customer_limit: Mapped[int | None] = mapped_column(Integer)
    # Orders holding a use now (uses given back are not counted). Kept only while the promotion
    # has a limit (usage_limit or per_customer_limit), recounted from its uses when it gets one:
    # an unlimited sale's uses are only recorded, so it locks no row of its own at checkout.
    times_used: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    is_active: Mapped[bool] = mapped_column(Boolean, default=True, server_default=text("true"))

    codes: Mapped[list[VoucherCode]] = relationship(back_populates="promotion", cascade="all, delete-orphan",
                                                    order_by="VoucherCode.id")

    @property
    def is_voucher(self) -> bool:
        return self.code is not None or bool(self.codes)

    @property
    def uses_left(self) -> int | None:
        return None if self.usage_limit is None else max(self.usage_limit - self.times_used, 0)

    def __str__(self) -> str:
        return f"{self.name} ({self.code})" if self.code else self.name


class VoucherCode(db.Model):
    """One more code of a voucher, generated in bulk for a campaign (say 500 single-use codes):
    each has its own use limit besides the promotion's."""

    __tablename__ = "voucher_codes"
    __table_args__ = (
        CheckConstraint("code = upper(code)", name="code_upper_case"),
        CheckConstraint("usage_limit IS NULL OR usage_limit >= 1", name="usage_limit_positive"),
        CheckConstraint("times_used >= 0", name="times_used_not_negative"),
        CheckConstraint("usage_limit IS NULL OR times_used <= usage_limit", name="within_usage_limit"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    promotion_id: Mapped[int] = mapped_column(ForeignKey("promotions.id", ondelete="CASCADE"), index=True)
    code: Mapped[str] = mapped_column(String(64), unique=True)
    usage_limit: Mapped[int | None] = mapped_column(Integer, default=1)
    times_used: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    created_at: Mapped[datetime] = mapped_column(db.DateTime(timezone=True), default=utcnow)

    promotion: Mapped[Promotion] = relationship(back_populates="codes")

    def __str__(self) -> str:
        return self.code


class PromotionUse(db.Model):
    """One order's use of a promotion, taken when the order is placed and given back
    (``released_at``) when it is cancelled unpaid or expires."""

    __tablename__ = "promotion_uses"
    __table_args__ = (
        UniqueConstraint("order_id", "promotion_id", name="uq_promotion_uses_order_promotion"),
        CheckConstraint("discount >= 0", name="discount_not_negative"),
        Index("ix_promotion_uses_promotion_user", "promotion_id", "user_id"),
        Index("ix_promotion_uses_promotion_email", "promotion_id", "email"),
        # The back office counts the uses held of a page's promotions off this index alone
        # (admin promotions list; migration 0014).
        Index("ix_promotion_uses_held", "promotion_id", "id", postgresql_where=text("released_at IS NULL"),
              sqlite_where=text("released_at IS NULL")),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    promotion_id: Mapped[int] = mapped_column(ForeignKey("promotions.id", ondelete="CASCADE"))
    voucher_code_id: Mapped[int | None] = mapped_column(ForeignKey("voucher_codes.id", ondelete="SET NULL"))
    order_id: Mapped[int] = mapped_column(ForeignKey("orders.id", ondelete="CASCADE"), index=True)
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    email: Mapped[str] = mapped_column(String(255), default="")
    code: Mapped[str | None] = mapped_column(String(64))
    discount: Mapped[Decimal] = mapped_column(MONEY, default=Decimal("0.00"))
    created_at: Mapped[datetime] = mapped_column(db.DateTime(timezone=True), default=utcnow)
    released_at: Mapped[datetime | None] = Timestamp(nullable=True)

    promotion: Mapped[Promotion] = relationship()
