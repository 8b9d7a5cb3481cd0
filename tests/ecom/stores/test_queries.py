"""Great-circle distance and the store finder."""

from __future__ import annotations

import pytest

from ecom.errors import NotFound, ValidationFailed
from ecom.stores.queries import find_stores, get_store, haversine_km
from tests.factories import StoreFactory


@pytest.mark.parametrize(
    ("a", "b", "km"),
    [
        ((51.5074, -0.1278), (48.8566, 2.3522), 343.5),  # London - Paris
        ((40.7128, -74.0060), (34.0522, -118.2437), 3936),  # New York - Los Angeles
        ((0, 179.5), (0, -179.5), 111.2),  # across the antimeridian
        ((10, 20), (10, 20), 0),
    ],
)
def test_haversine_distance(a, b, km):
    assert haversine_km(*a, *b) == pytest.approx(km, rel=0.01, abs=0.5)


def test_radius_search_across_the_antimeridian(db):
    fiji_east = StoreFactory(name="East", latitude=-17.0, longitude=179.9)
    StoreFactory(name="Far", latitude=-17.0, longitude=170.0)

    hits = find_stores(lat=-17.0, lng=-179.9, radius_km=50)

    assert [hit.store for hit in hits] == [fiji_east]
    assert hits[0].distance_km == pytest.approx(21.3, abs=0.5)


def test_radius_search_near_a_pole(db):
    near_pole = StoreFactory(name="Polar", latitude=89.9, longitude=100.0)

    hits = find_stores(lat=89.9, lng=-80.0, radius_km=50)

    assert [hit.store for hit in hits] == [near_pole]


@pytest.mark.parametrize("coordinates", [{"lat": 90.1, "lng": 0}, {"lat": 0, "lng": -180.1},
                                         {"lat": float("nan"), "lng": 0}, {"lat": 1}])
def test_invalid_coordinates_are_refused(db, coordinates):
    with pytest.raises(ValidationFailed):
        find_stores(**coordinates)


def test_get_store_hides_inactive_ones(db):
    closed = StoreFactory(is_active=False)

    with pytest.raises(NotFound):
        get_store(closed.id)
