"""What the browser tests share: Debian's Chromium driven by Playwright (the ``browser`` and
``page`` fixtures, a plugin of tests/conftest.py), their marks, the screenshots' folder, the CSP
refusals a page reports, an app served on 127.0.0.1 from a thread, and a JSON call to it."""

from __future__ import annotations

import json
import os
import shutil
import threading
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from ecom.config import PROJECT_ROOT

CHROMIUM = os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium")
ARTIFACTS = PROJECT_ROOT / "test-artifacts"

try:
    from playwright.sync_api import sync_playwright
except ImportError:  # pragma: no cover - playwright is pinned in requirements-dev.txt
    sync_playwright = None

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(sync_playwright is None, reason="playwright is not installed"),
    pytest.mark.skipif(not (Path(CHROMIUM).exists() or shutil.which("chromium")),
                       reason=f"chromium not found at {CHROMIUM} "
                              "(apt-get install -y chromium; CI installs it)"),
]


@pytest.fixture(scope="module")
def browser():
    ARTIFACTS.mkdir(exist_ok=True)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM if Path(CHROMIUM).exists() else shutil.which("chromium"),
            headless=True, args=["--no-sandbox", "--disable-gpu", "--disable-background-networking"])
        try:
            yield browser
        finally:
            browser.close()


@pytest.fixture
def page(browser):
    """A fresh page; a confirm() (Flask-Admin's "are you sure?") is answered yes, as its user would."""
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    page = context.new_page()
    page.set_default_timeout(15_000)
    page.on("dialog", lambda dialog: dialog.accept())
    yield page
    context.close()


def refusals(browser_page) -> list[str]:
    """The Content-Security-Policy refusals the page's console reports from now on."""
    seen: list[str] = []
    browser_page.on("console", lambda message: seen.append(message.text)
                    if "Content Security Policy" in message.text else None)
    return seen


@contextmanager
def served(app) -> Iterator[str]:
    """``app`` served on 127.0.0.1 (a free port) from a thread; yields its base URL."""
    from werkzeug.serving import make_server

    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        thread.join(timeout=10)


def call(base: str, method: str, path: str, body: dict | None = None, **headers) -> tuple[int, dict]:
    """(status, JSON answer) of a request to the served app."""
    request = urllib.request.Request(f"{base}{path}", method=method,
                                     data=json.dumps(body).encode() if body is not None else None,
                                     headers={"Content-Type": "application/json", **headers})
    try:
        with urllib.request.urlopen(request, timeout=15) as response:
            return response.status, json.loads(response.read() or b"{}")
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read() or b"{}")
