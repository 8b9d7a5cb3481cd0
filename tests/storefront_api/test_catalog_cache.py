"""The catalog page cache: hits while the catalog is unchanged, misses after any catalog write."""

from __future__ import annotations

import time
from decimal import Decimal

import pytest
import redis
from sqlalchemy import text, update

from ecom.actor import SYSTEM
from ecom.cache_versions import WRITES
from ecom.catalog import cache_version
from ecom.catalog.services import update_product
from ecom.inventory.models import Inventory, MovementReason
from ecom.inventory.services import adjust_stock, reserve_stock
from storefront_api.caching import PAGE_PREFIX, PageReader
from tests.conftest import make_test_app
from tests.factories import ProductFactory, make_order, stocked_variant


@pytest.fixture
def cache(app, db, redis_url):
    """The session app with the catalog cache on, against this test's Redis database."""
    saved = app.extensions.get(cache_version.CATALOG_VERSION.client_key)
    app.extensions[cache_version.CATALOG_VERSION.client_key] = redis.Redis.from_url(redis_url)
    saved_seconds = app.config["CATALOG_CACHE_SECONDS"]
    app.config["CATALOG_CACHE_SECONDS"] = 30
    try:
        yield redis.Redis.from_url(redis_url)
    finally:
        app.extensions[cache_version.CATALOG_VERSION.client_key] = saved
        app.config["CATALOG_CACHE_SECONDS"] = saved_seconds


@pytest.fixture
def variant(db):
    made = stocked_variant(quantity=8, price="12.50", sku="MUG-1")
    made.product.slug = "mug"
    db.session.commit()
    return made


def get(client, path, **headers):
    return client.get(path, headers=headers)


def slugs(response) -> list[str]:
    return [item["slug"] for item in response.json["items"]]


def test_second_request_is_served_from_the_cache_with_the_same_body(client, cache, variant):
    first = get(client, "/api/v1/products/mug")
    second = get(client, "/api/v1/products/mug")
    assert first.status_code == second.status_code == 200
    assert (first.headers["X-Cache"], second.headers["X-Cache"]) == ("miss", "hit")
    assert second.get_data() == first.get_data()
    assert second.json["variants"][0]["available"] == 8
    assert second.headers["ETag"] == first.headers["ETag"]
    assert second.headers["X-Request-ID"] != first.headers["X-Request-ID"]


def test_a_page_held_in_the_process_is_not_sent_again_while_the_catalog_is_unchanged(
        client, cache, db, variant):
    get(client, "/api/v1/products/mug")  # built and stored
    get(client, "/api/v1/products/mug")  # read from Redis, and held

    def bytes_sent_by_redis(during) -> int:
        before = cache.info("stats")["total_net_output_bytes"]
        answer = during()
        return cache.info("stats")["total_net_output_bytes"] - before, answer

    info_alone, _ = bytes_sent_by_redis(lambda: None)  # INFO's own answer is counted too
    sent, held = bytes_sent_by_redis(lambda: get(client, "/api/v1/products/mug"))

    assert held.headers["X-Cache"] == "hit" and held.json["slug"] == "mug"
    assert sent - info_alone < len(held.get_data()) / 2  # the version, not the page
    # a catalog write lets go of it: the next request is built afresh
    update_product(variant.product, name="Held no more", actor=SYSTEM)
    db.session.commit()
    fresh = get(client, "/api/v1/products/mug")
    assert fresh.headers["X-Cache"] == "miss" and fresh.json["name"] == "Held no more"


def test_a_page_is_held_no_longer_than_redis_keeps_it(app, client, cache, variant):
    app.config["CATALOG_CACHE_SECONDS"] = 1
    get(client, "/api/v1/products/mug")
    assert get(client, "/api/v1/products/mug").headers["X-Cache"] == "hit"  # held now

    time.sleep(1.2)  # Redis has let the page expire

    assert get(client, "/api/v1/products/mug").headers["X-Cache"] == "miss"


def test_a_page_held_again_after_it_expired_is_counted_once(cache):
    reader = PageReader(cache)
    cache.set(cache_version.VERSION_KEY, b"7")
    stored = b"7\n\"etag\"\n" + b"x" * 1000
    for _ in range(3):  # stored with a short life, held, expired, stored again
        cache.set(f"{PAGE_PREFIX}/p", stored, px=50)
        assert reader.read(f"{PAGE_PREFIX}/p") == [b"7", stored]
        time.sleep(0.06)

    assert reader.held_bytes == len(stored)


def test_matching_if_none_match_is_304_without_a_body(client, cache, variant):
    etag = get(client, "/api/v1/products/mug").headers["ETag"]
    cached = get(client, "/api/v1/products/mug", **{"If-None-Match": etag})
    assert cached.status_code == 304 and cached.get_data() == b""
    # A gzipping proxy weakens the tag it passes on.
    weakened = get(client, "/api/v1/products/mug", **{"If-None-Match": f"W/{etag}"})
    assert weakened.status_code == 304
    other = get(client, "/api/v1/products/mug", **{"If-None-Match": '"something-else"'})
    assert other.status_code == 200 and other.json["slug"] == "mug"


def test_query_strings_are_separate_pages_whatever_their_order(client, cache, variant):
    get(client, "/api/v1/products?per_page=5&page=1")
    assert get(client, "/api/v1/products?page=1&per_page=5").headers["X-Cache"] == "hit"
    other = get(client, "/api/v1/products?page=1&per_page=6")
    assert other.headers["X-Cache"] == "miss" and other.json["per_page"] == 6


def test_unknown_and_repeated_parameters_name_the_page_the_endpoint_reads(client, cache, db, variant):
    variant.product.name = "Aardvark mug"
    dear = stocked_variant(quantity=3, price="99.00").product
    dear.name = "Zebra vase"
    db.session.commit()
    for junk in range(3):
        get(client, f"/api/v1/products/mug?x={junk}")
    page_key = f"{PAGE_PREFIX}/api/v1/products/mug"
    assert cache.keys(f"{page_key}*") == [page_key.encode()]

    by_price = get(client, "/api/v1/products?sort=price_desc&sort=name")
    by_name = get(client, "/api/v1/products?sort=name&sort=price_desc")  # the endpoint reads the first
    assert by_name.headers["X-Cache"] == "miss"
    assert slugs(by_price) == [dear.slug, "mug"]
    assert slugs(by_name) == ["mug", dear.slug]
    assert get(client, "/api/v1/products?sort=name&page=01").headers["X-Cache"] == "hit"


def test_a_malformed_query_is_refused_as_without_the_cache(client, cache, variant):
    response = get(client, "/api/v1/products?per_page=abc")
    assert response.status_code == 400 and "per_page" in response.json["errors"]


def test_a_product_edit_is_visible_on_the_next_request(client, cache, db, variant):
    get(client, "/api/v1/products/mug")
    get(client, "/api/v1/products")
    update_product(variant.product, name="Big Mug", actor=SYSTEM)
    db.session.commit()
    detail = get(client, "/api/v1/products/mug")
    assert detail.headers["X-Cache"] == "miss" and detail.json["name"] == "Big Mug"
    assert get(client, "/api/v1/products").json["items"][0]["name"] == "Big Mug"


def test_a_reservation_is_visible_in_the_available_count(client, cache, db, variant):
    assert get(client, "/api/v1/products/mug").json["variants"][0]["available"] == 8
    reserve_stock(make_order(lines=[(variant, 3)]), ttl_seconds=600)
    db.session.commit()
    assert get(client, "/api/v1/products/mug").json["variants"][0]["available"] == 5


def test_a_stock_adjustment_is_visible(client, cache, db, variant):
    get(client, "/api/v1/products/mug")
    adjust_stock(variant, -8, MovementReason.DAMAGE, actor=SYSTEM)
    db.session.commit()
    page = get(client, "/api/v1/products/mug").json
    assert page["in_stock"] is False and page["variants"][0]["available"] == 0


def test_a_bulk_update_statement_bumps_the_version_too(app, cache, db, variant):
    before = cache_version.current_version(app)
    db.session.execute(update(Inventory).where(Inventory.variant_id == variant.id).values(quantity=20))
    db.session.commit()
    assert cache_version.current_version(app) != before


def test_a_text_statement_naming_the_tables_it_writes_bumps_the_version(app, cache, db, variant):
    before = cache_version.current_version(app)
    db.session.execute(text("UPDATE users SET full_name = full_name")
                       .execution_options(**{WRITES: ("users",)}))
    db.session.commit()
    assert cache_version.current_version(app) == before
    db.session.execute(text("UPDATE inventory SET quantity = 20 WHERE variant_id = :v")
                       .execution_options(**{WRITES: ("inventory",)}), {"v": variant.id})
    db.session.commit()
    assert cache_version.current_version(app) != before


def test_a_rolled_back_write_is_forgotten(app, cache, db, variant):
    before = cache_version.current_version(app)
    variant.product.name = "Never saved"
    db.session.flush()
    db.session.rollback()
    make_order()  # a later commit that writes no catalog row
    db.session.commit()
    assert cache_version.current_version(app) == before


def test_a_released_savepoint_waits_for_the_outer_commit(app, cache, db, variant):
    before = cache_version.current_version(app)
    with db.session.begin_nested():  # as the CSV import does per row
        variant.product.name = "Imported"
    assert cache_version.current_version(app) == before  # nobody else can see the row yet
    db.session.commit()
    assert cache_version.current_version(app) != before


def test_a_rolled_back_savepoint_keeps_the_writes_made_before_it(app, cache, db, variant):
    before = cache_version.current_version(app)
    variant.product.name = "Kept"
    db.session.flush()
    savepoint = db.session.begin_nested()
    savepoint.rollback()
    db.session.commit()
    assert cache_version.current_version(app) != before


def test_a_write_bumps_even_while_reads_back_off(app, cache, db, variant):
    before = cache_version.current_version(app)
    app.extensions[cache_version.CATALOG_VERSION.down_key] = float("inf")  # a read just timed out
    try:
        update_product(variant.product, name="Saved anyway", actor=SYSTEM)
        db.session.commit()
    finally:
        app.extensions.pop(cache_version.CATALOG_VERSION.down_key, None)
    assert cache_version.current_version(app) != before


def test_a_bump_after_the_version_was_lost_never_reuses_a_number(app, cache, db, variant):
    cache.set(cache_version.VERSION_KEY, 1)
    cache.delete(cache_version.VERSION_KEY)  # evicted, or Redis restarted
    update_product(variant.product, name="After restart", actor=SYSTEM)
    db.session.commit()
    assert int(cache.get(cache_version.VERSION_KEY)) > 10**18  # the clock in ns, not INCR's 1


def test_writes_outside_the_catalog_do_not_bump(app, cache, db, variant):
    before = cache_version.current_version(app)
    make_order(lines=[(variant, 1)])
    db.session.commit()
    assert cache_version.current_version(app) == before


def test_an_emptied_redis_refuses_every_page_cached_before(client, cache, variant):
    get(client, "/api/v1/products/mug")
    cache.flushdb()  # Redis restarted: it keeps nothing on disk
    assert get(client, "/api/v1/products/mug").headers["X-Cache"] == "miss"
    assert get(client, "/api/v1/products/mug").headers["X-Cache"] == "hit"


def test_pages_live_in_redis_at_most_catalog_cache_seconds(client, cache, variant):
    get(client, "/api/v1/products/mug")
    assert 0 < cache.ttl(f"{PAGE_PREFIX}/api/v1/products/mug") <= 30


def test_pages_are_shared_between_processes(app, client, cache, redis_url, variant):
    get(client, "/api/v1/products/mug")
    # Another web process: an app of its own on the same Redis.
    other = make_test_app(app.config["SQLALCHEMY_DATABASE_URI"], REDIS_URL=redis_url)
    assert other.test_client().get("/api/v1/products/mug").headers["X-Cache"] == "hit"


def test_errors_are_not_cached(app, client, cache, db):
    assert get(client, "/api/v1/products/later").status_code == 404
    ProductFactory(slug="later", base_price=Decimal("5.00"))
    assert cache.keys(f"{PAGE_PREFIX}*") == []


def test_without_redis_pages_come_from_the_database_and_redis_is_left_alone_a_moment(
        app, client, cache, variant, monkeypatch):
    calls = []

    class DeadRedis:
        def mget(self, keys):
            calls.append("read")
            raise redis.ConnectionError("Connection refused")

        def get(self, key):
            calls.append("get")
            raise redis.ConnectionError("Connection refused")

    app.extensions[cache_version.CATALOG_VERSION.client_key] = DeadRedis()
    app.extensions.pop("ecom_page_reader", None)
    app.extensions.pop(cache_version.CATALOG_VERSION.down_key, None)
    try:
        for _ in range(3):
            response = get(client, "/api/v1/products/mug")
            assert response.status_code == 200 and response.json["slug"] == "mug"
            assert "X-Cache" not in response.headers
        assert calls == ["read"]  # tried once, then bypassed during the back-off

        monkeypatch.setattr(cache_version.CATALOG_VERSION, "backoff_seconds", 0)
        app.extensions[cache_version.CATALOG_VERSION.down_key] = 0.0
        get(client, "/api/v1/products/mug")
        assert calls == ["read", "read"]  # after the back-off it tries again
    finally:
        app.extensions.pop("ecom_page_reader", None)
        app.extensions.pop(cache_version.CATALOG_VERSION.down_key, None)
