"""The store locator API."""

from __future__ import annotations

import pytest

from tests.factories import StoreFactory


@pytest.fixture
def stores(db):
    made = {
        "london": StoreFactory(name="London", latitude=51.5074, longitude=-0.1278),
        "paris": StoreFactory(name="Paris", latitude=48.8566, longitude=2.3522, city="Paris", country="FR"),
        "edinburgh": StoreFactory(name="Edinburgh", latitude=55.9533, longitude=-3.1883),
        "closed": StoreFactory(name="Closed", latitude=51.5, longitude=-0.12, is_active=False),
    }
    db.session.commit()
    return made


def names(response) -> list[str]:
    return [item["name"] for item in response.json["items"]]


def test_without_coordinates_active_stores_sorted_by_name(client, stores):
    response = client.get("/api/v1/stores")

    assert response.status_code == 200
    assert names(response) == ["Edinburgh", "London", "Paris"]
    assert all(item["distance_km"] is None for item in response.json["items"])


def test_with_coordinates_nearest_first_with_distance(client, stores):
    # From Oxford: London ~ 83 km, Paris ~ 400 km, Edinburgh ~ 500 km.
    response = client.get("/api/v1/stores?lat=51.752&lng=-1.2577")

    assert names(response) == ["London", "Paris", "Edinburgh"]
    distances = [item["distance_km"] for item in response.json["items"]]
    assert 80 < distances[0] < 90
    assert distances == sorted(distances)


def test_radius_filters_and_limit_caps(client, stores):
    within = client.get("/api/v1/stores?lat=51.5074&lng=-0.1278&radius_km=400")
    limited = client.get("/api/v1/stores?lat=51.5074&lng=-0.1278&limit=1")

    assert names(within) == ["London", "Paris"]  # Paris ~ 344 km; Edinburgh ~ 534 km
    assert names(limited) == ["London"]


@pytest.mark.parametrize(
    "query",
    ["lat=91&lng=0", "lat=-91&lng=0", "lat=0&lng=181", "lat=0&lng=-180.5", "lat=abc&lng=0", "lat=nan&lng=0",
     "lat=inf&lng=0", "lat=10", "lng=10", "radius_km=5", "lat=0&lng=0&radius_km=-1", "limit=0", "limit=101"],
)
def test_invalid_coordinates_and_parameters_are_400(client, db, query):
    response = client.get(f"/api/v1/stores?{query}")

    assert response.status_code == 400
    assert response.json["detail"]


def test_one_store(client, stores):
    response = client.get(f"/api/v1/stores/{stores['paris'].id}")

    assert response.status_code == 200
    assert response.json["name"] == "Paris"
    assert response.json["country"] == "FR"


def test_inactive_or_unknown_store_is_404(client, stores):
    assert client.get(f"/api/v1/stores/{stores['closed'].id}").status_code == 404
    assert client.get("/api/v1/stores/999999").status_code == 404
