"""The Content-Security-Policy as a browser applies it: the back office and the API docs still
work in Chromium, and nothing they need is refused."""

from __future__ import annotations

from tests.admin.test_e2e_browser import live_app, sign_in  # noqa: F401 - its fixture
from tests.browser_support import pytestmark, refusals  # noqa: F401 - the marks


def test_the_back_office_runs_its_scripts_under_its_csp(live_app, page):  # noqa: F811
    app, base, order_id = live_app
    refused = refusals(page)
    sign_in(page, base, "merch@e2e.test")

    # when a merchandiser opens a form with inline lists and adds a row to one
    page.goto(f"{base}/admin/product/new/")
    page.click("#variants-button")
    page.wait_for_selector("#variants-0-sku")
    # and opens the bulk actions of the product list (Flask-Admin's inline handlers)
    page.goto(f"{base}/admin/product/")
    page.click("text=With selected")
    page.wait_for_selector("text=Activate")

    # then the back office's response carries the strict policy, and the browser refused nothing
    csp = page.evaluate("() => fetch(location.href).then(r => r.headers.get('content-security-policy'))")
    assert "script-src 'self' 'nonce-" in csp and "'unsafe-inline'" not in csp.split(";")[1]
    assert refused == [], refused


def test_the_api_docs_render_under_their_csp(live_app, page):  # noqa: F811
    _, base, _ = live_app
    refused = refusals(page)

    # when the Swagger UI is opened
    page.goto(f"{base}/api/v1/docs")

    # then its scripts ran (the page is built by them) and the browser refused nothing
    page.wait_for_selector(".swagger-ui .topbar")
    page.wait_for_load_state("networkidle")
    assert refused == [], refused
