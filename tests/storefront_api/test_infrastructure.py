"""The API's plumbing: JSON errors, request validation, OpenAPI, docs, CORS, pagination."""

from __future__ import annotations

import pytest

from ecom.errors import (
    AuthenticationFailed,
    Conflict,
    GatewayUnavailable,
    NotFound,
    OutOfStock,
    PaymentDeclined,
    PermissionDenied,
    ValidationFailed,
)
from storefront_api.errors import handle_ecom_error
from storefront_api.openapi import build_openapi
from tests.conftest import make_test_app


def test_unknown_api_path_is_json_404(client):
    response = client.get("/api/v1/no-such-thing")

    assert response.status_code == 404
    assert response.is_json
    assert response.json == {"detail": "Not found."}


def test_wrong_method_is_json_405_with_allow(client):
    response = client.put("/api/v1/categories")

    assert response.status_code == 405
    assert response.is_json
    assert "detail" in response.json
    assert "GET" in response.headers["Allow"]


def test_paths_outside_the_api_keep_default_error_pages(client):
    response = client.get("/no-such-page")

    assert response.status_code == 404
    assert not response.is_json


def test_body_that_is_not_json_is_400(client):
    response = client.post(
        "/api/v1/auth/login", data="email=a", content_type="application/x-www-form-urlencoded"
    )

    assert response.status_code == 400
    assert "JSON" in response.json["detail"]


def test_malformed_json_is_400(client):
    response = client.post("/api/v1/auth/login", data="{not json", content_type="application/json")

    assert response.status_code == 400
    assert response.json["detail"] == "The request body is not valid JSON."


def test_json_that_fails_validation_is_422_with_errors_per_field(client):
    response = client.post("/api/v1/auth/signup", json={"email": "not-an-email", "password": "short"})

    assert response.status_code == 422
    assert set(response.json["errors"]) >= {"email", "password"}
    assert all(isinstance(messages, list) for messages in response.json["errors"].values())


def test_json_array_body_is_422_not_500(client):
    response = client.post("/api/v1/auth/login", json=[1, 2])

    assert response.status_code == 422
    assert "body" in response.json["errors"]


def test_unknown_body_fields_are_refused(client):
    response = client.post("/api/v1/auth/login", json={"email": "a@b.co", "password": "x", "admin": True})

    assert response.status_code == 422
    assert "admin" in response.json["errors"]


def test_nul_characters_are_refused_before_reaching_the_database(client):
    body = client.post("/api/v1/auth/login", json={"email": "a\x00@b.co", "password": "x"})
    query = client.get("/api/v1/products?q=sh%00oe")

    assert body.status_code == 422
    assert "email" in body.json["errors"]
    assert query.status_code == 400


@pytest.mark.parametrize("query", ["page=0", "page=abc", "per_page=101", "per_page=0", "sort=cheapest",
                                   "min_price=-1", "min_price=1.234", "featured=maybe"])
def test_malformed_query_parameters_are_400(client, query):
    response = client.get(f"/api/v1/products?{query}")

    assert response.status_code == 400
    assert response.json["errors"]


def test_huge_path_ids_are_404_not_a_database_error(client):
    response = client.get("/api/v1/stores/99999999999999999999")

    assert response.status_code == 404
    assert response.is_json


@pytest.mark.parametrize(
    ("error", "status"),
    [
        (NotFound("x"), 404),
        (ValidationFailed("x", {"f": ["bad"]}), 422),
        (AuthenticationFailed("x"), 401),
        (PermissionDenied("x"), 403),
        (Conflict("x"), 409),
        (OutOfStock({"SKU-1": 2}), 409),
        (PaymentDeclined("x"), 402),
        (GatewayUnavailable("x"), 503),
        (GatewayUnavailable("x", status=502), 502),
    ],
)
def test_domain_errors_map_to_contract_status_codes(app, db, error, status):
    with app.test_request_context("/api/v1/anything"):
        response = handle_ecom_error(error)

    assert response.status_code == status
    assert response.json["detail"] == "x" or isinstance(error, OutOfStock)
    if status == 401:
        assert response.headers["WWW-Authenticate"] == "Bearer"
    if status == 422:
        assert response.json["errors"] == {"f": ["bad"]}


def test_unexpected_errors_are_json_500_without_internals(app, db):
    from storefront_api.errors import handle_unexpected

    with app.test_request_context("/api/v1/anything"):
        response = handle_unexpected(RuntimeError("secret internals"))

    assert response.status_code == 500
    assert response.json == {"detail": "Internal server error."}


def test_every_response_carries_a_request_id_echoing_a_valid_one(client):
    echoed = client.get("/api/v1/categories", headers={"X-Request-ID": "abc-123"})
    invalid = client.get("/api/v1/categories", headers={"X-Request-ID": "bad id with spaces"})
    error = client.get("/api/v1/nothing-here")

    assert echoed.headers["X-Request-ID"] == "abc-123"
    assert invalid.headers["X-Request-ID"] != "bad id with spaces"
    assert error.headers["X-Request-ID"]


def test_openapi_document_lists_every_storefront_endpoint(client):
    response = client.get("/api/v1/openapi.json")

    document = response.json
    assert response.status_code == 200
    assert document["openapi"].startswith("3.1")
    expected = {
        ("/api/v1/auth/signup", "post"), ("/api/v1/auth/login", "post"), ("/api/v1/me", "get"),
        ("/api/v1/me", "patch"), ("/api/v1/me/password", "post"), ("/api/v1/me/addresses", "get"),
        ("/api/v1/me/addresses", "post"), ("/api/v1/me/addresses/{address_id}", "get"),
        ("/api/v1/me/addresses/{address_id}", "patch"), ("/api/v1/me/addresses/{address_id}", "delete"),
        ("/api/v1/categories", "get"), ("/api/v1/categories/{slug}", "get"), ("/api/v1/products", "get"),
        ("/api/v1/products/{slug}", "get"), ("/api/v1/products/{slug}/reviews", "get"),
        ("/api/v1/products/{slug}/reviews", "post"), ("/api/v1/stores", "get"),
        ("/api/v1/stores/{store_id}", "get"), ("/api/v1/cart", "get"), ("/api/v1/cart/items", "post"),
        ("/api/v1/cart/items/{item_id}", "patch"), ("/api/v1/cart/items/{item_id}", "delete"),
    }
    declared = {(path, method) for path, item in document["paths"].items() for method in item}
    assert expected <= declared
    signup = document["paths"]["/api/v1/auth/signup"]["post"]
    assert signup["requestBody"]["content"]["application/json"]["schema"]["$ref"].endswith("SignupIn")
    assert {"201", "409", "422"} <= set(signup["responses"])
    me = document["paths"]["/api/v1/me"]["get"]
    assert me["security"] == [{"bearerAuth": []}]
    assert "401" in me["responses"]


def test_openapi_operation_ids_are_unique(app):
    document = build_openapi(app)

    ids = [op["operationId"] for item in document["paths"].values() for op in item.values()]
    assert len(ids) == len(set(ids))


def test_money_fields_are_declared_as_two_place_strings(client):
    schemas = client.get("/api/v1/openapi.json").json["components"]["schemas"]

    total = schemas["CartOut"]["properties"]["total"]
    assert total["type"] == "string"
    assert total["pattern"] == r"^-?\d+\.\d{2}$"


def test_swagger_ui_is_served_locally(client):
    page = client.get("/api/v1/docs")
    script = client.get("/api/v1/docs/static/swagger-ui-bundle.js")
    init = client.get("/api/v1/docs/swagger-initializer.js")

    assert page.status_code == 200
    assert b"/api/v1/docs/static/swagger-ui-bundle.js" in page.data
    assert b"cdn" not in page.data.lower()
    assert script.status_code == 200 and len(script.data) > 100_000
    assert b"/api/v1/openapi.json" in init.data


def test_cors_allows_only_configured_origins(database_url):
    app = make_test_app(database_url, CORS_ORIGINS=["https://shop.example.com"])
    client = app.test_client()

    allowed = client.get("/api/v1/openapi.json", headers={"Origin": "https://shop.example.com"})
    refused = client.get("/api/v1/openapi.json", headers={"Origin": "https://evil.example.net"})

    assert allowed.headers["Access-Control-Allow-Origin"] == "https://shop.example.com"
    assert "Access-Control-Allow-Origin" not in refused.headers


def test_without_cors_origins_no_cross_origin_access(client):
    response = client.get("/api/v1/openapi.json", headers={"Origin": "https://shop.example.com"})

    assert "Access-Control-Allow-Origin" not in response.headers


def test_paginate_counts_all_rows_and_returns_one_page(app, db):
    from sqlalchemy import select

    from ecom.stores.models import Store
    from storefront_api.pagination import paginate
    from tests.factories import StoreFactory

    for index in range(7):
        StoreFactory(name=f"Store {index}")

    page = paginate(select(Store).order_by(Store.name), page=2, per_page=3, render=lambda store: store.name)

    assert page["items"] == ["Store 3", "Store 4", "Store 5"]
    assert (page["page"], page["per_page"], page["total"], page["pages"]) == (2, 3, 7, 3)


def test_out_of_stock_answers_list_the_shortages(app, db):
    with app.test_request_context("/api/v1/cart/items"):
        response = handle_ecom_error(OutOfStock({"SKU-1": 2}))

    assert response.json["detail"] == "Insufficient stock for: SKU-1 (available: 2)."
    assert response.json["shortages"] == {"SKU-1": 2}
