"""Back-office lists built for big tables: searches, later pages and counts.

The same behaviour on SQLite and PostgreSQL; on PostgreSQL the searches and
later pages must also be able to use the indexes migration 0003 made for them.
"""

from __future__ import annotations

import re
from datetime import timedelta
from decimal import Decimal

import pytest
from sqlalchemy import text

from ecom.db import utcnow
from tests.factories import CategoryFactory, ProductFactory, UserFactory, VariantFactory, make_order


def _view(app, endpoint: str):
    return next(v for v in app.extensions["backoffice"]._views if getattr(v, "endpoint", None) == endpoint)


def _listing(client, endpoint: str, **params) -> str:
    response = client.get(f"/admin/{endpoint}/", query_string=params)
    assert response.status_code == 200
    return response.get_data(as_text=True)


def _found(pattern: str, page: str) -> list[str]:
    """Distinct matches of ``pattern`` in the page, in the order they first appear."""
    return list(dict.fromkeys(re.findall(pattern, page)))


# -- searches


@pytest.mark.parametrize("search", ["desk la", "NUT-DESK", "0042-b"], ids=["name", "slug", "sku"])
def test_product_search_finds_part_of_a_name_slug_or_sku(as_role, db, search):
    lamp = ProductFactory(name="Walnut Desk Lamp", slug="walnut-desk-lamp")
    VariantFactory(product=lamp, sku="WDL-0042-BLK")
    VariantFactory(product=lamp, sku="WDL-0042-WHT")
    ProductFactory(name="Oak Shelf", slug="oak-shelf")
    db.session.commit()
    page = _listing(as_role("merchandiser"), "product", search=search)
    assert _found(r"walnut-desk-lamp|oak-shelf", page) == ["walnut-desk-lamp"]  # once, though two SKUs match


def test_a_product_search_with_no_match_lists_nothing(as_role, db):
    ProductFactory(name="Oak Shelf", slug="oak-shelf")
    db.session.commit()
    assert "oak-shelf" not in _listing(as_role("merchandiser"), "product", search="100%")


@pytest.mark.parametrize("search", ["b-0007", "ORD-B-000712", "JONES@exa"],
                         ids=["part of the number", "the whole number", "part of the email"])
def test_order_search_finds_part_of_a_number_or_email(as_role, db, search):
    make_order(UserFactory(email="pat.jones@example.test"), number="ORD-B-000712")
    make_order(UserFactory(email="sam@example.test"), number="ORD-C-000001")
    db.session.commit()
    page = _listing(as_role("merchandiser"), "order", search=search)
    assert _found(r"ORD-[BC]-\d{6}", page) == ["ORD-B-000712"]


# -- later pages and counts


@pytest.fixture
def orders_by_age(db):
    """30 orders, ORD-AGE-000 the newest; every fifth one created, the others paid."""
    now = utcnow()
    for i in range(30):
        order = make_order(number=f"ORD-AGE-{i:03d}", status="created" if i % 5 == 4 else "paid")
        order.created_at = now - timedelta(minutes=i)
    db.session.commit()
    return [f"ORD-AGE-{i:03d}" for i in range(30)]


def _status_filter(view) -> int:
    return next(i for i, f in enumerate(view._filters)
                if str(f.column).endswith(".status") and f.operation() == "equals")


def test_a_later_order_page_holds_the_next_orders_in_order(as_role, orders_by_age):
    client = as_role("merchandiser")
    assert _found(r"ORD-AGE-\d{3}", _listing(client, "order")) == orders_by_age[:20]
    assert _found(r"ORD-AGE-\d{3}", _listing(client, "order", page=1)) == orders_by_age[20:]


def test_a_later_page_of_a_filtered_list_keeps_the_filter(app, as_role, orders_by_age):
    view = _view(app, "order")
    index = _status_filter(view)
    paid = [number for i, number in enumerate(orders_by_age) if i % 5 != 4]  # 24 of them
    arg = {f"flt0_{view.get_filter_arg(index, view._filters[index])}": "paid"}
    client = as_role("merchandiser")
    assert _found(r"ORD-AGE-\d{3}", _listing(client, "order", **arg)) == paid[:20]
    assert _found(r"ORD-AGE-\d{3}", _listing(client, "order", **arg, page=1)) == paid[20:]


def test_a_later_page_sorted_by_a_related_column(app, as_role, db):
    by_category = [name for name, _ in _view(app, "product")._list_columns].index("category")
    for i in range(22):
        category = CategoryFactory(name=f"Cat {i:02d}")
        ProductFactory(name=f"Item {i:02d}", slug=f"item-{i:02d}", category=category)
    db.session.commit()
    page = _listing(as_role("merchandiser"), "product", sort=by_category, desc=1, page=1)
    assert _found(r"item-\d{2}", page) == ["item-01", "item-00"]


@pytest.mark.parametrize("desc", [0, 1], ids=["ascending", "descending"])
def test_rows_that_tie_on_the_sort_column_are_each_listed_once_across_pages(app, as_role, db, desc):
    by_price = [name for name, _ in _view(app, "product")._list_columns].index("base_price")
    for i in range(30):
        ProductFactory(name=f"Same price {i:02d}", slug=f"tie-{i:02d}", base_price=Decimal("10.00"))
    db.session.commit()
    client = as_role("merchandiser")
    listed = [slug for page in (0, 1) for slug in _found(r"tie-\d{2}", _listing(
        client, "product", sort=by_price, desc=desc, page=page))]
    assert sorted(listed) == [f"tie-{i:02d}" for i in range(30)]
    # The database may order ties differently for each page's LIMIT/OFFSET: only the key fixes it.
    with app.test_request_context():
        _, query = _view(app, "product").get_list(1, "base_price", bool(desc), None, [], execute=False)
    direction = " DESC" if desc else ""
    assert f"ORDER BY products.base_price{direction}, products.id{direction}" in str(query.statement)


def test_orders_are_counted_up_to_the_limit_then_paged_by_next(app, as_role, orders_by_age, monkeypatch):
    view = _view(app, "order")
    client = as_role("merchandiser")
    monkeypatch.setattr(view, "count_limit", 40)
    page = _listing(client, "order")
    assert "List (30)" in page and "&laquo;" in page  # the count and numbered pages
    monkeypatch.setattr(view, "count_limit", 10)
    page = _listing(client, "order")
    # More than 10: previous / next only, and the tab says so: the planner's estimate of a whole
    # table on PostgreSQL (once it has one), else "more than" the limit.
    assert re.search(r"List \((more than 10|about [\d,]+)\)", page) and "&laquo;" not in page
    assert "List (more than 10)" in _listing(client, "order", search="ORD-AGE")  # searched: not estimated
    assert 'href="/admin/order/?page=1&amp;page_size=20">&gt;</a>' in page  # next
    assert "List (10)" in _listing(client, "order", search="ORD-AGE-00")  # a narrower search is counted


# -- PostgreSQL: the SQL these lists send can use the indexes made for them


def _plan(db, query, **settings: str) -> str:
    compiled = query.statement.compile(dialect=db.engine.dialect)
    for name, value in settings.items():
        db.session.execute(text(f"SET LOCAL {name} = {value}"))
    rows = db.session.connection().exec_driver_sql(f"EXPLAIN {compiled}", compiled.params)
    return "\n".join(row[0] for row in rows)


def _query(app, endpoint: str, *, page=None, search=None, filters=()):
    view = _view(app, endpoint)
    with app.test_request_context():
        _, query = view.get_list(page, None, False, search, list(filters), execute=False)
    return query


@pytest.mark.parametrize(("endpoint", "indexes"), [
    ("product", ["ix_products_name_trgm", "ix_products_slug_trgm", "ix_variants_sku_trgm"]),
    ("order", ["ix_orders_order_number_trgm", "ix_orders_email_trgm"]),
    ("user", ["ix_users_email_trgm", "ix_users_full_name_trgm"]),
    ("fulfillment", ["ix_fulfillments_order_number_trgm", "ix_fulfillments_tracking_number_trgm"]),
    ("variant", ["ix_variants_sku_trgm", "ix_variants_name_trgm"]),
    ("inventory", ["ix_variants_sku_trgm", "ix_variants_name_trgm"]),
])
def test_searches_can_use_the_trigram_indexes(postgres, db, endpoint, indexes):
    # Only bitmap scans left besides a (priced out) full scan: a B-tree cannot take
    # ILIKE '%term%', so a trigram index in the plan is one the search can use.
    plan = _plan(db, _query(postgres, endpoint, search="lamp"), enable_seqscan="off", enable_indexscan="off")
    for index in indexes:
        assert f"Bitmap Index Scan on {index}" in plan, plan


def test_a_later_order_page_walks_an_index_holding_the_key(postgres, db):
    # With the table scans and sorts priced out, the page's ids come from an index in the
    # list's order: an index-only scan if that index holds the key as well.
    only_indexes = {"enable_seqscan": "off", "enable_bitmapscan": "off", "enable_sort": "off"}
    status = _status_filter(_view(postgres, "order"))
    newest = _plan(db, _query(postgres, "order", page=3), **only_indexes)
    paid = _plan(db, _query(postgres, "order", page=3, filters=[(status, None, "paid")]), **only_indexes)
    assert "Index Only Scan Backward using ix_orders_created_id" in newest, newest
    assert "Index Only Scan Backward using ix_orders_status_created_id" in paid, paid


# -- lists ordered by a rank of a status (no index holds it): paged by one branch per status


def test_the_fulfillment_queue_pages_open_work_first_then_oldest_first(as_role, db):
    from ecom.fulfillment.models import Fulfillment
    from ecom.inventory.services import default_location

    location, now = default_location(), utcnow()
    rank = {"pending": 0, "processing": 1, "packed": 2, "shipped": 3, "delivered": 9, "cancelled": 9}
    statuses = list(rank)
    made = []
    for i in range(30):
        order = make_order(number=f"ORD-Q-{i:03d}", status="paid")
        db.session.flush()
        status = statuses[i * 7 % 6]
        shipped = status in ("shipped", "delivered")
        db.session.add(Fulfillment(order_id=order.id, order_number=order.order_number,
                                   location_id=location.id, status=status, carrier="UPS" if shipped else None,
                                   tracking_number=f"T{i}" if shipped else None,
                                   created_at=now - timedelta(minutes=(i * 11) % 30)))
        made.append((rank[status], now - timedelta(minutes=(i * 11) % 30), order.order_number))
    db.session.commit()
    expected = [number for _, _, number in sorted(made)]
    client = as_role("warehouse")
    listed = [number for page in (0, 1) for number in _found(r"ORD-Q-\d{3}", _listing(
        client, "fulfillment", page=page))]
    assert listed == expected


def test_notifications_page_failures_first_then_newest_first(as_role, db):
    from ecom.notifications.models import Notification

    now = utcnow()
    made = []
    for i in range(30):
        failed = i % 7 == 3
        created = now - timedelta(minutes=(i * 13) % 30)
        db.session.add(Notification(event_id=f"evt-{i}", event_type="ORDER_PAID", channel="email",
                                    recipient=f"n{i}@example.test", subject=f"NOTE-{i:03d}", body="",
                                    status="failed" if failed else "sent", error="x" if failed else None,
                                    created_at=created))
        made.append((0 if failed else 1, -created.timestamp(), f"NOTE-{i:03d}"))
    db.session.commit()
    expected = [subject for _, _, subject in sorted(made)]
    client = as_role("admin")
    listed = [subject for page in (0, 1) for subject in _found(r"NOTE-\d{3}", _listing(
        client, "notification", page=page))]
    assert listed == expected


def test_the_audit_log_search_finds_a_record_by_part_of_its_label_or_an_actor(as_role, db):
    from ecom.audit.models import AuditLog

    for i, (actor, label) in enumerate([("pat@example.test", "ORD-A-000123"), ("sam@example.test", "SKU-9")]):
        db.session.add(AuditLog(actor=actor, action="update", entity="orders", entity_id=str(i), label=label,
                                changes={}))
    db.session.commit()
    client = as_role("admin")
    assert _found(r"ORD-A-000123|SKU-9", _listing(client, "auditlog", search="a-0001")) == ["ORD-A-000123"]
    assert _found(r"ORD-A-000123|SKU-9", _listing(client, "auditlog", search="Sam@Example.test")) == ["SKU-9"]
