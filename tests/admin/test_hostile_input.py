"""No input makes the back office answer 5xx: every view, walked as an admin with hostile values.

The views come from the app's URL map and each list's filters from the view itself, so a new
screen is walked without being listed here.
"""

from __future__ import annotations

import re

import pytest

from tests.factories import stocked_variant

HOSTILE_PATH_VALUES = ["99999999999", "2147483648", "%00", "abc"]
HOSTILE_QUERY = [
    {"search": "\x00"}, {"search": "a\x00b"}, {"page": "-1"}, {"page": "99999999999999999999"},
    {"page": "abc"}, {"page_size": "-1"}, {"page_size": "100000000000"}, {"id": "abc"},
    {"id": "99999999999"}, {"id": "-1"}, {"id": "\x00"}, {"ids": "99999999999"}, {"ids": "1,abc,\x00"},
    {"ids": "1,2147483648"}, {"url": "\x00"}, {"sort": "99999999999"}, {"sort": "\x00"},
]
HOSTILE_FORMS = [
    {"action": "delete", "rowid": "99999999999"}, {"action": "activate", "rowid": "abc"},
    {"delta": "1e400", "reason": "correction", "note": "\x00"}, {"delta": "99999999999", "reason": "\x00"},
    {"amount": "NaN"}, {"amount": "Infinity"}, {"amount": "1e30"}, {"reason": "a\x00b"},
    {"carrier": "\x00", "tracking_1": "\x00"}, {"list_form_pk": "99999999999", "is_active": "y"},
]
_ARG = re.compile(r"<(?:[a-z]+(?:\([^)]*\))?:)?(\w+)>")


def _backoffice_rules(app):
    views = {view.blueprint.name: view for view in app.extensions["backoffice"]._views}
    for rule in app.url_map.iter_rules():
        blueprint = rule.endpoint.rsplit(".", 1)[0]
        if blueprint in views and not rule.endpoint.endswith(".static"):
            yield rule, views[blueprint]


def _urls(rule) -> list[str]:
    if not rule.arguments:
        return [rule.rule]
    return [_ARG.sub(value, rule.rule) for value in HOSTILE_PATH_VALUES]


def _filter_queries(view) -> list[dict]:
    queries = []
    for key in (getattr(view, "_filter_args", None) or {}):
        for value in ("99999999999", "NaN", "inf", "-1e400", "1e20", "\x00"):
            queries.append({f"flt0_{key}": value})
    return queries


@pytest.fixture
def admin_client(as_role, db):
    stocked_variant(quantity=5, price="9.99")
    db.session.commit()
    return as_role("admin")


@pytest.mark.slow  # ~25 s: some 2 000 requests
def test_every_backoffice_view_answers_hostile_values_without_a_5xx(app, admin_client):
    # Given every back-office URL, when its path, query string and form carry hostile values
    failures = []
    for rule, view in _backoffice_rules(app):
        for url in _urls(rule):
            for query in HOSTILE_QUERY + _filter_queries(view):
                if "GET" in rule.methods:
                    response = admin_client.get(url, query_string=query)
                    if response.status_code >= 500:
                        failures.append(("GET", url, query, response.status_code))
            if "POST" in rule.methods:
                for form in HOSTILE_FORMS:
                    response = admin_client.post(url, data=form)
                    if response.status_code >= 500:
                        failures.append(("POST", url, form, response.status_code))
    # Then nothing answers 5xx
    assert failures == []


@pytest.mark.parametrize("url", [
    "/admin/fulfillment/slip/99999999999",
    "/admin/inventory/adjust/99999999999",
    "/admin/order/details/?id=abc",
    "/admin/order/details/?id=99999999999",
    "/admin/fulfillment/picklist?ids=1,99999999999",
    "/admin/fulfillment/ship?ids=99999999999",
    "/admin/product/?page=-1",
    "/admin/product/?page=99999999999999",
])
def test_an_id_or_page_no_row_can_have_is_a_404(admin_client, url):
    # Given an id beyond 32 bits, text for an id or a page before the first or far past the last
    # When the page is opened
    response = admin_client.get(url)
    # Then it is not found
    assert response.status_code == 404


def test_a_nul_byte_in_a_search_is_a_400(admin_client):
    # Given a search holding a NUL byte, when the list is opened
    response = admin_client.get("/admin/order/", query_string={"search": "a\x00b"})
    # Then it is refused as malformed
    assert response.status_code == 400


def test_a_filter_value_beyond_the_columns_range_is_ignored_with_a_message(app, admin_client):
    # Given the product list's "base price" filter and a value no NUMERIC(10, 2) can hold
    view = next(v for v in app.extensions["backoffice"]._views if getattr(v, "endpoint", "") == "product")
    key = next(k for k, (_, flt) in view._filter_args.items() if "Base Price" in str(flt.name)
               and "greater" in str(flt.operation()))
    # When the list is filtered by it
    response = admin_client.get("/admin/product/", query_string={f"flt0_{key}": "1e20"})
    # Then the list shows, and says the filter was ignored
    assert response.status_code == 200
    assert b"out of range" in response.data
