"""Dashboard, moderation, users, notifications, jobs, audit log; fast lists."""

from __future__ import annotations

import re
from contextlib import contextmanager
from decimal import Decimal

import pytest
from sqlalchemy import event, select

from ecom.audit.models import AuditLog
from ecom.catalog.models import Review
from ecom.db import utcnow
from ecom.extensions import db as _db
from ecom.identity.passwords import verify_password
from ecom.notifications.models import Notification
from tests.factories import InventoryFactory, ProductFactory, UserFactory, VariantFactory


def test_dashboard_figures(as_role, make_order, db):
    # Given three orders placed (and two paid) just now: demo orders are dated an hour back,
    # which is yesterday between midnight and one o'clock UTC.
    paid = make_order("paid", quantity=2)
    orders = [paid, make_order("shipped"), make_order("created")]
    now = utcnow()
    for order in orders:
        order.created_at = now
        order.paid_at = now if order.paid_at else None
    db.session.commit()
    low = VariantFactory(sku="RUNNING-LOW")
    InventoryFactory(variant=low, quantity=1, low_stock_threshold=3)
    page = as_role("warehouse").get("/admin/").get_data(as_text=True)
    assert re.search(r'id="orders-today">3<', page)
    revenue = Decimal(re.search(r'id="revenue-today">\$([\d.,]+)<', page).group(1).replace(",", ""))
    assert revenue > paid.total
    assert re.search(r'id="backlog">1<', page)  # the paid order waits; the shipped one left
    assert "RUNNING-LOW" in page
    assert page.count("<rect ") == 30
    assert 'class="y-tick">$0.00<' in page  # the chart's axis, in money
    assert paid.items[0].product_name in page  # top products


def test_the_dashboard_keeps_its_figures_a_minute_and_says_so(app, as_role, make_order, db, monkeypatch):
    from admin import dashboard

    monkeypatch.setitem(app.config, "DASHBOARD_CACHE_SECONDS", 60)
    monkeypatch.setattr(dashboard, "_cache", {})
    client = as_role("warehouse")
    page = client.get("/admin/").get_data(as_text=True)
    assert re.search(r'id="orders-today">0<', page)
    assert "(kept 60 s)" in page and 'id="refresh-figures"' in page
    order = make_order("paid")
    order.created_at = utcnow()
    db.session.commit()
    assert re.search(r'id="orders-today">0<', client.get("/admin/").get_data(as_text=True))  # kept
    assert re.search(r'id="orders-today">1<', client.get("/admin/?fresh=1").get_data(as_text=True))
    assert re.search(r'id="orders-today">1<', client.get("/admin/").get_data(as_text=True))  # kept anew


def test_no_page_pulls_anything_from_a_cdn(as_role, make_order):
    order = make_order("paid")
    client = as_role("admin")
    for path in ("/admin/", "/admin/product/new/", "/admin/fulfillment/",
                 f"/admin/order/details/?id={order.id}", "/admin/login"):
        page = client.get(path).get_data(as_text=True)
        sources = re.findall(r'(?:src|href)="([^"]+)"', page)
        assert sources
        assert not [s for s in sources if s.startswith(("http:", "https:", "//"))], path


def test_reviews_are_hidden_and_shown(as_role, db):
    review = Review(product=ProductFactory(), user=UserFactory(), rating=1, title="Awful")
    db.session.add(review)
    db.session.flush()
    client = as_role("merchandiser")
    client.post("/admin/review/action/", data={"action": "hide", "rowid": [str(review.id)]})
    db.session.refresh(review)
    assert review.is_hidden is True
    client.post("/admin/review/action/", data={"action": "show", "rowid": [str(review.id)]})
    db.session.refresh(review)
    assert review.is_hidden is False
    assert as_role("warehouse").post("/admin/review/action/",
                                     data={"action": "hide", "rowid": [str(review.id)]}).status_code == 403


def test_user_admin_never_shows_password_hashes(as_role, staff):
    client = as_role("admin")
    pages = [client.get("/admin/user/").get_data(as_text=True),
             client.get(f"/admin/user/details/?id={staff['warehouse'].id}").get_data(as_text=True)]
    for page in pages:
        assert "$2b$" not in page and "hashed_password" not in page.lower()
    assert "warehouse@shop.test" in pages[0]


def test_admin_changes_roles_deactivates_and_resets_passwords(as_role, db, staff):
    target = staff["warehouse"]
    client = as_role("admin")
    client.post(f"/admin/user/role/{target.id}", data={"role": "merchandiser"})
    client.post("/admin/user/action/", data={"action": "deactivate", "rowid": [str(target.id)]})
    client.post(f"/admin/user/password/{target.id}",
                data={"password": "a-new-password", "confirm": "a-new-password"})
    db.session.refresh(target)
    assert (target.role, target.is_active) == ("merchandiser", False)
    assert verify_password("a-new-password", target.hashed_password)
    entries = db.session.scalars(select(AuditLog).where(AuditLog.entity == "users")
                                 .order_by(AuditLog.id)).all()
    assert [e.action for e in entries] == ["update", "update", "reset_password"]
    assert all("$2b$" not in str(e.changes) for e in entries)


def test_admin_cannot_lock_themselves_out(as_role, db, staff):
    me = staff["admin"]
    response = as_role("admin").post("/admin/user/action/",
                                     data={"action": "deactivate", "rowid": [str(me.id)]},
                                     follow_redirects=True)
    assert "cannot deactivate your own account" in response.get_data(as_text=True)
    db.session.refresh(me)
    assert me.is_active is True


def test_a_bulk_deactivation_that_includes_oneself_changes_nobody(as_role, db, staff):
    me, others = staff["admin"], [staff["warehouse"], staff["merchandiser"]]

    response = as_role("admin").post("/admin/user/action/", data={
        "action": "deactivate", "rowid": [str(u.id) for u in (others[0], me, others[1])]},
        follow_redirects=True)

    assert "cannot deactivate your own account" in response.get_data(as_text=True)
    for user in (me, *others):
        db.session.refresh(user)
    assert [u.is_active for u in (me, *others)] == [True, True, True]
    assert db.session.scalars(select(AuditLog).where(AuditLog.entity == "users")).all() == []


def test_bulk_activation_reports_and_audits_only_the_users_it_changed(as_role, db, staff):
    asleep = UserFactory(is_active=False)
    db.session.commit()

    response = as_role("admin").post("/admin/user/action/", data={
        "action": "activate", "rowid": [str(asleep.id), str(staff["warehouse"].id)]},
        follow_redirects=True)

    assert "1 user(s) activated." in response.get_data(as_text=True)
    db.session.refresh(asleep)
    assert asleep.is_active is True
    [entry] = db.session.scalars(select(AuditLog).where(AuditLog.entity == "users")).all()
    assert (entry.entity_id, entry.user_id) == (str(asleep.id), staff["admin"].id)


def test_review_moderation_from_the_back_office_is_audited(as_role, db, staff):
    review = Review(product=ProductFactory(), user=UserFactory(), rating=1, title="Awful")
    db.session.add(review)
    db.session.commit()

    as_role("merchandiser").post("/admin/review/action/", data={"action": "hide", "rowid": [str(review.id)]})

    [entry] = db.session.scalars(select(AuditLog).where(AuditLog.entity == "reviews")).all()
    assert (entry.entity_id, entry.user_id, entry.changes) == (
        str(review.id), staff["merchandiser"].id, {"is_hidden": {"before": False, "after": True}})


def test_notifications_list_failures_first(as_role, db):
    for status, recipient in (("sent", "ok@x.test"), ("failed", "bounce@x.test"), ("sent", "ok2@x.test")):
        db.session.add(Notification(event_id=recipient, event_type="ORDER_PAID", channel="email",
                                    recipient=recipient, status=status,
                                    error="550" if status == "failed" else None))
    db.session.flush()
    page = as_role("admin").get("/admin/notification/").get_data(as_text=True)
    assert page.index("bounce@x.test") < page.index("ok@x.test")


def test_jobs_page_shows_the_outbox_backlog(as_role, db):
    from ecom.notifications.services import emit

    emit("ORDER_PAID", {"order_id": 1})
    page = as_role("admin").get("/admin/jobs/").get_data(as_text=True)
    assert re.search(r"id=\"outbox-backlog\">1 event", page)


def test_audit_log_lists_before_and_after(as_role, db):
    as_role("admin").post("/admin/category/new/", data={"name": "Audited"})
    page = as_role("admin").get("/admin/auditlog/").get_data(as_text=True)
    assert "Category Audited" in page and "admin@shop.test" in page


@contextmanager
def count_queries():
    statements: list[str] = []

    def record(conn, cursor, statement, *args):
        statements.append(statement)

    engine = _db.engine
    event.listen(engine, "before_cursor_execute", record)
    try:
        yield statements
    finally:
        event.remove(engine, "before_cursor_execute", record)


@pytest.mark.parametrize(("path", "make"), [
    ("/admin/product/", "products"), ("/admin/order/", "orders"), ("/admin/variant/", "products"),
    ("/admin/fulfillment/", "orders"), ("/admin/inventory/", "products")])
def test_list_pages_run_a_fixed_number_of_queries(as_role, make_order, db, path, make):
    client = as_role("admin")

    def populate(n):
        for _ in range(n):
            if make == "products":
                product = ProductFactory()
                InventoryFactory(variant=VariantFactory(product=product))
            else:
                make_order("paid")
        db.session.commit()

    populate(2)
    client.get(path)  # warm-up (filter options, first-use queries)
    db.session.commit()  # each measured request starts from an empty identity map
    with count_queries() as few:
        assert client.get(path).status_code == 200
    populate(8)
    db.session.commit()
    with count_queries() as many:
        assert client.get(path).status_code == 200
    # Then the count does not grow with the rows shown (no N+1), and stays small.
    assert len(many) == len(few)
    assert len(many) <= 8, many


def test_list_pages_paginate_on_the_server(as_role, db):
    for _ in range(25):
        ProductFactory()
    page = as_role("admin").get("/admin/product/").get_data(as_text=True)
    assert page.count('name="rowid"') == 20
    assert "page=1" in page


def test_jobs_page_lists_failed_jobs_and_retries_them(app, as_role, db, redis_url):
    from redis import Redis
    from rq import Queue, SimpleWorker
    from rq.job import Job

    app.config["REDIS_URL"] = redis_url
    try:
        connection = Redis.from_url(redis_url)
        queue = Queue("default", connection=connection)
        job = queue.enqueue("builtins.int", "boom")  # fails for real in a worker
        SimpleWorker([queue], connection=connection).work(burst=True)
        assert job.id in queue.failed_job_registry
        client = as_role("admin")
        page = client.get("/admin/jobs/").get_data(as_text=True)
        assert job.id in page and "ValueError: invalid literal for int()" in page
        assert "builtins.int" in page
        response = client.post(f"/admin/jobs/retry/{job.id}", follow_redirects=True)
        assert "queued again" in response.get_data(as_text=True)
        assert job.id not in queue.failed_job_registry
        assert Job.fetch(job.id, connection=connection).get_status() == "queued"
        unknown = client.post("/admin/jobs/retry/no-such-job", follow_redirects=True)
        assert "No failed job" in unknown.get_data(as_text=True)
    finally:
        app.config["REDIS_URL"] = None


def test_the_dashboard_range_totals_are_the_sums_of_its_days(app, as_role, make_order, db):
    # Given paid orders on three days of the range, one of them partly refunded, and one paid
    # the day before the range: the range's money kept and refunded are what the services
    # say for the range, though the page reads them off the per-day figures of its chart.
    from datetime import timedelta

    from admin.dashboard import DateRange
    from ecom.commerce.revenue import net_revenue, refunded_total

    today = utcnow().date()
    orders = [make_order("paid") for _ in range(4)]
    # Ids do not follow the payment times: the first order was paid last, the last one first.
    for days_back, order in zip((0, 3, 9, 30), orders, strict=True):
        order.paid_at = utcnow() - timedelta(days=days_back)
    refunded = orders[1].payments[0]
    refunded.refunded_amount, refunded.status = Decimal("5.00"), "partially_refunded"
    db.session.commit()
    start = today - timedelta(days=29)
    page = as_role("admin").get(f"/admin/?start={start}&end={today}").get_data(as_text=True)
    with app.test_request_context():
        first, after = DateRange(start, today).bounds()
        kept, given_back = net_revenue(first, after), refunded_total(first, after)
    # Summed here from the payments, the one of the day before the range left out.
    assert kept == sum((o.payments[0].amount for o in orders[:3]), Decimal("0")) - Decimal("5.00")
    assert given_back == Decimal("5.00")
    shown = re.search(r'id="revenue-range">\$([\d.,]+)<', page).group(1).replace(",", "")
    assert Decimal(shown) == kept
    assert re.search(r'id="refunded-range">\$5\.00 refunded<', page)
