"""The page layer in front of Flask: cached catalog pages answered as Flask answers them,
with the same access-log line, metrics and request id; everything else left to Flask."""

from __future__ import annotations

import io
import json
import logging

import pytest
import redis
from werkzeug.test import Client

from ecom.actor import SYSTEM
from ecom.catalog import cache_version
from ecom.catalog.services import update_product
from shop import page_layer
from shop.logging import JsonFormatter
from shop.metrics import http_metrics
from storefront_api import caching
from tests.conftest import make_test_app
from tests.factories import CategoryFactory, stocked_variant

pytestmark = pytest.mark.usefixtures("redis_url")

PAGES = [
    "/api/v1/products",
    "/api/v1/products?per_page=5&sort=name",
    "/api/v1/products/mug",
    "/api/v1/products/mug?pickup=true",
    "/api/v1/categories",
    "/api/v1/categories?tree=true",
    "/api/v1/categories/kitchen",
    "/api/v1/search/suggest?q=mu",
]
# Headers whose value is new on every answer.
PER_ANSWER = {"Date", "X-Request-ID"}


@pytest.fixture
def cache(app, db, redis_url):
    """The session app with the catalog cache on, against this test's Redis database."""
    saved = app.extensions.get(cache_version.CATALOG_VERSION.client_key)
    app.extensions[cache_version.CATALOG_VERSION.client_key] = redis.Redis.from_url(redis_url)
    saved_seconds = app.config["CATALOG_CACHE_SECONDS"]
    app.config["CATALOG_CACHE_SECONDS"] = 30
    app.extensions.pop(cache_version.CATALOG_VERSION.down_key, None)
    try:
        yield redis.Redis.from_url(redis_url)
    finally:
        app.extensions[cache_version.CATALOG_VERSION.client_key] = saved
        app.config["CATALOG_CACHE_SECONDS"] = saved_seconds
        app.extensions.pop(cache_version.CATALOG_VERSION.down_key, None)


@pytest.fixture
def catalog(db):
    kitchen = CategoryFactory(slug="kitchen", name="Kitchen")
    made = stocked_variant(quantity=8, price="12.50", sku="MUG-1")
    made.product.slug, made.product.name, made.product.category = "mug", "Mug", kitchen
    db.session.commit()
    return made


class Spy:
    """Counts the requests that reached Flask behind the layer (``flask_client``'s too)."""

    def __init__(self, layer: page_layer.PageLayer):
        self.flask = layer.wsgi_app
        self.calls = 0

    def __call__(self, environ, start_response):
        self.calls += 1
        return self.flask(environ, start_response)


@pytest.fixture
def behind(app, monkeypatch):
    def spy_on(target_app):
        layer = target_app.wsgi_app
        assert isinstance(layer, page_layer.PageLayer)
        spy = Spy(layer)
        monkeypatch.setattr(layer, "wsgi_app", spy)
        return spy

    return spy_on


def flask_client(target_app) -> Client:
    """A client of Flask alone, as it answered before the layer existed."""
    return Client(target_app.wsgi_app.wsgi_app)


def shape(response) -> tuple:
    headers = [(name, "-" if name in PER_ANSWER else value) for name, value in response.headers.items()]
    return response.status, response.get_data(), headers


def with_cookies(client, cookies: dict):
    for name, value in cookies.items():  # the test clients drop a Cookie header given as such
        client.set_cookie(name, value)
    return client


def both(target_app, spy, path, method="GET", cookies=None, **headers):
    """(the layer's answer, Flask's answer) to the same request, the page already cached."""
    warm = flask_client(target_app).open(path, method="GET")
    assert warm.status_code == 200, warm.get_data()
    before = spy.calls
    cookies = cookies or {}
    layered = with_cookies(target_app.test_client(), cookies).open(path, method=method, headers=headers)
    assert spy.calls == before, "the layer handed a cached page to Flask"
    reference = with_cookies(flask_client(target_app), cookies).open(path, method=method, headers=headers)
    assert reference.headers["X-Cache"] == "hit"
    return layered, reference


@pytest.mark.parametrize("path", PAGES)
def test_a_hit_is_answered_before_flask_as_flask_answers_it(app, cache, catalog, behind, path):
    spy = behind(app)
    layered, reference = both(app, spy, path)
    assert shape(layered) == shape(reference)
    assert layered.headers["X-Cache"] == "hit" and layered.headers["ETag"]
    assert len(layered.headers["X-Request-ID"]) == 32


@pytest.mark.parametrize("headers", [
    {"X-Request-ID": "shop-req-1"},
    {"X-Request-ID": "not a valid id!"},
    {"Authorization": "Bearer abc.def"},
    {"Accept": "application/json", "User-Agent": "bench"},
    {"cookies": {"theme": "dark"}},
])
def test_request_headers_change_the_answer_as_they_do_in_flask(app, cache, catalog, behind, headers):
    spy = behind(app)
    layered, reference = both(app, spy, "/api/v1/products/mug", **headers)
    if "cookies" in headers:
        assert layered.request.environ["HTTP_COOKIE"] == "theme=dark"
    assert shape(layered) == shape(reference)
    if headers.get("X-Request-ID") == "shop-req-1":
        assert layered.headers["X-Request-ID"] == reference.headers["X-Request-ID"] == "shop-req-1"
    if "Authorization" in headers:
        assert layered.headers["Cache-Control"] == "no-store"


def test_conditional_and_head_requests_match_flask(app, cache, catalog, behind):
    spy = behind(app)
    etag = flask_client(app).get("/api/v1/products/mug").headers["ETag"]
    for method, headers in [("GET", {"If-None-Match": etag}), ("GET", {"If-None-Match": f"W/{etag}"}),
                            ("GET", {"If-None-Match": '"other"'}), ("HEAD", {}),
                            ("HEAD", {"If-None-Match": etag})]:
        layered, reference = both(app, spy, "/api/v1/products/mug", method=method, **headers)
        assert shape(layered) == shape(reference), (method, headers)
    not_modified, _ = both(app, spy, "/api/v1/products/mug", **{"If-None-Match": etag})
    assert not_modified.status_code == 304 and not_modified.get_data() == b""


def test_production_headers_match_flask(app, cache, catalog, behind, monkeypatch):
    monkeypatch.setitem(app.config, "ENV_NAME", "production")
    spy = behind(app)
    layered, reference = both(app, spy, "/api/v1/products")
    assert shape(layered) == shape(reference)
    assert "Strict-Transport-Security" in layered.headers


@pytest.mark.parametrize("origins", [["https://shop.example"],
                                     ["https://shop.example", "https://m.shop.example"]])
@pytest.mark.parametrize("origin", [None, "https://shop.example", "https://evil.example"])
def test_cors_headers_match_flask(app, cache, catalog, behind, redis_url, origins, origin):
    # Another web process with CORS configured, reading the pages this test's app cached.
    other = make_test_app(app.config["SQLALCHEMY_DATABASE_URI"], REDIS_URL=redis_url,
                          CATALOG_CACHE_SECONDS=30, CORS_ORIGINS=origins)
    app.test_client().get("/api/v1/products/mug")  # cached from this test's data
    spy = behind(other)
    headers = {"Origin": origin} if origin else {}
    layered, reference = both(other, spy, "/api/v1/products/mug", **headers)
    assert shape(layered) == shape(reference)
    if origin == "https://shop.example":
        assert layered.headers["Access-Control-Allow-Origin"] == origin


def test_each_hit_writes_the_access_log_line_and_metrics_flask_writes(app, cache, catalog, behind):
    spy = behind(app)
    flask_client(app).get("/api/v1/products/mug")
    metrics = http_metrics(app)
    counter = metrics.requests_total.labels("/api/v1/products/<slug>", "GET", "200")
    latency = metrics.latency.labels("/api/v1/products/<slug>", "GET")
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    logger = logging.getLogger("ecom")
    logger.addHandler(handler)
    level = logger.level
    logger.setLevel(logging.INFO)
    try:
        counted, observed, flask_calls = counter._value.get(), latency._sum.get(), spy.calls
        layered = app.test_client().get("/api/v1/products/mug?token=secret",
                                        headers={"X-Request-ID": "req-7"})
        assert spy.calls == flask_calls
        assert counter._value.get() == counted + 1 and latency._sum.get() > observed
        flask_client(app).get("/api/v1/products/mug?token=secret", headers={"X-Request-ID": "req-8"})
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)
    lines = [json.loads(line) for line in stream.getvalue().splitlines()]
    requests = [line for line in lines if line["message"] == "request"]
    assert [line["request_id"] for line in requests] == ["req-7", "req-8"]
    ours, flasks = requests
    assert isinstance(ours["duration_ms"], float)
    assert list(ours) == list(flasks)  # the same fields, in the same order
    same = {k: v for k, v in ours.items() if k not in ("timestamp", "duration_ms", "request_id")}
    assert same == {k: v for k, v in flasks.items() if k not in ("timestamp", "duration_ms", "request_id")}
    assert same["path"] == "/api/v1/products/mug" and same["status"] == 200
    assert "secret" not in stream.getvalue()
    assert layered.headers["X-Request-ID"] == "req-7"


def test_a_304_is_counted_and_logged_as_304(app, cache, catalog, behind):
    behind(app)
    etag = flask_client(app).get("/api/v1/products").headers["ETag"]
    counter = http_metrics(app).requests_total.labels("/api/v1/products", "GET", "304")
    counted = counter._value.get()
    assert app.test_client().get("/api/v1/products", headers={"If-None-Match": etag}).status_code == 304
    assert counter._value.get() == counted + 1


def test_a_catalog_write_makes_the_next_request_a_fresh_miss(app, cache, db, catalog, behind):
    spy = behind(app)
    client = app.test_client()
    assert client.get("/api/v1/products/mug").headers["X-Cache"] == "miss"
    assert client.get("/api/v1/products/mug").headers["X-Cache"] == "hit" and spy.calls == 1
    update_product(catalog.product, name="Big Mug", actor=SYSTEM)
    db.session.commit()
    fresh = client.get("/api/v1/products/mug")
    assert (fresh.headers["X-Cache"], fresh.json["name"], spy.calls) == ("miss", "Big Mug", 2)
    again = client.get("/api/v1/products/mug")
    assert (again.headers["X-Cache"], again.json["name"], spy.calls) == ("hit", "Big Mug", 2)


def test_a_miss_reads_redis_once_and_flask_stores_the_page(app, cache, catalog, behind, monkeypatch):
    behind(app)
    reads = []
    real = caching.read_page

    def counted(*args):
        reads.append(args[2])
        return real(*args)

    monkeypatch.setattr(caching, "read_page", counted)
    monkeypatch.setattr(page_layer, "read_page", counted)
    client = app.test_client()
    assert client.get("/api/v1/products/mug").headers["X-Cache"] == "miss"
    assert reads == [caching.PAGE_PREFIX + "/api/v1/products/mug"]
    assert client.get("/api/v1/products/mug").headers["X-Cache"] == "hit"
    assert len(reads) == 2


@pytest.mark.parametrize("request_args", [
    ("/api/v1/products?per_page=abc", "GET", {}, {}),            # refused by the endpoint: 400
    ("/api/v1/products/mug/reviews", "GET", {}, {}),             # not a cached page
    ("/api/v1/products/mug", "GET", {}, {"session": "x"}),       # Flask may refresh the cookie
    ("/api/v1/products/mug", "GET", {}, {"remember_token": "x"}),
    ("/api/v1/products/mug", "GET", {"Range": "bytes=0-10"}, {}),
    ("/api/v1/products/mug", "GET", {"If-Match": '"x"'}, {}),
    ("/api/v1/products/mug", "OPTIONS", {}, {}),
    ("/api/v1/products/mug", "POST", {}, {}),
    ("/api/v1/products/mug/", "GET", {}, {}),                    # no such route
    ("/api/v1/nothing", "GET", {}, {}),
])
def test_what_the_layer_must_not_answer_goes_to_flask(app, cache, catalog, behind, request_args):
    path, method, headers, cookies = request_args
    flask_client(app).get("/api/v1/products/mug")  # cached
    flask_client(app).get("/api/v1/products")
    spy = behind(app)
    layered = with_cookies(app.test_client(), cookies).open(path, method=method, headers=headers)
    assert spy.calls == 1
    reference = with_cookies(flask_client(app), cookies).open(path, method=method, headers=headers)
    assert shape(layered) == shape(reference)


def test_the_layer_stays_out_while_the_cache_is_off(app, cache, catalog, behind, monkeypatch):
    flask_client(app).get("/api/v1/products/mug")
    spy = behind(app)
    monkeypatch.setitem(app.config, "CATALOG_CACHE_SECONDS", 0)
    response = app.test_client().get("/api/v1/products/mug")
    assert response.status_code == 200 and "X-Cache" not in response.headers and spy.calls == 1


def test_without_redis_flask_answers_from_the_database_and_redis_is_read_once(
        app, cache, catalog, behind, monkeypatch):
    spy = behind(app)
    calls = []

    class DeadRedis:
        def mget(self, keys):
            calls.append("read")
            raise redis.ConnectionError("Connection refused")

    monkeypatch.setitem(app.extensions, cache_version.CATALOG_VERSION.client_key, DeadRedis())
    monkeypatch.delitem(app.extensions, "ecom_page_reader", raising=False)
    monkeypatch.setattr(cache_version.CATALOG_VERSION, "backoff_seconds", 0)
    try:
        for count in (1, 2):
            response = app.test_client().get("/api/v1/products/mug")
            assert response.status_code == 200 and response.json["slug"] == "mug"
            assert "X-Cache" not in response.headers
            assert calls == ["read"] * count and spy.calls == count  # the decorator did not retry
    finally:
        app.extensions.pop("ecom_page_reader", None)


def test_an_unexpected_error_in_the_layer_is_logged_and_flask_answers(app, cache, catalog, behind,
                                                                      monkeypatch, caplog):
    flask_client(app).get("/api/v1/products/mug")
    spy = behind(app)

    def broken(*args, **kwargs):
        raise RuntimeError("bug")

    monkeypatch.setattr(page_layer, "api_headers", broken)
    with caplog.at_level(logging.ERROR, logger="ecom.page_layer"):
        response = app.test_client().get("/api/v1/products/mug")
    assert response.status_code == 200 and response.headers["X-Cache"] == "hit" and spy.calls == 1
    assert "page layer" in caplog.text


def test_cached_pages_stay_free_of_rate_limits(app, cache, catalog, behind):
    # As in Flask (storefront_api.caching._is_cached_page): no limit, no limit headers.
    behind(app)
    flask_client(app).get("/api/v1/products")
    responses = [app.test_client().get("/api/v1/products") for _ in range(30)]
    assert {r.status_code for r in responses} == {200}
    assert not any(name.lower().startswith(("x-ratelimit", "retry-after"))
                   for r in responses for name, _ in r.headers.items())

