"""The API's view of stock locations: shipping availability sums the shipping locations;
?pickup=true and /stores?sku= show what each click & collect store holds."""

from __future__ import annotations

from ecom.extensions import db
from tests.factories import ProductFactory, StoreFactory, VariantFactory
from tests.locations_support import place, store_location, warehouse


def _stocked_product():
    north, south = warehouse(1), warehouse(2)
    shop, shelf = store_location()
    quiet = StoreFactory(name="No pickup here")
    product = ProductFactory(slug="lamp")
    lamp = VariantFactory(product=product, sku="LAMP-1")
    place(lamp, north, 2)
    place(lamp, south, 3)
    place(lamp, shelf, 4)
    db.session.commit()
    return lamp, shop, quiet


def test_product_detail_available_sums_shipping_locations_and_adds_pickup_when_asked(client):
    lamp, shop, quiet = _stocked_product()

    plain = client.get("/api/v1/products/lamp").get_json()
    with_pickup = client.get("/api/v1/products/lamp?pickup=true").get_json()

    [variant] = plain["variants"]
    assert variant["available"] == 5 and "pickup" not in variant
    [variant] = with_pickup["variants"]
    assert variant["available"] == 5
    assert variant["pickup"] == [{"store_id": shop.id, "available": 4}]


def test_stores_with_a_sku_say_what_each_store_holds(client):
    lamp, shop, quiet = _stocked_product()

    listed = client.get("/api/v1/stores").get_json()["items"]
    with_sku = client.get("/api/v1/stores?sku=LAMP-1").get_json()["items"]

    assert all("available" not in store for store in listed)
    assert {store["id"]: store["available"] for store in with_sku} == {shop.id: 4, quiet.id: 0}


def test_stores_with_an_unknown_sku_is_404(client):
    _stocked_product()
    response = client.get("/api/v1/stores?sku=NOPE")
    assert response.status_code == 404 and "NOPE" in response.get_json()["detail"]


def test_the_openapi_document_names_the_new_parameters(client):
    document = client.get("/api/v1/openapi.json").get_json()
    detail = document["paths"]["/api/v1/products/{slug}"]["get"]
    stores = document["paths"]["/api/v1/stores"]["get"]
    assert "pickup" in {p["name"] for p in detail["parameters"]}
    assert "sku" in {p["name"] for p in stores["parameters"]}
