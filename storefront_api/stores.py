"""The store locator."""

from __future__ import annotations

from typing import Any

from flask import jsonify
from pydantic import Field, model_validator

from ecom.catalog.services import get_variant_by_sku
from ecom.errors import NotFound
from ecom.inventory.services import pickup_stock
from ecom.stores.queries import find_stores, get_store
from storefront_api import api
from storefront_api.openapi import endpoint
from storefront_api.schemas import ApiModel, ItemList, Query


class StoreQuery(Query):
    lat: float | None = Field(None, ge=-90, le=90, allow_inf_nan=False)
    lng: float | None = Field(None, ge=-180, le=180, allow_inf_nan=False)
    radius_km: float | None = Field(None, gt=0, le=20_100, allow_inf_nan=False)
    limit: int = Field(20, ge=1, le=100)
    sku: str | None = Field(None, min_length=1, max_length=64,
                            description="Add each store's click & collect units of this SKU (404 if unknown)")

    @model_validator(mode="after")
    def _coordinates_together(self):
        if (self.lat is None) != (self.lng is None):
            raise ValueError("lat and lng must be given together")
        if self.radius_km is not None and self.lat is None:
            raise ValueError("radius_km needs lat and lng")
        return self


class StoreOut(ApiModel):
    id: int
    name: str
    address: str
    city: str
    state: str
    postal_code: str
    country: str
    latitude: float
    longitude: float
    phone: str | None
    email: str | None
    opening_hours: dict[str, Any] | None
    distance_km: float | None = Field(None, description="Only when lat and lng were given")
    available: int | None = Field(None, ge=0, description="Only with ?sku=: units to collect at this store")


def store_out(store, distance_km: float | None = None) -> StoreOut:
    fields = StoreOut.model_validate(store).model_dump(exclude={"distance_km", "available"})
    return StoreOut(**fields, distance_km=round(distance_km, 3) if distance_km is not None else None)


@api.get("/stores")
@endpoint(query=StoreQuery, response=ItemList[StoreOut], tags=["stores"], errors=[404])
def list_stores(query: StoreQuery):
    """Active stores; nearest first when lat and lng are given.

    ``lat`` and ``lng`` go together (one without the other is 400), and
    ``radius_km`` needs both. With ``?sku=`` each store adds ``available``, its click &
    collect units of that SKU (0 where it has none or offers no pickup).
    """
    hits = find_stores(lat=query.lat, lng=query.lng, radius_km=query.radius_km, limit=query.limit)
    items = [store_out(hit.store, hit.distance_km).model_dump(mode="json") for hit in hits]
    if query.sku is None:
        for item in items:
            del item["available"]
        return jsonify({"items": items})
    variant = get_variant_by_sku(query.sku)
    if variant is None:
        raise NotFound(f"No product variant with SKU '{query.sku}'.")
    units = {row["store_id"]: row["available"] for row in pickup_stock([variant.id]).get(variant.id, [])}
    for item in items:
        item["available"] = units.get(item["id"], 0)
    return {"items": items}


@api.get("/stores/<int:store_id>")
@endpoint(response=StoreOut, tags=["stores"])
def get_store_by_id(store_id: int):
    """One active store."""
    return store_out(get_store(store_id))
