"""Stock locations for tests: warehouses, store locations, stock placed at each."""

from __future__ import annotations

from ecom.actor import Actor
from ecom.extensions import db
from ecom.inventory import services as stock
from ecom.inventory.models import Inventory, StockLocation
from tests.factories import StockLocationFactory, StoreFactory

CLERK = Actor("clerk@example.com", None)


def warehouse(priority: int, *, code: str | None = None, ships: bool = True,
              active: bool = True) -> StockLocation:
    kwargs = {"code": code} if code else {}
    return StockLocationFactory(priority=priority, ships_orders=ships, is_active=active, **kwargs)


def store_location(*, opening_hours: dict | None = None, ships: bool = False, priority: int = 500):
    store = StoreFactory(address="5 Market Square", city="Leeds", postal_code="LS1 1AA", country="GB",
                         opening_hours=opening_hours or {"Mon-Fri": "09:00-18:00", "Sat": "10:00-16:00"})
    location = StockLocationFactory(kind="store", store=store, name=f"{store.name} stock room",
                                    ships_orders=ships, accepts_pickup=True, priority=priority)
    return store, location


def place(variant, location: StockLocation, units: int) -> None:
    """``units`` received at ``location`` (through the one adjust service: a ledger row each)."""
    if units:
        stock.receive_stock(variant, units, actor=CLERK, location=location)


def row_at(variant, location: StockLocation) -> Inventory | None:
    db.session.expire_all()
    return db.session.scalar(db.select(Inventory).where(Inventory.variant_id == variant.id,
                                                          Inventory.location_id == location.id))
