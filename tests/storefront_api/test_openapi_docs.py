"""The OpenAPI document is valid OpenAPI 3.1 and documents what a frontend needs beyond the
operations: the headers, the error extensions, the test payment methods; the docs page is
Swagger UI 5 served from the installed package."""

from __future__ import annotations

import pytest
from openapi_spec_validator import OpenAPIV31SpecValidator

from ecom.commerce.gateways.base import AUTHENTICATION_TEST_PAYMENT_METHODS, DECLINING_TEST_PAYMENT_METHODS
from ecom.commerce.gateways.simulated import SUCCEEDING_TEST_PAYMENT_METHODS


@pytest.fixture
def document(client):
    return client.get("/api/v1/openapi.json").get_json()


def test_the_document_is_valid_openapi_3_1(document):
    assert document["openapi"].startswith("3.1")
    errors = [error.message for error in OpenAPIV31SpecValidator(document).iter_errors()]
    assert errors == []


def test_the_validator_would_catch_a_broken_document(document):
    broken = dict(document, paths={"/x": {"get": {"responses": {"200": {"headers": 1}}}}})
    assert list(OpenAPIV31SpecValidator(broken).iter_errors()) != []


def test_every_test_payment_method_is_documented(document):
    text = document["info"]["description"]
    checkout = next(tag for tag in document["tags"] if tag["name"] == "checkout")["description"]
    methods = (SUCCEEDING_TEST_PAYMENT_METHODS | DECLINING_TEST_PAYMENT_METHODS
               | AUTHENTICATION_TEST_PAYMENT_METHODS)
    assert {"pm_card_threeDSecure2Required", "pm_card_authenticationRequired"} <= methods
    for method in methods:
        assert f"`{method}`" in text and f"`{method}`" in checkout, method
    assert "insufficient funds" in text


@pytest.mark.parametrize("header", ["X-Cart-Token", "X-Order-Token", "X-Request-ID", "Idempotency-Key",
                                    "Retry-After", "Authorization"])
def test_every_header_is_explained(document, header):
    assert f"| `{header}` |" in document["info"]["description"]


def test_responses_declare_their_headers(document):
    products = document["paths"]["/api/v1/products"]["get"]["responses"]
    assert products["200"]["headers"]["X-Request-ID"] == {"$ref": "#/components/headers/X-Request-ID"}
    login = document["paths"]["/api/v1/auth/login"]["post"]["responses"]
    assert "Retry-After" in login["429"]["headers"]
    cart = document["paths"]["/api/v1/cart"]["get"]["responses"]["200"]
    assert "X-Cart-Token" in cart["headers"]
    assert set(document["components"]["headers"]) >= {"X-Request-ID", "Retry-After"}


def test_error_extensions_are_in_the_error_schema(document):
    error = document["components"]["schemas"]["ErrorOut"]["properties"]
    assert {"detail", "errors", "shortages"} <= set(error)
    assert "shortages" in document["info"]["description"]


def test_the_docs_page_is_swagger_ui_5_from_the_package(client):
    page = client.get("/api/v1/docs")
    bundle = client.get("/api/v1/docs/static/swagger-ui-bundle.js")

    assert page.status_code == 200 and b"<script>" not in page.data  # no inline script for the CSP
    assert b'PACKAGE_VERSION:"5.' in bundle.data
    assert client.get("/api/v1/docs/static/swagger-ui.css").status_code == 200
    assert client.get("/api/v1/docs/static/../templates/__init__.py").status_code == 404
    assert client.get("/api/v1/docs/static/oauth2-redirect.html").status_code == 404


def test_operation_descriptions_are_markdown_prose_not_code_blocks(document):
    # A docstring's continuation lines are indented; left so, Markdown renders them as code.
    descriptions = [op.get("description", "") for item in document["paths"].values() for op in item.values()]
    assert any("\n" in text for text in descriptions)
    assert [line for text in descriptions for line in text.splitlines() if line.startswith("    ")] == []
