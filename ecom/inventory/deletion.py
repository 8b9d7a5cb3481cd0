"""Whether a store may be deleted: not while a stock location of it holds stock or history.

A store's stock location (``stock_locations.store_id``) keeps its inventory rows and ledger;
deleting the store would be refused by the database. ``store_delete_refusal`` says why first,
in the words of the person trying, and the way out (deactivate the store).
"""

from __future__ import annotations

from sqlalchemy import func, select

from ecom.extensions import db
from ecom.inventory.models import Inventory, StockLocation


def store_delete_refusal(store) -> tuple[str, str] | None:
    """(message, way out) when ``store`` must not be deleted, else None."""
    locations = db.session.scalars(select(StockLocation.id).where(StockLocation.store_id == store.id)).all()
    if not locations:
        return None
    units = int(db.session.scalar(select(func.coalesce(func.sum(Inventory.quantity), 0))
                                  .where(Inventory.location_id.in_(locations))) or 0)
    held = f"{units} unit(s) in stock at its location" if units else "its stock location and ledger"
    return (f"{store.name} cannot be deleted: it has {held}. Deactivate it instead: it leaves the "
            "store finder and pickup at once, and its stock history stays intact.", "deactivate")
