"""The demo shop's pricing rules: today's flat settings as the US zone's, an EU-style zone
with VAT (shipping taxed, a reduced class), a pickup method per store, an automatic sale on
one category and a voucher code to try. Idempotent: what exists is left alone."""

from __future__ import annotations

from decimal import Decimal

from sqlalchemy import select

from ecom.extensions import db
from ecom.pricing.models import (
    STANDARD_TAX_CLASS,
    MethodKind,
    Promotion,
    PromotionKind,
    PromotionScope,
    ShippingMethod,
    ShippingZone,
    TaxClass,
    TaxRate,
)
from ecom.runtime import settings

DEMO_VOUCHER = "WELCOME10"
DEMO_SALE = "Jacket week: 20 % off jackets"
TAX_CLASSES = [(STANDARD_TAX_CLASS, "Standard"), ("reduced", "Reduced (books, food)"), ("zero", "Zero rated")]
# country -> (standard, reduced) VAT
EU_VAT = {"DE": ("0.19", "0.07"), "FR": ("0.20", "0.055"), "GB": ("0.20", "0"), "NL": ("0.21", "0.09"),
          "IT": ("0.22", "0.10"), "ES": ("0.21", "0.10"), "AT": ("0.20", "0.10")}
# The category whose products are taxed at the reduced rate, and the one on sale.
REDUCED_CATEGORY = "books"
SALE_CATEGORY = "jackets"


def seed_pricing(*, stores, categories: dict) -> None:
    """Create the demo's missing pricing rules. ``stores``: the demo stores (a pickup method
    each); ``categories``: slug -> Category, for the reduced class and the sale."""
    config = settings()
    classes = {code: _tax_class(code, name) for code, name in TAX_CLASSES}
    us = _zone("United States", ["US"], tax_shipping=False)
    _method(us, "standard", "Standard", price=Decimal(config["SHIPPING_FLAT_RATE"]),
            free_over=Decimal(config["FREE_SHIPPING_THRESHOLD"]), min_days=3, max_days=5)
    _method(us, "express", "Express", price=Decimal("14.99"), min_days=1, max_days=2)
    _rate("US", classes[STANDARD_TAX_CLASS], Decimal(config["TAX_RATE"]), "Sales tax")
    eu = _zone("Europe", sorted(EU_VAT), tax_shipping=True)
    _method(eu, "eu-standard", "Europe standard", price=Decimal("9.90"), free_over=Decimal("100.00"),
            min_days=3, max_days=7)
    _method(eu, "eu-parcel", "Europe parcel (by weight)", kind=MethodKind.WEIGHT, price=Decimal("0.00"),
            weight_brackets=[{"up_to": "1", "price": "6.90"}, {"up_to": "5", "price": "12.90"},
                             {"up_to": "30", "price": "29.90"}], min_days=4, max_days=8)
    for country, (standard, reduced) in EU_VAT.items():
        _rate(country, classes[STANDARD_TAX_CLASS], Decimal(standard), f"VAT {country}")
        _rate(country, classes["reduced"], Decimal(reduced), f"VAT {country} reduced")
    for store in stores:
        _method(None, f"pickup-{store.id}", f"Pick up at {store.name}", kind=MethodKind.PICKUP,
                price=Decimal("0.00"), store_id=store.id, min_days=0, max_days=1)
    books = categories.get(REDUCED_CATEGORY)
    if books is not None:
        for product in books.products:
            product.tax_class_id = product.tax_class_id or classes["reduced"].id
    jackets = categories.get(SALE_CATEGORY)
    if jackets is not None and not db.session.scalar(select(Promotion.id).where(Promotion.name == DEMO_SALE)):
        db.session.add(Promotion(name=DEMO_SALE, kind=PromotionKind.PERCENT, value=Decimal("20"),
                                 scope=PromotionScope.CATEGORIES, category_ids=[jackets.id]))
    if not db.session.scalar(select(Promotion.id).where(Promotion.code == DEMO_VOUCHER)):
        db.session.add(Promotion(name="Welcome: 10 % off from 30.00", code=DEMO_VOUCHER,
                                 kind=PromotionKind.PERCENT, value=Decimal("10"),
                                 min_subtotal=Decimal("30.00"), per_customer_limit=1, usage_limit=1000))
    db.session.flush()


def _tax_class(code: str, name: str) -> TaxClass:
    found = db.session.scalar(select(TaxClass).where(TaxClass.code == code))
    if found is None:
        found = TaxClass(code=code, name=name)
        db.session.add(found)
        db.session.flush()
    return found


def _zone(name: str, countries: list[str], *, tax_shipping: bool) -> ShippingZone:
    found = db.session.scalar(select(ShippingZone).where(ShippingZone.name == name))
    if found is None:
        found = ShippingZone(name=name, countries=countries, tax_shipping=tax_shipping)
        db.session.add(found)
        db.session.flush()
    return found


def _method(zone: ShippingZone | None, code: str, name: str, **fields) -> None:
    if db.session.scalar(select(ShippingMethod.id).where(ShippingMethod.code == code)) is None:
        db.session.add(ShippingMethod(zone_id=zone.id if zone else None, code=code, name=name, **fields))


def _rate(country: str, tax_class: TaxClass, rate: Decimal, name: str) -> None:
    exists = db.session.scalar(select(TaxRate.id).where(TaxRate.country == country, TaxRate.region.is_(None),
                                                        TaxRate.tax_class_id == tax_class.id))
    if exists is None:
        db.session.add(TaxRate(country=country, region=None, tax_class_id=tax_class.id, rate=rate, name=name))
