"""The store locator: active stores, nearest first by great-circle distance."""

from __future__ import annotations

import math
from dataclasses import dataclass

from sqlalchemy import select

from ecom.errors import NotFound, ValidationFailed
from ecom.extensions import db
from ecom.stores.models import Store

EARTH_RADIUS_KM = 6371.0088  # mean radius (IUGG)
KM_PER_DEGREE_LATITUDE = 111.2


@dataclass(frozen=True)
class StoreHit:
    store: Store
    distance_km: float | None


def haversine_km(lat1: float, lng1: float, lat2: float, lng2: float) -> float:
    """Great-circle distance between two points, in kilometres."""
    phi1, phi2 = math.radians(lat1), math.radians(lat2)
    d_phi, d_lambda = phi2 - phi1, math.radians(lng2 - lng1)
    a = math.sin(d_phi / 2) ** 2 + math.cos(phi1) * math.cos(phi2) * math.sin(d_lambda / 2) ** 2
    return 2 * EARTH_RADIUS_KM * math.asin(min(1.0, math.sqrt(a)))


def check_coordinates(lat: float, lng: float) -> None:
    """Raises ValidationFailed for a latitude or longitude outside the globe."""
    errors = {}
    if not (isinstance(lat, int | float) and math.isfinite(lat) and -90 <= lat <= 90):
        errors["lat"] = ["Must be between -90 and 90."]
    if not (isinstance(lng, int | float) and math.isfinite(lng) and -180 <= lng <= 180):
        errors["lng"] = ["Must be between -180 and 180."]
    if errors:
        raise ValidationFailed("Invalid coordinates.", errors)


def _bounding_box(statement, lat: float, lng: float, radius_km: float):
    # A cheap index-friendly prefilter; the exact distance is checked in Python.
    d_lat = radius_km / KM_PER_DEGREE_LATITUDE
    statement = statement.where(Store.latitude.between(lat - d_lat, lat + d_lat))
    cos_lat = math.cos(math.radians(lat))
    if lat + d_lat >= 90 or lat - d_lat <= -90 or cos_lat < 1e-6:
        return statement  # the box contains a pole: every longitude qualifies
    d_lng = radius_km / (KM_PER_DEGREE_LATITUDE * cos_lat)
    if d_lng >= 180 or lng - d_lng < -180 or lng + d_lng > 180:
        return statement  # wraps the antimeridian: leave longitude to the exact check
    return statement.where(Store.longitude.between(lng - d_lng, lng + d_lng))


def find_stores(
    *, lat: float | None = None, lng: float | None = None, radius_km: float | None = None, limit: int = 20
) -> list[StoreHit]:
    """Active stores: nearest first with coordinates (within ``radius_km`` if given), else by name.

    Raises ValidationFailed for invalid coordinates or a radius without them.
    """
    statement = select(Store).where(Store.is_active.is_(True))
    if lat is None and lng is None:
        if radius_km is not None:
            raise ValidationFailed("radius_km needs lat and lng.", {"radius_km": ["Requires lat and lng."]})
        stores = db.session.scalars(statement.order_by(Store.name, Store.id).limit(limit)).all()
        return [StoreHit(store, None) for store in stores]
    if lat is None or lng is None:
        raise ValidationFailed("lat and lng go together.", {"lat" if lat is None else "lng": ["Required."]})
    check_coordinates(lat, lng)
    if radius_km is not None:
        statement = _bounding_box(statement, lat, lng, radius_km)
    hits = [
        StoreHit(store, haversine_km(lat, lng, store.latitude, store.longitude))
        for store in db.session.scalars(statement)
    ]
    if radius_km is not None:
        hits = [hit for hit in hits if hit.distance_km <= radius_km]
    hits.sort(key=lambda hit: (hit.distance_km, hit.store.name, hit.store.id))
    return hits[:limit]


def get_store(store_id: int) -> Store:
    """An active store. Raises NotFound."""
    store = db.session.get(Store, store_id)
    if store is None or not store.is_active:
        raise NotFound("Store not found.")
    return store
