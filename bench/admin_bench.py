"""Back-office bench: every list page at 100 000 products, 1 000 000 orders and three locations.

    python -m bench.admin_bench [--repeat 5] [--database ecom_bench_backoffice] [--regenerate]
                                [--only fulfillment] [--port 8841]

The schema comes from the migrations (``flask db upgrade``, timed: on a database
of an older revision it builds the new indexes over the rows already there).
The data is generated in SQL into ``ecom_bench_backoffice``, or the
``ecom_bench*`` database ``--database`` names, and reused while it holds
exactly this dataset, so only the first run (or ``--regenerate``) pays for it;
the generator drops the non-unique indexes, loads, then builds them (timed).
Besides products and orders (``datagen.ensure_dataset``, stock at three
locations) it fills every other list (``datagen.ensure_backoffice``):
fulfillments, payments, returns, promotions with voucher codes and uses, tax and
shipping, transfers, purchase orders, ledgers, audit log, notifications,
reviews and 200 000 customers.

The app runs under gunicorn; an admin signs in through the login form (CSRF
token and all). Every page - each list of the back office with its default
sort, then its common filters, searches and sorts, a deep page of the big
ones, and the dashboard and jobs pages - is fetched once to warm up, then
``--repeat`` times in a row. The figures per page are the median and the
slowest of those, the app's CPU per request (gunicorn's processes, from
/proc) and PostgreSQL's (the database's backends); every list page of the
back office must be there (``missing_views`` fails the run otherwise).
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import sys
import time
from urllib.parse import urlencode

import requests

from bench import datagen, harness

DATABASE = "ecom_bench_backoffice"
PRODUCTS = 100_000
ORDERS = 1_000_000
LOCATIONS = 3
APP_PORT = 8841
TARGET_MS = 150.0
# Pages that are not lists of rows (no list-buttons column to count).
NOT_LISTS = frozenset({"admin", "jobs", "pricecheck"})


def prepare(database: str, *, regenerate: bool = False) -> tuple[str, dict]:
    """The database's URL, and seconds spent: migrating (which builds new indexes over the
    rows already there) and, when it had to, generating the data and then its indexes."""
    url = harness.ensure_database(database)
    started = time.monotonic()
    harness.migrate(url)
    figures = {"migrate_s": round(time.monotonic() - started, 1)}
    print(f"migrated in {figures['migrate_s']:.1f}s", flush=True)
    engine = harness.engine_for(url)
    generation = datagen.ensure_dataset(engine, products=PRODUCTS, orders=ORDERS, locations=LOCATIONS,
                                        force=regenerate)
    extras = datagen.ensure_backoffice(engine, orders=ORDERS, locations=LOCATIONS,
                                       force=regenerate or generation is not None)
    engine.dispose()
    for key, made in (("dataset", generation), ("backoffice", extras)):
        if made is not None:
            figures[key] = {"load_s": round(made.load_s, 1), "vacuum_s": round(made.vacuum_s, 1),
                            "index_build_s": {name: round(s, 2) for name, s in made.index_s.items()}}
    return url, figures


class Views:
    """What the app's back office registers: per list view, the ?sort= value of each sortable
    column and the URL arg of each filter; and every endpoint with a page."""

    def __init__(self, url: str):
        from ecom.config import _normalise_db_url
        from shop.app import create_app

        app = create_app({"SQLALCHEMY_DATABASE_URI": _normalise_db_url(url), "REDIS_URL": None,
                          "LOG_LEVEL": "WARNING", "RATELIMIT_STORAGE_URI": "memory://",
                          **harness.BENCH_SECRETS})
        self.args: dict[str, dict] = {}
        self.endpoints: set[str] = set()
        with app.app_context():
            from ecom.extensions import db
            from ecom.inventory.models import StockLocation

            # Ids as the database gave them (a sequence may have skipped one): code -> id.
            self.locations = dict(db.session.execute(db.select(StockLocation.code, StockLocation.id)).all())
            for view in app.extensions["admin"][0]._views:
                endpoint = getattr(view, "endpoint", None)
                if endpoint is None:
                    continue
                self.endpoints.add(endpoint)
                if not hasattr(view, "_list_columns"):
                    continue
                filters = {}
                for index, flt in enumerate(view._filters or []):
                    key = (str(getattr(flt, "column", flt.name)).split(".")[-1], flt.operation())
                    filters[key] = view.get_filter_arg(index, flt)
                # ?sort= is the column's place in the list (sortable or not), as the headers link it.
                sorts = {name: index for index, (name, _) in enumerate(view._list_columns)
                         if name in view._sortable_columns}
                self.args[endpoint] = {"filters": filters, "sorts": sorts}

    def page(self, endpoint: str, *filters: tuple[str, str, object], sort: str | None = None,
             desc: bool = False, **params) -> str:
        """The list URL of ``endpoint`` with filters (column, operation, value), a sort and more."""
        query = {}
        for position, (column, operation, value) in enumerate(filters):
            query[f"flt{position}_{self.args[endpoint]['filters'][(column, operation)]}"] = value
        if sort is not None:
            query["sort"] = self.args[endpoint]["sorts"][sort]
            if desc:
                query["desc"] = 1
        query.update(params)
        base = "/admin/" if endpoint == "admin" else f"/admin/{endpoint}/"
        return f"{base}?{urlencode(query)}" if query else base


def pages(views: Views) -> list[tuple[str, str, str]]:
    """(endpoint, label, path) of every page timed."""
    p = views.page
    deep_products = PRODUCTS // 20 // 2  # page size 20: the middle of the list
    deep_orders = ORDERS // 20 // 2
    main, second = views.locations["MAIN"], views.locations["BENCH-2"]
    return [
        ("admin", "dashboard: last 30 days", p("admin")),
        ("admin", "dashboard: a year", p("admin", start="2026-01-01", end="2026-12-31")),
        ("category", "categories: tree order", p("category")),
        ("product", "products: default sort (newest id first), page 1", p("product")),
        ("product", "products: sort by name, page 1", p("product", sort="name")),
        ("product", "products: category filter, sort by min price desc, page 1",
         p("product", ("category_id", "equals", 5), sort="min_price", desc=True)),
        ("product", "products: active filter, sort by name, page 1",
         p("product", ("is_active", "equals", 1), sort="name")),
        ("product", "products: sort by updated desc, page 1", p("product", sort="updated_at", desc=True)),
        ("product", f"products: default sort, deep page {deep_products}", p("product", page=deep_products)),
        ("product", f"products: sort by name, deep page {deep_products}",
         p("product", sort="name", page=deep_products)),
        ("product", "products: search 'walnut product 4242'", p("product", search="walnut product 4242")),
        ("product", "products: search SKU 'SKU-4242-2'", p("product", search="SKU-4242-2")),
        ("variant", "variants: default sort (SKU)", p("variant")),
        ("variant", "variants: search SKU 'SKU-4242-'", p("variant", search="SKU-4242-")),
        ("variant", "variants: sort by price desc", p("variant", sort="price", desc=True)),
        ("variant", "variants: default sort, deep page 7500", p("variant", page=7500)),
        ("review", "reviews: newest first", p("review")),
        ("review", "reviews: rating = 1", p("review", ("rating", "equals", 1))),
        ("review", "reviews: hidden", p("review", ("is_hidden", "equals", 1))),
        ("inventory", "inventory: default sort", p("inventory")),
        ("inventory", "inventory: location MAIN", p("inventory", ("location_id", "is", main))),
        ("inventory", "inventory: low stock", p("inventory", ("id", "is", 1))),
        ("inventory", "inventory: low stock at BENCH-2",
         p("inventory", ("id", "is", 1), ("location_id", "is", second))),
        ("inventory", "inventory: search SKU 'SKU-4242-'", p("inventory", search="SKU-4242-")),
        ("inventory", "inventory: sort by quantity", p("inventory", sort="quantity")),
        ("inventory", "inventory: default sort, deep page 22500", p("inventory", page=22500)),
        ("stockmovement", "stock movements: newest first", p("stockmovement")),
        ("stockmovement", "stock movements: location BENCH-2",
         p("stockmovement", ("location_id", "is", second))),
        ("stockmovement", "stock movements: reason = received",
         p("stockmovement", ("reason", "equals", "received"))),
        ("stockmovement", "stock movements: SKU = SKU-4242-2",
         p("stockmovement", ("sku", "equals", "SKU-4242-2"))),
        ("stockmovement", "stock movements: order ORD-B000500004",
         p("stockmovement", ("order_number", "equals", "ORD-B000500004"))),
        ("reservation", "reservations: default sort (expires desc)", p("reservation")),
        ("reservation", "reservations: status = active", p("reservation", ("status", "equals", "active"))),
        ("reservation", "reservations: location BENCH-2", p("reservation", ("location_id", "is", second))),
        ("store", "stores", p("store")),
        ("stocklocation", "stock locations", p("stocklocation")),
        ("transfer", "transfers: newest first", p("transfer")),
        ("transfer", "transfers: in transit", p("transfer", ("status", "equals", "in_transit"))),
        ("purchaseorder", "purchase orders: newest first", p("purchaseorder")),
        ("purchaseorder", "purchase orders: ordered", p("purchaseorder", ("status", "equals", "ordered"))),
        ("purchaseorder", "purchase orders: search supplier", p("purchaseorder", search="Supplier 7")),
        ("fulfillment", "fulfillment queue: open first, oldest first", p("fulfillment")),
        ("fulfillment", "fulfillment queue: location BENCH-2",
         p("fulfillment", ("location_id", "is", second))),
        ("fulfillment", "fulfillment queue: pending at BENCH-2",
         p("fulfillment", ("location_id", "is", second), ("status", "equals", "pending"))),
        ("fulfillment", "fulfillment queue: packed", p("fulfillment", ("status", "equals", "packed"))),
        ("fulfillment", "fulfillment queue: search order number",
         p("fulfillment", search="ORD-B000500002")),
        ("fulfillment", "fulfillment queue: sort by created desc",
         p("fulfillment", sort="created_at", desc=True)),
        ("order", "orders: default sort (created desc), page 1", p("order")),
        ("order", "orders: sort by total desc, page 1", p("order", sort="total", desc=True)),
        ("order", "orders: sort by paid desc, page 1", p("order", sort="paid_at", desc=True)),
        ("order", "orders: status = paid, page 1", p("order", ("status", "equals", "paid"))),
        ("order", "orders: status = paid, sort by total desc, page 1",
         p("order", ("status", "equals", "paid"), sort="total", desc=True)),
        ("order", f"orders: default sort, deep page {deep_orders}", p("order", page=deep_orders)),
        ("order", f"orders: status = paid, deep page {deep_orders // 5}",
         p("order", ("status", "equals", "paid"), page=deep_orders // 5)),
        ("order", "orders: search order number", p("order", search="ORD-B000500000")),
        ("order", "orders: search email", p("order", search="customer4242@bench.example")),
        ("order", "orders: guest orders", p("order", ("order_token_hash", "is", 1))),
        ("return", "returns: newest first", p("return")),
        ("return", "returns: status = requested", p("return", ("status", "equals", "requested"))),
        ("return", "returns: search RMA", p("return", search="RMA-B000500013")),
        ("customer", "customers: newest first", p("customer")),
        ("customer", "customers: search email", p("customer", search="shopper4242@")),
        ("customer", "customers: sort by last sign-in desc", p("customer", sort="last_login_at", desc=True)),
        ("user", "users: newest first", p("user")),
        ("user", "users: role = admin", p("user", ("role", "equals", "admin"))),
        ("notification", "notifications: failures first", p("notification")),
        ("notification", "notifications: failed", p("notification", ("status", "equals", "failed"))),
        ("jobs", "jobs", p("jobs")),
        ("auditlog", "audit log: newest first", p("auditlog")),
        ("auditlog", "audit log: search order number", p("auditlog", search="ORD-B000500000")),
        ("auditlog", "audit log: action = refund", p("auditlog", ("action", "equals", "refund"))),
        ("taxclass", "tax classes", p("taxclass")),
        ("taxrate", "tax rates: by country", p("taxrate")),
        ("taxrate", "tax rates: country = DE", p("taxrate", ("country", "equals", "DE"))),
        ("shippingzone", "shipping zones", p("shippingzone")),
        ("shippingmethod", "shipping methods", p("shippingmethod")),
        ("promotion", "promotions and vouchers: newest first", p("promotion")),
        ("promotion", "promotions: search 'Promotion 1'", p("promotion", search="Promotion 1")),
        ("vouchercode", "voucher codes: newest first", p("vouchercode")),
        ("vouchercode", "voucher codes: search code", p("vouchercode", search="V00004242")),
    ]


def missing_views(views: Views, timed: list[tuple[str, str, str]]) -> list[str]:
    """Endpoints with a page that the bench does not time (the price check is a form)."""
    return sorted(views.endpoints - {endpoint for endpoint, _, _ in timed} - {"pricecheck"})


def sign_in(base_url: str) -> requests.Session:
    session = requests.Session()
    form = session.get(f"{base_url}/admin/login", timeout=30)
    match = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', form.text) or re.search(
        r'value="([^"]+)"[^>]*name="csrf_token"', form.text)
    if not match:
        raise RuntimeError("no csrf_token in the login form")
    answer = session.post(f"{base_url}/admin/login", timeout=30, allow_redirects=False, data={
        "csrf_token": match.group(1), "email": datagen.ADMIN_EMAIL, "password": datagen.ADMIN_PASSWORD})
    if answer.status_code not in (302, 303):
        raise RuntimeError(f"sign-in answered {answer.status_code}")
    return session


def time_page(session: requests.Session, url: str, repeat: int) -> tuple[list[float], int, int, float]:
    """Times of ``repeat`` fetches after one warm-up fetch; the status, rows shown, warm-up ms."""
    started = time.perf_counter()
    session.get(url, timeout=60, allow_redirects=False)
    warm_up = (time.perf_counter() - started) * 1000
    times, status, rows = [], 0, 0
    for _ in range(repeat):
        started = time.perf_counter()
        response = session.get(url, timeout=60, allow_redirects=False)
        times.append((time.perf_counter() - started) * 1000)
        status = response.status_code
        rows = response.text.count('class="list-buttons-column"')
    return times, status, rows, warm_up


def run(repeat: int, database: str = DATABASE, *, regenerate: bool = False, only: str | None = None,
        port: int = APP_PORT) -> int:
    url, prepared = prepare(database, regenerate=regenerate)
    views = Views(url)
    targets = pages(views)
    missing = missing_views(views, targets)
    if only:
        targets = [t for t in targets if only in t[0] or only in t[1]]
    results = []
    load_start = os.getloadavg()[0]
    with harness.app_server(url, port, name="admin-app") as app:
        session = sign_in(app.base_url())
        for endpoint, label, path in targets:
            cpu, pg_cpu = app.cpu_seconds(), harness.backend_cpu_seconds(url, database)
            times, status, rows, warm_up = time_page(session, app.base_url() + path, repeat)
            # The CPU per request of the app (gunicorn's processes, from /proc) and of PostgreSQL
            # (this database's backends): unlike the wall time they hardly move with other load.
            # The warm-up fetch is in them too: divided by repeat + 1.
            app_cpu_ms = (app.cpu_seconds() - cpu) * 1000 / (repeat + 1)
            pg_after = harness.backend_cpu_seconds(url, database)
            pg_cpu_ms = sum(s - pg_cpu.get(pid, 0.0) for pid, s in pg_after.items()) * 1000 / (repeat + 1)
            median = statistics.median(times)
            results.append({"view": endpoint, "page": label, "path": path, "status": status, "rows": rows,
                            "median_ms": round(median, 1), "max_ms": round(max(times), 1),
                            "warm_up_ms": round(warm_up, 1), "app_cpu_ms": round(app_cpu_ms, 1),
                            "pg_cpu_ms": round(pg_cpu_ms, 1), "load_1m": round(os.getloadavg()[0], 1),
                            "met": status == 200 and median < TARGET_MS})
        settings = app.settings
    load_end = os.getloadavg()[0]
    harness.print_table(
        f"back-office bench ({settings}; {PRODUCTS} products, {ORDERS} orders, {LOCATIONS} locations; "
        f"median and max of {repeat} after a warm-up; 1-min load average {load_start:.1f} at the start, "
        f"{load_end:.1f} at the end)",
        ["page", "status", "rows", "median ms", "max ms", "warm-up ms", "app cpu ms", "pg cpu ms", "load",
         f"< {TARGET_MS:.0f} ms"],
        [[r["page"], r["status"], r["rows"], r["median_ms"], r["max_ms"], r["warm_up_ms"], r["app_cpu_ms"],
          r["pg_cpu_ms"], r["load_1m"], "yes" if r["met"] else "NO"] for r in results])
    slowest = max(results, key=lambda r: r["median_ms"])
    print(f"{sum(r['met'] for r in results)} of {len(results)} pages under {TARGET_MS:.0f} ms; slowest: "
          f"{slowest['page']} {slowest['median_ms']} ms")
    if missing:
        print(f"list pages the bench does not time: {', '.join(missing)}")
    broken = [r for r in results if r["status"] != 200
              or r["rows"] == 0 and r["view"] not in NOT_LISTS and "search" not in r["page"]]
    for r in broken:
        print(f"BROKEN: {r['page']} answered {r['status']} with {r['rows']} rows")
    harness.emit_json("admin", {"server": settings, "products": PRODUCTS, "orders": ORDERS,
                                "locations": LOCATIONS, "repeat": repeat, "prepare": prepared,
                                "load_1m": [load_start, load_end], "pages": results, "missing_views": missing,
                                "targets_met": all(r["met"] for r in results) and not missing})
    return 1 if broken or (missing and not only) else 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--database", default=DATABASE, help="an ecom_bench* database (kept between runs)")
    parser.add_argument("--regenerate", action="store_true", help="generate the data even if it is there")
    parser.add_argument("--only", help="time only the pages whose view or label holds this text")
    parser.add_argument("--port", type=int, default=APP_PORT)
    args = parser.parse_args(argv)
    return run(max(1, min(args.repeat, 20)), args.database, regenerate=args.regenerate, only=args.only,
               port=args.port)


if __name__ == "__main__":
    sys.exit(main())
