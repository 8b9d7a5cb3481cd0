"""Pricing rows for tests: tax classes and rates, zones and methods, promotions."""

from __future__ import annotations

from decimal import Decimal

from ecom.extensions import db
from ecom.pricing.models import Promotion, ShippingMethod, ShippingZone, TaxClass, TaxRate


def tax_class(code: str = "standard", name: str | None = None) -> TaxClass:
    found = db.session.query(TaxClass).filter_by(code=code).one_or_none()
    if found is None:
        found = TaxClass(code=code, name=name or code.title())
        db.session.add(found)
        db.session.flush()
    return found


def tax_rate(country: str, rate: str, *, region: str | None = None, cls: str = "standard",
             name: str | None = None) -> TaxRate:
    row = TaxRate(country=country, region=region, tax_class=tax_class(cls), rate=Decimal(rate),
                  name=name or f"{country} {cls}")
    db.session.add(row)
    db.session.flush()
    return row


def zone(name: str, countries: list[str], *, tax_shipping: bool = False) -> ShippingZone:
    row = ShippingZone(name=name, countries=countries, tax_shipping=tax_shipping)
    db.session.add(row)
    db.session.flush()
    return row


def method(zone_row: ShippingZone | None, code: str, price: str = "0.00", *, kind: str = "flat",
           free_over: str | None = None, brackets=(), store=None, **kwargs) -> ShippingMethod:
    row = ShippingMethod(zone=zone_row, code=code, name=kwargs.pop("name", code.title()), kind=kind,
                         price=Decimal(price), free_over=Decimal(free_over) if free_over else None,
                         weight_brackets=[{"up_to": up, "price": p} for up, p in brackets],
                         store_id=store.id if store is not None else None, **kwargs)
    db.session.add(row)
    db.session.flush()
    return row


def us_shop() -> ShippingZone:
    """The demo's US rules: standard 5.99 free over 50.00, express 14.99, 8 % tax."""
    us = zone("United States", ["US"])
    method(us, "standard", "5.99", free_over="50.00", min_days=3, max_days=5)
    method(us, "express", "14.99", min_days=1, max_days=2)
    tax_rate("US", "0.08", name="Sales tax")
    return us


def promotion(name: str = "Promo", *, code: str | None = None, kind: str = "percent", value: str = "10",
              **kwargs) -> Promotion:
    row = Promotion(name=name, code=code, kind=kind, value=Decimal(value), **kwargs)
    db.session.add(row)
    db.session.flush()
    return row
