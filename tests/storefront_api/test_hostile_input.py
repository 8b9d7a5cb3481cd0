"""No input makes the API answer 5xx: every route, walked with hostile path, query and body values.

The routes come from the app's URL map, so a new endpoint is walked without being listed here.
"""

from __future__ import annotations

import json
import re

import pytest

from tests.factories import UserFactory
from tests.storefront_api.conftest import bearer

# Path values: a NUL byte, a lone surrogate's escape, an id no integer column holds, text for an id.
HOSTILE_PATH_VALUES = ["%00", "a%00b", "%ED%A0%80", "99999999999", "2147483648", "abc", "-1", "1e309"]
# Query values every route receives, whatever it declares.
HOSTILE_QUERY = [
    {"page": "-1"}, {"page": "99999999999999999999"}, {"per_page": "-5"}, {"per_page": "10000000000"},
    {"q": "\x00"}, {"q": "a\x00b"}, {"category": "\x00"}, {"sort": "\x00"}, {"min_price": "NaN"},
    {"max_price": "Infinity"}, {"min_price": "1e400"}, {"store_id": "99999999999"}, {"lat": "NaN"},
    {"lng": "inf"}, {"radius_km": "-Infinity"}, {"page": "\x00"},
]
# Bodies every writing route receives: deep nesting and numbers no column holds.
HOSTILE_BODIES = [
    "[" * 100_000 + "]" * 100_000,
    '{"a":' * 5_000 + "1" + "}" * 5_000,
    json.dumps({"quantity": 99999999999, "variant_id": 99999999999}),
    '{"quantity": NaN, "variant_id": Infinity}',
    json.dumps({"quantity": -99999999999, "variant_id": -1}),
    json.dumps({"email": "a\x00@example.com", "password": "x\x00" * 10}),
]
_ARG = re.compile(r"<(?:[a-z]+(?:\([^)]*\))?:)?(\w+)>")


def _api_rules(app):
    for rule in app.url_map.iter_rules():
        if rule.rule.startswith("/api/") or rule.endpoint.startswith("webhooks."):
            for method in sorted((rule.methods or set()) - {"HEAD", "OPTIONS"}):
                yield rule, method


def _urls(rule) -> list[str]:
    if not rule.arguments:
        return [rule.rule]
    return [_ARG.sub(value, rule.rule) for value in HOSTILE_PATH_VALUES]


@pytest.fixture
def walker(app, db):
    user = UserFactory()
    db.session.commit()
    headers = bearer(user)
    client = app.test_client()

    def call(method: str, url: str, **kwargs):
        return client.open(url, method=method, headers=headers, **kwargs)

    return call


@pytest.mark.slow
def test_every_api_route_answers_hostile_path_and_query_values_without_a_5xx(app, walker):
    # Given every API route, when each path argument holds a hostile value and the query
    # string carries hostile values too
    failures = []
    for rule, method in _api_rules(app):
        for url in _urls(rule):
            for query in HOSTILE_QUERY:
                response = walker(method, url, query_string=query)
                if response.status_code >= 500:
                    failures.append((method, url, query, response.status_code))
                elif response.status_code >= 400 and response.is_json:
                    assert "detail" in response.get_json(), (method, url)
    # Then nothing answers 5xx
    assert failures == []


def test_every_writing_api_route_answers_hostile_bodies_without_a_5xx(app, walker):
    # Given every API route that takes a body, when it receives deep nesting or numbers no
    # column can hold
    failures = []
    for rule, method in _api_rules(app):
        if method not in {"POST", "PUT", "PATCH", "DELETE"}:
            continue
        url = _ARG.sub("1", rule.rule)
        for body in HOSTILE_BODIES:
            response = walker(method, url, data=body, content_type="application/json")
            if response.status_code >= 500:
                failures.append((method, url, body[:40], response.status_code))
    # Then nothing answers 5xx
    assert failures == []


def test_a_nul_byte_in_a_path_segment_is_a_404_with_the_error_shape(client):
    # Given a product slug holding a NUL byte, when it is requested
    response = client.get("/api/v1/products/%00")
    # Then the API says it does not exist, in its usual shape
    assert response.status_code == 404
    assert response.get_json() == {"detail": "Not found."}


def test_a_nul_byte_in_an_undeclared_query_value_is_a_400(client):
    # Given a route that declares no query parameters, when one carries a NUL byte
    response = client.get("/api/v1/categories", query_string={"x": "a\x00"})
    # Then it is refused as malformed, not passed on
    assert response.status_code == 400
    assert "detail" in response.get_json()


def test_deeply_nested_json_is_a_400(client):
    # Given a body nested far deeper than any request needs
    body = "[" * 100_000 + "]" * 100_000
    # When it is posted
    response = client.post("/api/v1/auth/login", data=body, content_type="application/json")
    # Then it is refused as malformed
    assert response.status_code == 400
    assert "nested" in response.get_json()["detail"]
