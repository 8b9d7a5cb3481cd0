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
    # MAIN too: a database some test emptied has lost migration 0008's row.
    names = {"MAIN": "Main warehouse"} | {f"BENCH-{n}": f"Bench warehouse {n}" for n in range(2, count + 1)}
    for priority, (code, name) in enumerate(names.items(), start=1):
        _run(conn, """
            INSERT INTO stock_locations (code, name, kind, address, ships_orders, accepts_pickup, priority,
                                         is_active, created_at, updated_at)
            VALUES (:code, :name, 'warehouse', '', true, false, :priority, true, now(), now())
            ON CONFLICT (code) DO NOTHING""", code=code, name=name, priority=10 * priority)
    codes = list(names)
    ids = dict(conn.execute(text("SELECT code, id FROM stock_locations WHERE code = ANY(:codes)"),
                            {"codes": codes}).all())
    return [ids[code] for code in codes]


def ensure_voucher(conn, code: str) -> None:
    """Voucher ``code``: 10 % off everything, no use limit."""
    _run(conn, """
        INSERT INTO promotions (name, code, kind, value, scope, category_ids, product_ids, times_used,
                                is_active, created_at, updated_at)
        VALUES ('Bench 10 % off', :code, 'percent', 10, 'all', '[]', '[]', 0, true, now(), now())
        ON CONFLICT (code) DO NOTHING""", code=code)


def generate_catalog(conn, products: int, variants_per_product: int = 3, locations: int = 1, *,
                     stock_everywhere: bool = False) -> None:
    """``products`` active products in 20 categories, each with one primary image,
    ``variants_per_product`` variants and their inventory rows: the stock at the MAIN
    warehouse, and a row at each of ``locations - 1`` more, empty unless ``stock_everywhere``
    (then each holds some units too, every 11th row at or below its threshold)."""
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
            SELECT id, :location,
                   CASE WHEN :spread AND id % 11 <> 0 THEN 6 + (id * :location) % 40 ELSE 0 END,
                   0, 5, false, now()
            FROM variants""", location=location, spread=stock_everywhere)


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


def deferrable_indexes(conn, tables: tuple[str, ...] = TABLES) -> dict[str, str]:
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
        ORDER BY i.relname"""), {"tables": list(tables)})
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


def _load_deferring_indexes(engine, tables: tuple[str, ...], load) -> Generation:
    """Run ``load(conn)`` with the non-unique indexes of ``tables`` dropped, build them after,
    then VACUUM ANALYZE; the timings of each step."""
    started = time.monotonic()
    index_s = {}
    with engine.begin() as conn:  # one transaction: a failed load leaves every index in place
        _run(conn, "SET LOCAL synchronous_commit = off")
        _run(conn, "SET LOCAL maintenance_work_mem = '256MB'")
        deferred = deferrable_indexes(conn, tables)
        for name in deferred:
            _run(conn, f'DROP INDEX "{name}"')
        load(conn)
        load_s = time.monotonic() - started
        for name, definition in deferred.items():
            built = time.monotonic()
            _run(conn, definition)
            index_s[name] = time.monotonic() - built
    vacuumed = time.monotonic()
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        _run(conn, "VACUUM ANALYZE")
    return Generation(load_s, index_s, time.monotonic() - vacuumed)


def ensure_dataset(engine, *, products: int, orders: int = 0, locations: int = 1, force: bool = False,
                   log=print) -> Generation | None:
    """Fill the database unless it already holds exactly this dataset (or ``force``);
    the timings when it generated, else None. With ``locations`` > 1 every location holds stock."""
    with engine.connect() as conn:
        have = (count(conn, "products"), count(conn, "orders"), count(conn, "variants"),
                count(conn, "inventory"))
    if have == (products, orders, products * 3, products * 3 * locations) and not force:
        log(f"dataset present: {products} products, {orders} orders")
        return None
    started = time.monotonic()

    def load(conn) -> None:
        reset(conn)
        generate_catalog(conn, products, locations=locations, stock_everywhere=locations > 1)
        generate_users(conn)
        if orders:
            generate_orders(conn, orders, variants=products * 3)

    generation = _load_deferring_indexes(engine, TABLES, load)
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


# -- the back office's other lists: fulfillment, payments, returns, pricing, the stockroom, ledgers

# Tables generate_backoffice fills, emptied first. Promotions, tax and shipping hang off no table
# reset() empties, so they are listed here rather than left to its CASCADE.
BACKOFFICE_TABLES = ("payments", "fulfillments", "fulfillment_lines", "returns", "return_lines",
                     "stock_reservations", "stock_movements", "promotion_uses", "voucher_codes", "promotions",
                     "tax_rates", "shipping_methods", "shipping_zones", "stock_transfers",
                     "stock_transfer_lines", "purchase_orders", "purchase_order_lines", "audit_log",
                     "notifications", "outbox_events", "reviews", "customer_notes")
EXTRA_CUSTOMERS = 190_000  # with generate_users' 10 000: 200 000 customers
PROMOTIONS = 300
VOUCHER_CODES = 100_000
TRANSFERS = 5_000
PURCHASE_ORDERS = 5_000
REVIEWS = 100_000


def _returns_of(orders: int) -> int:
    # every 10th delivered order (g % 20 in 11..17, see _STATUS) with g % 10 = 3 -> g % 20 = 13
    return sum(1 for _ in range(13, orders + 1, 20))


def generate_backoffice(conn, orders: int, locations: list[int]) -> None:
    """Rows for every back-office list over the orders of generate_orders:

    a payment per order whose money was taken; a fulfillment per paid order (location
    ``g % len(locations)``, status following the order's, lines for the open ones); a stock
    reservation and a 'sale' stock movement per order; a return for every 20th order
    (delivered ones), in every return status; 300 promotions (every 3rd unlimited, so its uses
    are counted) with 100 000 voucher codes and a use per 4th order; tax rates for 250
    countries x 3 classes; 20 shipping zones x 3 methods; 5 000 transfers and purchase orders;
    an audit entry and a notification per 2nd order; 100 000 reviews; 190 000 more customers."""
    n_loc = len(locations)
    loc = f"(ARRAY{locations})[1 + g % {n_loc}]"
    order_loc = f"(ARRAY{locations})[1 + o.id % {n_loc}]"
    variants = count(conn, "variants")
    _run(conn, f"TRUNCATE {', '.join(BACKOFFICE_TABLES)} RESTART IDENTITY CASCADE")
    _run(conn, """
        INSERT INTO users (email, hashed_password, full_name, role, is_active, last_login_at, created_at,
                           updated_at)
        SELECT 'shopper' || g || '@bench.example', (SELECT hashed_password FROM users WHERE role = 'customer'
                                                    LIMIT 1),
               'Shopper ' || g, 'customer', g % 50 <> 0,
               CASE WHEN g % 3 = 0 THEN now() - make_interval(mins => g) END,
               now() - make_interval(mins => g * 3), now()
        FROM generate_series(1, CAST(:n AS integer)) g
        ON CONFLICT (email) DO NOTHING""", n=EXTRA_CUSTOMERS)
    taken = "('paid', 'packed', 'shipped', 'delivered')"
    _run(conn, f"""
        INSERT INTO payments (order_id, stripe_payment_intent_id, amount, refunded_amount, currency, status,
                              gateway, created_at, updated_at)
        SELECT id, 'pi_bench_' || id, total, 0, 'usd', 'completed', 'simulated', paid_at, paid_at
        FROM orders WHERE status IN {taken}""")
    _run(conn, f"""
        INSERT INTO fulfillments (order_id, order_number, status, carrier, tracking_number, processing_at,
                                  packed_at, shipped_at, delivered_at, created_at, updated_at, location_id,
                                  is_pickup)
        SELECT g, o.order_number, fs,
               CASE WHEN fs IN ('shipped', 'delivered') THEN 'UPS' END,
               CASE WHEN fs IN ('shipped', 'delivered') THEN '1ZBENCH' || g END,
               CASE WHEN fs <> 'pending' THEN o.paid_at + interval '10 minutes' END,
               o.packed_at, o.shipped_at, o.delivered_at, o.paid_at, o.updated_at, {loc}, false
        FROM (SELECT id AS g, order_number, paid_at, packed_at, shipped_at, delivered_at, updated_at,
                     CASE status WHEN 'paid' THEN CASE WHEN id % 2 = 0 THEN 'pending' ELSE 'processing' END
                                 ELSE status END AS fs
              FROM orders WHERE status IN {taken}) AS o""")
    _run(conn, """
        INSERT INTO fulfillment_lines (fulfillment_id, order_item_id, quantity)
        SELECT f.id, i.id, i.quantity FROM fulfillments f JOIN order_items i ON i.order_id = f.order_id
        WHERE f.status IN ('pending', 'processing', 'packed')""")
    _run(conn, f"""
        INSERT INTO stock_reservations (order_id, variant_id, quantity, status, expires_at, created_at,
                                        updated_at, location_id)
        SELECT o.id, i.variant_id, i.quantity,
               CASE o.status WHEN 'created' THEN CASE WHEN o.id % 4 = 0 THEN 'expired' ELSE 'active' END
                             WHEN 'cancelled' THEN 'released' ELSE 'committed' END,
               o.created_at + interval '15 minutes', o.created_at, o.updated_at, {order_loc}
        FROM orders o JOIN order_items i ON i.order_id = o.id""")
    _run(conn, f"""
        INSERT INTO stock_movements (variant_id, delta, reason, note, user_id, order_id, created_at,
                                     location_id)
        SELECT i.variant_id, -i.quantity, 'sale', '', NULL, o.id, o.paid_at, {order_loc}
        FROM orders o JOIN order_items i ON i.order_id = o.id WHERE o.status IN {taken}""")
    _received_and_guests(conn, locations)
    _run(conn, """
        INSERT INTO returns (rma_number, order_id, status, requested_by, note, refund_amount, approved_at,
                             received_at, refunded_at, created_at, updated_at)
        SELECT 'RMA-B' || lpad(g::text, 9, '0'), g, st, 'customer', 'Does not fit',
               CASE WHEN st = 'refunded' THEN 10.00 END,
               CASE WHEN st IN ('approved', 'received', 'refunded', 'closed') THEN at + interval '1 day' END,
               CASE WHEN st IN ('received', 'refunded', 'closed') THEN at + interval '5 days' END,
               CASE WHEN st = 'refunded' THEN at + interval '6 days' END, at, at
        FROM (SELECT id AS g, delivered_at + interval '2 days' AS at,
                     (ARRAY['requested', 'approved', 'rejected', 'received', 'refunded', 'closed'])
                       [1 + (id / 20) % 6] AS st
              FROM orders WHERE id % 20 = 13) AS r""")
    _run(conn, """
        INSERT INTO return_lines (return_id, order_item_id, quantity, reason)
        SELECT r.id, (SELECT min(i.id) FROM order_items i WHERE i.order_id = r.order_id), 1, 'Does not fit'
        FROM returns r""")
    _run(conn, """
        INSERT INTO promotions (name, code, kind, value, scope, category_ids, product_ids, min_subtotal,
                                starts_at, ends_at, usage_limit, per_customer_limit, times_used, is_active,
                                created_at, updated_at)
        SELECT 'Promotion ' || g, CASE WHEN g % 2 = 0 THEN 'BENCH' || g END,
               (ARRAY['percent', 'fixed', 'free_shipping'])[1 + g % 3], 5 + g % 20,
               'all', '[]'::json, '[]'::json, NULL, now() - interval '400 days', NULL,
               CASE WHEN g % 3 = 1 THEN 1000000 END, CASE WHEN g % 3 = 2 THEN 5 END, 0, g % 7 <> 0,
               now() - make_interval(days => g), now()
        FROM generate_series(1, CAST(:n AS integer)) g""", n=PROMOTIONS)
    _run(conn, """
        INSERT INTO voucher_codes (promotion_id, code, usage_limit, times_used, created_at)
        SELECT 2 * (1 + g % 20), 'V' || lpad(g::text, 8, '0'), 1, CASE WHEN g % 3 = 0 THEN 1 ELSE 0 END, now()
        FROM generate_series(1, CAST(:n AS integer)) g""", n=VOUCHER_CODES)
    # A use per 4th order, spread over the promotions: the unlimited ones (g % 3 = 0) get the most.
    _run(conn, """
        INSERT INTO promotion_uses (promotion_id, order_id, user_id, email, code, discount, created_at,
                                    released_at)
        SELECT p, o.id, o.user_id, o.email, NULL, 1.00, o.created_at,
               CASE WHEN o.status = 'cancelled' THEN o.cancelled_at END
        FROM orders o, LATERAL (SELECT 3 * (1 + o.id % 100) AS p) AS pick
        WHERE o.id % 4 = 0""")
    _run(conn, """
        UPDATE promotions p SET times_used = u.n
        FROM (SELECT promotion_id, count(*) AS n FROM promotion_uses WHERE released_at IS NULL
              GROUP BY promotion_id) u
        WHERE u.promotion_id = p.id AND (p.usage_limit IS NOT NULL OR p.per_customer_limit IS NOT NULL)
          AND u.n <= coalesce(p.usage_limit, u.n)""")
    _run(conn, """
        INSERT INTO tax_classes (code, name) VALUES ('standard', 'Standard'), ('reduced', 'Reduced'),
                                                    ('zero', 'Zero') ON CONFLICT (code) DO NOTHING""")
    _run(conn, """
        INSERT INTO tax_rates (country, region, tax_class_id, rate, name)
        SELECT chr(65 + c / 26) || chr(65 + c % 26), NULL, t.id, 0.05 + (c % 20) / 100.0, 'Tax ' || c
        FROM generate_series(0, 249) c CROSS JOIN tax_classes t
        ON CONFLICT DO NOTHING""")
    _run(conn, """
        INSERT INTO shipping_zones (name, countries, tax_shipping)
        SELECT 'Zone ' || z, json_build_array(chr(65 + z) || 'A', chr(65 + z) || 'B'), z % 2 = 0
        FROM generate_series(1, 20) z""")
    _run(conn, """
        INSERT INTO shipping_methods (zone_id, code, name, kind, price, free_over, weight_brackets, min_days,
                                      max_days, store_id, is_active, created_at, updated_at)
        SELECT z.id, 'BENCH-' || z.id || '-' || m, 'Method ' || m, 'flat', 4.99 + m, 50, '[]'::json, m, m + 3,
               NULL, true, now(), now()
        FROM shipping_zones z CROSS JOIN generate_series(1, 3) m""")
    _run(conn, f"""
        INSERT INTO stock_transfers (source_location_id, destination_location_id, status, note, created_by_id,
                                     sent_at, received_at, cancelled_at, created_at, updated_at)
        SELECT {loc}, (ARRAY{locations})[1 + (g + 1) % {n_loc}], st, '', NULL,
               CASE WHEN st IN ('in_transit', 'received') THEN at + interval '1 hour' END,
               CASE WHEN st = 'received' THEN at + interval '2 days' END,
               CASE WHEN st = 'cancelled' THEN at + interval '1 hour' END, at, at
        FROM (SELECT g, (ARRAY['draft', 'in_transit', 'received', 'received', 'cancelled'])[1 + g % 5] AS st,
                     now() - make_interval(hours => g) AS at
              FROM generate_series(1, CAST(:n AS integer)) g) AS t""", n=TRANSFERS)
    _run(conn, """
        INSERT INTO stock_transfer_lines (transfer_id, variant_id, quantity)
        SELECT t.id, 1 + (t.id * 37 + k * 7919) % :variants, 1 + k
        FROM stock_transfers t, generate_series(1, 3) k
        ON CONFLICT DO NOTHING""", variants=variants)
    _run(conn, f"""
        INSERT INTO purchase_orders (supplier, destination_location_id, expected_on, status, note,
                                     created_by_id, ordered_at, received_at, cancelled_at, created_at,
                                     updated_at)
        SELECT 'Supplier ' || (1 + g % 40), {loc}, (at + interval '7 days')::date, st, '', NULL,
               CASE WHEN st <> 'draft' THEN at + interval '1 hour' END,
               CASE WHEN st = 'received' THEN at + interval '7 days' END,
               CASE WHEN st = 'cancelled' THEN at + interval '1 day' END, at, at
        FROM (SELECT g, (ARRAY['draft', 'ordered', 'partially_received', 'received', 'cancelled'])
                          [1 + g % 5] AS st,
                     now() - make_interval(hours => g) AS at
              FROM generate_series(1, CAST(:n AS integer)) g) AS p""", n=PURCHASE_ORDERS)
    _run(conn, """
        INSERT INTO purchase_order_lines (purchase_order_id, variant_id, quantity_ordered, quantity_received)
        SELECT p.id, 1 + (p.id * 53 + k * 7919) % :variants, 10 * k,
               CASE p.status WHEN 'received' THEN 10 * k WHEN 'partially_received' THEN 5 * k ELSE 0 END
        FROM purchase_orders p, generate_series(1, 5) k
        ON CONFLICT DO NOTHING""", variants=variants)
    _run(conn, """
        INSERT INTO audit_log (user_id, actor, action, entity, entity_id, changes, created_at, label)
        SELECT NULL, CASE WHEN id % 3 = 0 THEN 'admin@bench.example' ELSE 'system' END,
               (ARRAY['update', 'refund', 'cancel', 'adjust'])[1 + id / 2 % 4], 'orders', id::text,
               json_build_object('status', json_build_object('before', 'paid', 'after', status)),
               updated_at, order_number
        FROM orders WHERE id % 2 = 0""")
    _run(conn, """
        INSERT INTO notifications (event_id, event_type, channel, recipient, subject, body, status, error,
                                   created_at, sent_at)
        SELECT 'evt-' || id, 'ORDER_PAID', 'email', email, 'Your order ' || order_number, 'Thank you.',
               CASE WHEN id % 500 = 1 THEN 'failed' ELSE 'sent' END,
               CASE WHEN id % 500 = 1 THEN 'SMTP 451' END, created_at,
               CASE WHEN id % 500 <> 1 THEN created_at END
        FROM orders WHERE id % 2 = 1""")
    _run(conn, """
        INSERT INTO outbox_events (id, type, payload, created_at, dispatched_at, attempts)
        SELECT 'bench-' || g, 'ORDER_PAID', json_build_object('order_id', g),
               now() - make_interval(secs => g),
               CASE WHEN g > 50 THEN now() END, 0
        FROM generate_series(1, 20000) g""")
    _run(conn, """
        INSERT INTO reviews (product_id, user_id, rating, title, comment, verified_purchase, is_hidden,
                             created_at)
        SELECT 1 + (g * 7) % :products, 1 + g % :customers, 1 + g % 5, 'Review ' || g, 'Fine, thank you.',
               g % 2 = 0, g % 25 = 0, now() - make_interval(mins => g)
        FROM generate_series(1, CAST(:n AS integer)) g
        ON CONFLICT DO NOTHING""", n=REVIEWS, products=count(conn, "products"), customers=CUSTOMERS)


def _received_and_guests(conn, locations: list[int]) -> None:
    """A 'received' stock movement per purchase-order line to come (every 10th variant, at a
    location each), every 50th order placed as a guest, and 20 stores."""
    _run(conn, f"""
        INSERT INTO stock_movements (variant_id, delta, reason, note, user_id, order_id, created_at,
                                     location_id)
        SELECT id, 50, 'received', 'PO', NULL, NULL, now() - make_interval(mins => id),
               (ARRAY{locations})[1 + id % {len(locations)}]
        FROM variants WHERE id % 10 = 0""")
    _run(conn, "UPDATE orders SET order_token_hash = md5(id::text) WHERE id % 50 = 7")
    # Not TRUNCATEd: stock locations, shipping methods and orders refer to stores.
    _run(conn, "DELETE FROM stores WHERE name LIKE 'Bench store %'")
    _run(conn, """
        INSERT INTO stores (name, address, city, state, postal_code, country, latitude, longitude, phone,
                            email, opening_hours, is_active, created_at, updated_at)
        SELECT 'Bench store ' || g, g || ' High Street', 'Springfield', 'IL', '62701', 'US', 39.78, -89.65,
               NULL, NULL, NULL, true, now(), now()
        FROM generate_series(1, 20) g""")


def ensure_backoffice(engine, *, orders: int, locations: int, force: bool = False,
                      log=print) -> Generation | None:
    """Add generate_backoffice's rows to the dataset of ensure_dataset unless they are there
    (or ``force``); the timings when it generated, else None. Its tables' non-unique indexes are
    dropped for the load and built after, like ensure_dataset's."""
    expected = {"promotions": PROMOTIONS, "voucher_codes": VOUCHER_CODES, "stock_transfers": TRANSFERS,
                "purchase_orders": PURCHASE_ORDERS, "returns": _returns_of(orders)}
    with engine.connect() as conn:
        have = {table: count(conn, table) for table in expected}
        fulfilled = count(conn, "fulfillments")
    if have == expected and fulfilled and not force:
        log("back-office rows present")
        return None
    started = time.monotonic()

    def load(conn) -> None:
        generate_backoffice(conn, orders, ensure_locations(conn, locations))

    generation = _load_deferring_indexes(engine, BACKOFFICE_TABLES, load)
    log(f"generated the back office's rows in {time.monotonic() - started:.1f}s: {generation.summary()}")
    return generation
