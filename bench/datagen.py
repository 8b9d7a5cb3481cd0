"""Bench data, generated in PostgreSQL with INSERT ... SELECT generate_series.

Every row satisfies the schema's checks: order totals add up
(total = subtotal + tax + shipping_cost, tax = round(subtotal * 0.08, 2),
shipping free from 50.00), line totals are price x quantity, statuses are the
enum values with the timestamps their state implies, reserved <= quantity.

Names are deterministic, so order lines can name real variants without a join:
product ``p`` has slug ``product-p``, base price ``10.99 + p % 90`` and variants
``3(p-1)+1 .. 3p`` with SKUs ``SKU-p-1 .. SKU-p-3`` priced base + 0 / 2 / 4.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from sqlalchemy import text

from ecom.identity.passwords import hash_password

CATEGORIES = 20
CUSTOMERS = 10_000
CUSTOMER_PASSWORD = "bench-password-123"
ADMIN_EMAIL = "admin@bench.example"
ADMIN_PASSWORD = "bench-admin-password-123"
ORDER_CHUNK = 250_000

ADJECTIVES = "ARRAY['Oak','Linen','Copper','Walnut','Slate','Cotton','Amber','Indigo']"
SIZES = "ARRAY['Small','Medium','Large']"

# Tables the generators fill, emptied first (children before parents via CASCADE).
TABLES = ("order_items", "order_events", "payments", "stock_reservations", "fulfillments", "orders",
          "stock_movements", "inventory", "cart_items", "carts", "product_images", "reviews",
          "variants", "products", "categories", "addresses", "users")


def _run(conn, sql: str, **params) -> None:
    conn.execute(text(sql), params)


def reset(conn) -> None:
    _run(conn, f"TRUNCATE {', '.join(TABLES)} RESTART IDENTITY CASCADE")


def ensure_locations(conn, count: int) -> list[int]:
    """Ids of ``count`` active shipping locations, allocation order: migration 0008's MAIN
    warehouse, then BENCH-2, BENCH-3, ... (created when missing)."""
    for n in range(2, count + 1):
        _run(conn, """
            INSERT INTO stock_locations (code, name, kind, address, ships_orders, accepts_pickup, priority,
                                         is_active, created_at, updated_at)
            VALUES (:code, :name, 'warehouse', '', true, false, :priority, true, now(), now())
            ON CONFLICT (code) DO NOTHING""", code=f"BENCH-{n}", name=f"Bench warehouse {n}", priority=10 * n)
    codes = ["MAIN"] + [f"BENCH-{n}" for n in range(2, count + 1)]
    ids = dict(conn.execute(text("SELECT code, id FROM stock_locations WHERE code = ANY(:codes)"),
                            {"codes": codes}).all())
    return [ids[code] for code in codes]


def generate_catalog(conn, products: int, variants_per_product: int = 3, locations: int = 1) -> None:
    """``products`` active products in 20 categories, each with one primary image,
    ``variants_per_product`` variants and their inventory rows: the stock at the MAIN
    warehouse, and an empty row at each of ``locations - 1`` more."""
    if variants_per_product != 3:
        raise ValueError("the deterministic naming assumes 3 variants per product")
    _run(conn, """
        INSERT INTO categories (name, slug, description, display_order, created_at, updated_at)
        SELECT 'Category ' || g, 'category-' || g, 'Everything in category ' || g, g, now(), now()
        FROM generate_series(1, CAST(:n AS integer)) g""", n=CATEGORIES)
    _run(conn, f"""
        INSERT INTO products (category_id, name, slug, description, base_price, is_active, featured,
                              min_price, max_price, rating_average, rating_count, created_at, updated_at)
        SELECT 1 + g % {CATEGORIES},
               ({ADJECTIVES})[1 + g % 8] || ' product ' || g,
               'product-' || g,
               'A sturdy, well made ' || lower(({ADJECTIVES})[1 + g % 8]) || ' thing, number ' || g
                 || '. ' || repeat('Made to last and easy to care for. ', 4),
               10.99 + g % 90, true, g % 40 = 0,
               10.99 + g % 90, 14.99 + g % 90,
               CASE WHEN g % 3 = 0 THEN NULL ELSE round(1 + (g % 400) / 100.0, 2) END,
               CASE WHEN g % 3 = 0 THEN 0 ELSE g % 57 END,
               now() - make_interval(mins => g), now()
        FROM generate_series(1, CAST(:n AS integer)) g""", n=products)
    _run(conn, """
        INSERT INTO product_images (product_id, url, alt_text, is_primary, display_order, thumbnails)
        SELECT g, 'https://images.example.com/products/' || g || '.jpg', 'Product ' || g, true, 0,
               '{}'::json
        FROM generate_series(1, CAST(:n AS integer)) g""", n=products)
    _run(conn, f"""
        INSERT INTO variants (product_id, sku, name, price, weight, attributes, is_active,
                              created_at, updated_at)
        SELECT p, 'SKU-' || p || '-' || v, ({SIZES})[v], 10.99 + p % 90 + (v - 1) * 2, 0.5 * v,
               json_build_object('size', ({SIZES})[v]), true, now(), now()
        FROM generate_series(1, CAST(:n AS integer)) p CROSS JOIN generate_series(1, 3) v
        ORDER BY p, v""", n=products)
    # Every 17th variant sold out; some with units held by reservations.
    main, *others = ensure_locations(conn, locations)
    _run(conn, """
        INSERT INTO inventory (variant_id, location_id, quantity, reserved, low_stock_threshold,
                               low_stock_alerted, updated_at)
        SELECT id, :main, CASE WHEN id % 17 = 0 THEN 0 ELSE 5 + id % 95 END,
               CASE WHEN id % 17 = 0 THEN 0 ELSE id % 3 END, 5, false, now()
        FROM variants""", main=main)
    for location in others:
        _run(conn, """
            INSERT INTO inventory (variant_id, location_id, quantity, reserved, low_stock_threshold,
                                   low_stock_alerted, updated_at)
            SELECT id, :location, 0, 0, 5, false, now() FROM variants""", location=location)


def generate_users(conn, customers: int = CUSTOMERS) -> None:
    """``customers`` customers (one shared password) and one admin."""
    customer_hash = hash_password(CUSTOMER_PASSWORD)
    _run(conn, """
        INSERT INTO users (email, hashed_password, full_name, role, is_active, created_at, updated_at)
        SELECT 'customer' || g || '@bench.example', :h, 'Customer ' || g, 'customer', true,
               now() - make_interval(hours => g), now()
        FROM generate_series(1, CAST(:n AS integer)) g""", n=customers, h=customer_hash)
    _run(conn, """
        INSERT INTO users (email, hashed_password, full_name, role, is_active, created_at, updated_at)
        VALUES (:e, :h, 'Bench Admin', 'admin', true, now(), now())
        ON CONFLICT (email) DO NOTHING""", e=ADMIN_EMAIL, h=hash_password(ADMIN_PASSWORD))


# Two lines per order, k = 1 and 2: variant, its product, quantity, price.
_LINE = """
    LATERAL (SELECT ((g::bigint * {k} * 7919) % :variants) + 1 AS vid) AS v{k},
    LATERAL (SELECT (v{k}.vid - 1) / 3 + 1 AS pid, (v{k}.vid - 1) % 3 + 1 AS size,
                    1 + (g + {k}) % 3 AS qty) AS l{k},
    LATERAL (SELECT (10.99 + l{k}.pid % 90 + (l{k}.size - 1) * 2)::numeric(12, 2) AS price) AS p{k}
"""

_STATUS = """CASE WHEN g % 20 < 2 THEN 'created' WHEN g % 20 < 6 THEN 'paid'
                  WHEN g % 20 < 8 THEN 'packed' WHEN g % 20 < 11 THEN 'shipped'
                  WHEN g % 20 < 18 THEN 'delivered' ELSE 'cancelled' END"""

_ADDRESS = """json_build_object('full_name', 'Customer ' || u, 'street', g || ' Market Street',
              'city', 'Springfield', 'state', 'IL', 'postal_code', '62701', 'country', 'US',
              'phone', NULL)"""


def generate_orders(conn, orders: int, *, customers: int = CUSTOMERS, variants: int) -> None:
    """``orders`` orders of two lines each over a year, all statuses, from ``customers``."""
    for first in range(1, orders + 1, ORDER_CHUNK):
        last = min(orders, first + ORDER_CHUNK - 1)
        _run(conn, f"""
            INSERT INTO orders (id, user_id, order_number, status, subtotal, tax, shipping_cost, total,
                                currency, shipping_address, billing_address, email, paid_at, packed_at,
                                shipped_at, delivered_at, cancelled_at, cancel_reason,
                                created_at, updated_at)
            SELECT g, u, 'ORD-B' || lpad(g::text, 9, '0'), st, sub, tax, ship, sub + tax + ship, 'usd',
                   {_ADDRESS}, {_ADDRESS}, 'customer' || u || '@bench.example',
                   CASE WHEN st NOT IN ('created', 'cancelled') THEN at + interval '1 minute' END,
                   CASE WHEN st IN ('packed', 'shipped', 'delivered') THEN at + interval '1 hour' END,
                   CASE WHEN st IN ('shipped', 'delivered') THEN at + interval '1 day' END,
                   CASE WHEN st = 'delivered' THEN at + interval '3 days' END,
                   CASE WHEN st = 'cancelled' THEN at + interval '10 minutes' END,
                   CASE WHEN st = 'cancelled' THEN 'customer request' END,
                   at, at
            FROM (
                SELECT g, 1 + g % :customers AS u, {_STATUS} AS st,
                       now() - make_interval(secs => (:orders - g) * 30) AS at,
                       sub, round(sub * 0.08, 2) AS tax,
                       CASE WHEN sub >= 50 THEN 0 ELSE 5.99 END::numeric(12, 2) AS ship
                FROM (
                    SELECT g, p1.price * l1.qty + p2.price * l2.qty AS sub
                    FROM generate_series(CAST(:first AS integer), CAST(:last AS integer)) g,
                    {_LINE.format(k=1)}, {_LINE.format(k=2)}
                ) AS amounts
            ) AS o""", first=first, last=last, orders=orders, customers=customers, variants=variants)
        _run(conn, f"""
            INSERT INTO order_items (order_id, product_id, variant_id, sku, product_name, variant_name,
                                     quantity, price, line_total)
            SELECT g, l.pid, v.vid, 'SKU-' || l.pid || '-' || l.size,
                   ({ADJECTIVES})[1 + l.pid % 8] || ' product ' || l.pid, ({SIZES})[l.size],
                   l.qty, p.price, p.price * l.qty
            FROM generate_series(CAST(:first AS integer), CAST(:last AS integer)) g
            CROSS JOIN (VALUES (1), (2)) AS k(k),
            LATERAL (SELECT ((g::bigint * k * 7919) % :variants) + 1 AS vid) AS v,
            LATERAL (SELECT (v.vid - 1) / 3 + 1 AS pid, (v.vid - 1) % 3 + 1 AS size,
                            1 + (g + k) % 3 AS qty) AS l,
            LATERAL (SELECT (10.99 + l.pid % 90 + (l.size - 1) * 2)::numeric(12, 2) AS price) AS p
            ORDER BY g, k""", first=first, last=last, variants=variants)
    _run(conn, "SELECT setval(pg_get_serial_sequence('orders', 'id'), (SELECT max(id) FROM orders))")


def count(conn, table: str) -> int:
    return conn.execute(text(f"SELECT count(*) FROM {table}")).scalar_one()


def deferrable_indexes(conn) -> dict[str, str]:
    """Name -> CREATE INDEX statement of each non-unique index on the tables the generators fill.

    A bulk load runs faster without them and builds each once after (keeping a GIN
    index current row by row is the slowest). Unique indexes stay: they back the
    constraints and ``ON CONFLICT``. Read from the database, so whatever the
    migrations made is what gets rebuilt."""
    rows = conn.execute(text("""
        SELECT i.relname, pg_get_indexdef(i.oid)
        FROM pg_index x JOIN pg_class i ON i.oid = x.indexrelid JOIN pg_class t ON t.oid = x.indrelid
        WHERE t.relnamespace = 'public'::regnamespace AND t.relname = ANY(CAST(:tables AS text[]))
          AND NOT x.indisunique
        ORDER BY i.relname"""), {"tables": list(TABLES)})
    return dict(rows.all())


@dataclass
class Generation:
    """Seconds spent making a dataset, and per rebuilt index."""

    load_s: float
    index_s: dict[str, float]
    vacuum_s: float

    def summary(self) -> str:
        slowest = sorted(self.index_s.items(), key=lambda item: -item[1])[:3]
        return (f"rows loaded in {self.load_s:.1f}s; {len(self.index_s)} indexes built after the load in "
                f"{sum(self.index_s.values()):.1f}s (slowest: "
                f"{', '.join(f'{name} {seconds:.1f}s' for name, seconds in slowest)}); "
                f"VACUUM ANALYZE {self.vacuum_s:.1f}s")


def ensure_dataset(engine, *, products: int, orders: int = 0, force: bool = False,
                   log=print) -> Generation | None:
    """Fill the database unless it already holds exactly this dataset (or ``force``);
    the timings when it generated, else None."""
    with engine.connect() as conn:
        have = (count(conn, "products"), count(conn, "orders"), count(conn, "variants"))
    if have == (products, orders, products * 3) and not force:
        log(f"dataset present: {products} products, {orders} orders")
        return None
    started = time.monotonic()
    index_s = {}
    with engine.begin() as conn:  # one transaction: a failed load leaves every index in place
        _run(conn, "SET LOCAL synchronous_commit = off")
        _run(conn, "SET LOCAL maintenance_work_mem = '256MB'")
        reset(conn)
        deferred = deferrable_indexes(conn)
        for name in deferred:
            _run(conn, f'DROP INDEX "{name}"')
        generate_catalog(conn, products)
        generate_users(conn)
        if orders:
            generate_orders(conn, orders, variants=products * 3)
        load_s = time.monotonic() - started
        for name, definition in deferred.items():
            built = time.monotonic()
            _run(conn, definition)
            index_s[name] = time.monotonic() - built
    vacuumed = time.monotonic()
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        _run(conn, "VACUUM ANALYZE")
    generation = Generation(load_s, index_s, time.monotonic() - vacuumed)
    log(f"generated {products} products x 3 variants, {orders} orders "
        f"in {time.monotonic() - started:.1f}s: {generation.summary()}")
    return generation


def seed_shoppers(conn, count: int, *, prefix: str = "shopper") -> list[int]:
    """``count`` customers created in SQL; their ids."""
    rows = conn.execute(text("""
        INSERT INTO users (email, hashed_password, full_name, role, is_active, created_at, updated_at)
        SELECT :prefix || g || '@shoppers.example', :h, 'Shopper ' || g, 'customer', true, now(), now()
        FROM generate_series(1, CAST(:n AS integer)) g
        RETURNING id"""), {"n": count, "h": hash_password(CUSTOMER_PASSWORD), "prefix": prefix})
    return [row.id for row in rows]


def fill_carts(conn, user_ids: list[int], sku: str, quantity: int = 1) -> None:
    """Give each user a cart holding ``quantity`` of ``sku`` at its current price."""
    conn.execute(text("""
        INSERT INTO carts (user_id, created_at, updated_at)
        SELECT u, now(), now() FROM unnest(CAST(:ids AS integer[])) u
        ON CONFLICT (user_id) DO NOTHING"""), {"ids": user_ids})
    conn.execute(text("""
        INSERT INTO cart_items (cart_id, product_id, variant_id, sku, quantity, price, created_at, updated_at)
        SELECT c.id, v.product_id, v.id, v.sku, :q, v.price, now(), now()
        FROM carts c JOIN variants v ON v.sku = :sku
        WHERE c.user_id = ANY(CAST(:ids AS integer[]))"""), {"ids": user_ids, "sku": sku, "q": quantity})
