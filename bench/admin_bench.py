"""Back-office bench: product and order list pages with 100 000 products and 1 000 000 orders.

    python -m bench.admin_bench [--repeat 5] [--database ecom_bench_backoffice] [--regenerate]

The schema comes from the migrations (``flask db upgrade``, timed: on a database
of an older revision it builds the new indexes over the rows already there).
The data is generated in SQL into ``ecom_bench_backoffice``, or the
``ecom_bench*`` database ``--database`` names, and reused while it holds
exactly this dataset, so only the first run (or ``--regenerate``) pays for it;
the generator drops the non-unique indexes, loads, then builds them (timed).
The app runs under gunicorn; an admin signs in through the login form (CSRF
token and all) and each page - sorted, filtered, page 1 and a deep page - is
fetched ``--repeat`` times in a row. The figure per page is the median time;
the first (cold) fetch is shown too.
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
APP_PORT = 8841
TARGET_MS = 300.0


def prepare(database: str, *, regenerate: bool = False) -> tuple[str, dict]:
    """The database's URL, and seconds spent: migrating (which builds new indexes over the
    rows already there) and, when it had to, generating the data and then its indexes."""
    url = harness.ensure_database(database)
    started = time.monotonic()
    harness.migrate(url)
    figures = {"migrate_s": round(time.monotonic() - started, 1)}
    print(f"migrated in {figures['migrate_s']:.1f}s", flush=True)
    engine = harness.engine_for(url)
    generation = datagen.ensure_dataset(engine, products=PRODUCTS, orders=ORDERS, force=regenerate)
    engine.dispose()
    if generation is not None:
        figures.update(load_s=round(generation.load_s, 1), vacuum_s=round(generation.vacuum_s, 1),
                       index_build_s={name: round(s, 2) for name, s in generation.index_s.items()})
    return url, figures


def _view_args(url: str) -> dict[str, dict]:
    """Per list view: the ?sort= value of each sortable column and the URL arg of each filter."""
    from ecom.config import _normalise_db_url
    from shop.app import create_app

    app = create_app({"SQLALCHEMY_DATABASE_URI": _normalise_db_url(url), "REDIS_URL": None,
                      "LOG_LEVEL": "WARNING", "RATELIMIT_STORAGE_URI": "memory://", **harness.BENCH_SECRETS})
    found = {}
    with app.app_context():
        for view in app.extensions["admin"][0]._views:
            if getattr(view, "endpoint", None) not in ("product", "order"):
                continue
            filters = {}
            for index, flt in enumerate(view._filters or []):
                key = (str(getattr(flt, "column", flt.name)).split(".")[-1], flt.operation())
                filters[key] = view.get_filter_arg(index, flt)
            # ?sort= is the column's place in the list (sortable or not), as the headers link it.
            sorts = {name: index for index, (name, _) in enumerate(view._list_columns)
                     if name in view._sortable_columns}
            found[view.endpoint] = {"filters": filters, "sorts": sorts}
    return found


def pages(url: str) -> list[tuple[str, str]]:
    """(label, path) of every page timed."""
    args = _view_args(url)
    product, order = args["product"], args["order"]

    def page_of(endpoint: str, **params) -> str:
        return f"/admin/{endpoint}/?{urlencode(params)}" if params else f"/admin/{endpoint}/"

    def flt(view: dict, column: str, operation: str) -> str:
        return f"flt0_{view['filters'][(column, operation)]}"

    deep_products = PRODUCTS // 20 // 2  # page size 20: the middle of the list
    deep_orders = ORDERS // 20 // 2
    return [
        ("products: default sort (newest id first), page 1", page_of("product")),
        ("products: sort by name, page 1", page_of("product", sort=product["sorts"]["name"])),
        ("products: category filter, sort by min price desc, page 1",
         page_of("product", **{flt(product, "category_id", "equals"): 5},
                 sort=product["sorts"]["min_price"], desc=1)),
        ("products: active filter, sort by name, page 1",
         page_of("product", **{flt(product, "is_active", "equals"): 1}, sort=product["sorts"]["name"])),
        ("products: sort by updated desc, page 1",
         page_of("product", sort=product["sorts"]["updated_at"], desc=1)),
        (f"products: default sort, deep page {deep_products}", page_of("product", page=deep_products)),
        (f"products: sort by name, deep page {deep_products}",
         page_of("product", sort=product["sorts"]["name"], page=deep_products)),
        ("products: search 'walnut product 4242'", page_of("product", search="walnut product 4242")),
        ("orders: default sort (created desc), page 1", page_of("order")),
        ("orders: sort by total desc, page 1", page_of("order", sort=order["sorts"]["total"], desc=1)),
        ("orders: sort by paid desc, page 1", page_of("order", sort=order["sorts"]["paid_at"], desc=1)),
        ("orders: status = paid, page 1", page_of("order", **{flt(order, "status", "equals"): "paid"})),
        ("orders: status = paid, sort by total desc, page 1",
         page_of("order", **{flt(order, "status", "equals"): "paid"}, sort=order["sorts"]["total"], desc=1)),
        (f"orders: default sort, deep page {deep_orders}", page_of("order", page=deep_orders)),
        (f"orders: status = paid, deep page {deep_orders // 5}",
         page_of("order", **{flt(order, "status", "equals"): "paid"}, page=deep_orders // 5)),
        ("orders: search order number", page_of("order", search="ORD-B000500000")),
    ]


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


def time_page(session: requests.Session, url: str, repeat: int) -> tuple[list[float], int, int]:
    times, status, rows = [], 0, 0
    for _ in range(repeat):
        started = time.perf_counter()
        response = session.get(url, timeout=60, allow_redirects=False)
        times.append((time.perf_counter() - started) * 1000)
        status = response.status_code
        rows = response.text.count('class="list-buttons-column"')
    return times, status, rows


def run(repeat: int, database: str = DATABASE, *, regenerate: bool = False) -> int:
    url, prepared = prepare(database, regenerate=regenerate)
    targets = pages(url)
    results = []
    with harness.app_server(url, APP_PORT, name="admin-app") as app:
        session = sign_in(app.base_url())
        for label, path in targets:
            cpu = app.cpu_seconds()
            times, status, rows = time_page(session, app.base_url() + path, repeat)
            # The app's own CPU per request (gunicorn's processes, from /proc): unlike the
            # wall time it hardly moves with other load on the machine. The database's is not in it.
            app_cpu_ms = (app.cpu_seconds() - cpu) * 1000 / repeat
            median = statistics.median(times)
            results.append({"page": label, "path": path, "status": status, "rows": rows,
                            "median_ms": round(median, 1), "first_ms": round(times[0], 1),
                            "max_ms": round(max(times), 1), "app_cpu_ms": round(app_cpu_ms, 1),
                            "met": status == 200 and median < TARGET_MS})
        settings = app.settings
    harness.print_table(
        f"back-office bench ({settings}; {PRODUCTS} products, {ORDERS} orders; median of {repeat}; "
        f"load average {os.getloadavg()[0]:.1f})",
        ["page", "status", "rows", "median ms", "first ms", "max ms", "app cpu ms", f"< {TARGET_MS:.0f} ms"],
        [[r["page"], r["status"], r["rows"], r["median_ms"], r["first_ms"], r["max_ms"], r["app_cpu_ms"],
          "yes" if r["met"] else "NO"] for r in results])
    broken = [r for r in results if r["status"] != 200 or r["rows"] == 0 and "search" not in r["page"]]
    harness.emit_json("admin", {"server": settings, "products": PRODUCTS, "orders": ORDERS, "repeat": repeat,
                                "prepare": prepared, "pages": results,
                                "targets_met": all(r["met"] for r in results)})
    return 1 if broken else 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--database", default=DATABASE, help="an ecom_bench* database (kept between runs)")
    parser.add_argument("--regenerate", action="store_true", help="generate the data even if it is there")
    args = parser.parse_args(argv)
    return run(max(1, min(args.repeat, 20)), args.database, regenerate=args.regenerate)


if __name__ == "__main__":
    sys.exit(main())
