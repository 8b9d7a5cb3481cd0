"""/api/v1/docs in a real Chromium: Swagger UI 5 renders the OpenAPI 3.1 document, every
operation is listed, the guide (headers, test payment methods) is shown, and the page's
Content-Security-Policy refuses nothing it needs. A screenshot goes to test-artifacts/."""

from __future__ import annotations

import json
import urllib.request

from tests.admin.test_e2e_browser import live_app  # noqa: F401 - its fixture
from tests.browser_support import ARTIFACTS, pytestmark, refusals  # noqa: F401 - the marks


def documented_operations(base: str) -> list[tuple[str, str]]:
    with urllib.request.urlopen(f"{base}/api/v1/openapi.json") as answer:
        document = json.load(answer)
    return [(method.upper(), path) for path, item in document["paths"].items() for method in item]


def test_the_docs_page_lists_every_operation(live_app, page):  # noqa: F811
    _, base, _ = live_app
    refused = refusals(page)
    expected = documented_operations(base)

    # when a frontend developer opens the docs
    page.goto(f"{base}/api/v1/docs")

    # then Swagger UI rendered the definition (Swagger UI 4 showed "Unable to render this definition")
    page.wait_for_selector(".swagger-ui .opblock")
    page.wait_for_load_state("networkidle")
    assert page.locator("text=Unable to render this definition").count() == 0
    assert page.locator(".swagger-ui .version-stamp, .swagger-ui .version").first.is_visible()
    # and every operation of the document is listed, by method and path
    shown = page.eval_on_selector_all(
        ".opblock",
        """blocks => blocks.map(b => [b.querySelector('.opblock-summary-method').textContent.trim(),
                                     b.querySelector('.opblock-summary-path').getAttribute('data-path')])""",
    )
    assert sorted(map(tuple, shown)) == sorted(expected)
    assert ("GET", "/api/v1/categories") in expected and ("GET", "/api/v1/search/suggest") in expected
    # and the guide is there: the test payment methods and the headers
    for text in ("pm_card_visa", "pm_card_chargeDeclinedInsufficientFunds", "pm_card_threeDSecure2Required",
                 "X-Order-Token", "Idempotency-Key", "Retry-After", "shortages"):
        assert page.locator(".swagger-ui .info").get_by_text(text).first.is_visible(), text
    page.screenshot(path=str(ARTIFACTS / "api-docs.png"), full_page=False)

    # and an operation opens with its parameters (the product list's facets and filters)
    page.locator(".opblock-summary-path[data-path='/api/v1/products']").first.click()
    page.wait_for_selector("tr[data-param-name='min_price']")
    page.screenshot(path=str(ARTIFACTS / "api-docs-products.png"), full_page=False)
    assert refused == [], refused


def test_an_operation_can_be_tried_from_the_docs_page(live_app, page):  # noqa: F811
    _, base, _ = live_app
    refused = refusals(page)
    page.goto(f"{base}/api/v1/docs#/catalog/api_list_categories")

    # when the developer tries the category tree from the page
    block = page.locator("#operations-catalog-api_list_categories")
    block.wait_for()
    if not block.locator(".try-out__btn").is_visible():
        block.locator(".opblock-summary").click()
    block.locator(".try-out__btn").click()
    block.locator("tr[data-param-name='tree'] select").select_option("true")
    block.locator(".execute").click()

    # then the browser called the API (the page's CSP allows it) and shows its 200 answer
    status = block.locator(".live-responses-table tr.response .response-col_status").first
    status.wait_for()
    assert status.inner_text().strip() == "200"
    assert "/api/v1/categories?tree=true" in block.locator(".request-url").inner_text()
    page.screenshot(path=str(ARTIFACTS / "api-docs-try-it-out.png"), full_page=False)
    assert refused == [], refused
