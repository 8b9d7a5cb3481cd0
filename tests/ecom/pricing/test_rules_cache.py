"""The pricing rules held in process (ecom.pricing.rules): a quote reads no rule table while
they are unchanged, and sees a back-office edit at once, in this process and in another one
(through Redis's version); an order's frozen totals never move. PostgreSQL and Redis, real
commits."""

from __future__ import annotations

import time
from decimal import Decimal

import pytest
import redis
from sqlalchemy import select, text

from ecom.commerce.models import Order
from ecom.pricing import rules
from ecom.pricing.models import Promotion, TaxRate
from tests.admin.conftest import new_client, sign_in
from tests.commerce_support import auth, fill_cart, statements_during
from tests.conftest import make_test_app
from tests.factories import UserFactory, stocked_variant
from tests.pricing_support import promotion, us_shop

pytestmark = pytest.mark.xdist_group("postgres_commits")

QUOTE = "/api/v1/checkout/quote"
INTENT = "/api/v1/checkout/payment-intent"
US = {"full_name": "Sam Shopper", "street": "1 Main Street", "city": "Springfield", "state": "IL",
      "postal_code": "62701", "country": "US"}
RULE_TABLES = ("tax_rates", "tax_classes", "shipping_zones", "shipping_methods", "promotions", "stores")


def _with_version(app, url: str) -> redis.Redis:
    client = redis.Redis.from_url(url)
    app.extensions[rules.RULES_VERSION.client_key] = client
    app.config["PRICING_CACHE_SECONDS"] = 60
    rules.forget_rules(app)
    return client


@pytest.fixture
def cached(postgres, app, committed_db, redis_url):
    """The session app pricing from its snapshot, against this test's Redis database."""
    saved = app.config["PRICING_CACHE_SECONDS"]
    client = _with_version(app, redis_url)
    try:
        yield client
    finally:
        app.extensions.pop(rules.RULES_VERSION.client_key, None)
        app.config["PRICING_CACHE_SECONDS"] = saved
        rules.forget_rules(app)


@pytest.fixture
def shop(cached, committed_db):
    """US rules (8 % tax, standard 5.99 free over 50), a 10 % sale, a shopper with 2 x 20.00."""
    db = committed_db
    us_shop()
    sale = promotion("Sale", kind="percent", value="10")
    shopper = UserFactory()
    admin = UserFactory(role="admin", email="boss@shop.test")
    variant = stocked_variant(quantity=50, price="20.00")
    fill_cart(shopper, [(variant, 2)])
    db.session.commit()
    rate = db.session.scalar(select(TaxRate))
    return {"shopper": shopper, "admin": admin, "sale": sale, "rate": rate, "variant": variant}


def _quote(client, shopper) -> dict:
    response = client.post(QUOTE, json={"shipping_address": US}, headers=auth(shopper))
    assert response.status_code == 200, response.json
    return response.json


def _rule_reads(statements: list[str]) -> list[str]:
    return [s for s in statements if s.startswith("SELECT") and any(f" {t} " in f"{s} " for t in RULE_TABLES)
            and "FOR UPDATE" not in s]


def test_an_unchanged_shop_prices_from_the_snapshot_without_reading_a_rule(app, shop):
    client = app.test_client()
    first = _quote(client, shop["shopper"])
    again, statements = statements_during(lambda: _quote(client, shop["shopper"]))
    assert again == first
    assert _rule_reads(statements) == []
    # 40.00 - 10 % = 36.00; 8 % tax 2.88; shipping 5.99 (under 50).
    assert (first["discount_total"], first["tax_total"], first["shipping_cost"], first["total"]) == (
        "4.00", "2.88", "5.99", "44.87")


def test_a_back_office_edit_is_priced_by_the_next_quote_and_orders_keep_their_totals(app, shop, committed_db,
                                                                                     redis_url):
    db = committed_db
    shopper_client = app.test_client()
    placed = shopper_client.post(INTENT, json={"shipping_address": US}, headers=auth(shop["shopper"]))
    assert placed.status_code == 201, placed.json
    number = placed.json["order"]["order_number"]
    assert _quote(shopper_client, shop["shopper"])["total"] == "44.87"  # the snapshot is warm

    # Another process holding its own snapshot: it hears of the edit through Redis only.
    other = make_test_app(app.config["SQLALCHEMY_DATABASE_URI"])
    _with_version(other, redis_url)
    with other.app_context():
        assert _quote(other.test_client(), shop["shopper"])["total"] == "44.87"

    admin = new_client(app)
    sign_in(admin, shop["admin"])
    rate, sale = shop["rate"], shop["sale"]
    edited = admin.post(f"/admin/taxrate/edit/?id={rate.id}", data={
        "country": "US", "region": "", "tax_class": rate.tax_class_id, "rate": "0.10", "name": "Sales tax"})
    assert edited.status_code == 302
    ended = admin.post(f"/admin/promotion/edit/?id={sale.id}", data={
        "name": "Sale", "code": "", "kind": "percent", "value": "10", "scope": "all", "category_ids": "",
        "product_ids": "", "min_subtotal": "", "starts_at": "", "ends_at": "", "usage_limit": "",
        "per_customer_limit": ""})  # is_active unticked
    assert ended.status_code == 302
    db.session.expire_all()
    assert db.session.get(TaxRate, rate.id).rate == Decimal("0.1000")
    assert db.session.get(Promotion, sale.id).is_active is False

    # 40.00, no sale; 10 % tax 4.00; shipping 5.99.
    expected = ("0.00", "4.00", "49.99")
    mine = _quote(shopper_client, shop["shopper"])
    assert (mine["discount_total"], mine["tax_total"], mine["total"]) == expected
    with other.app_context():
        theirs = _quote(other.test_client(), shop["shopper"])
    assert (theirs["discount_total"], theirs["tax_total"], theirs["total"]) == expected

    order = db.session.scalar(select(Order).where(Order.order_number == number))
    assert (order.discount_total, order.tax, order.total) == (Decimal("4.00"), Decimal("2.88"),
                                                               Decimal("44.87"))
    shown = shopper_client.get(f"/api/v1/orders/{number}", headers=auth(shop["shopper"]))
    assert shown.status_code == 200 and (shown.json["tax_total"], shown.json["total"]) == ("2.88", "44.87")


def test_taking_a_use_is_no_rule_change_but_a_used_up_sale_ends_at_once(app, shop, committed_db, cached):
    db = committed_db
    shop["sale"].usage_limit = 1
    db.session.commit()
    client = app.test_client()
    assert _quote(client, shop["shopper"])["discount_total"] == "4.00"
    version = cached.get(rules.VERSION_KEY)

    placed = client.post(INTENT, json={"shipping_address": US}, headers=auth(shop["shopper"]))

    assert placed.status_code == 201 and placed.json["order"]["discount_total"] == "4.00"
    assert cached.get(rules.VERSION_KEY) == version  # the snapshot is still good
    other = UserFactory()
    fill_cart(other, [(shop["variant"], 1)])
    db.session.commit()
    assert _quote(client, other)["discount_total"] == "0.00"  # the only use is taken


def test_sql_behind_the_apps_back_is_seen_within_the_time_limit(app, shop, committed_db):
    db = committed_db
    client = app.test_client()
    assert _quote(client, shop["shopper"])["tax_total"] == "2.88"
    with db.engine.begin() as conn:
        conn.execute(text("UPDATE tax_rates SET rate = 0.05"))
    assert _quote(client, shop["shopper"])["tax_total"] == "2.88"  # not seen: no session wrote it
    app.config["PRICING_CACHE_SECONDS"] = 0.2
    time.sleep(0.25)
    assert _quote(client, shop["shopper"])["tax_total"] == "1.80"


def test_a_transaction_sees_its_own_uncommitted_rule_changes(app, shop, committed_db):
    from ecom.pricing.engine import LineInput
    from ecom.pricing.quote import Destination, quote_lines

    db = committed_db
    line = [LineInput(sku="X", quantity=1, unit_price=Decimal("10.00"))]
    # 10.00 less the 10 % sale, taxed at 8 %, then (uncommitted) at 20 %.
    assert quote_lines(line, Destination("US")).tax_total == Decimal("0.72")
    db.session.get(TaxRate, shop["rate"].id).rate = Decimal("0.20")
    db.session.flush()
    assert quote_lines(line, Destination("US")).tax_total == Decimal("1.80")
    db.session.rollback()
    assert quote_lines(line, Destination("US")).tax_total == Decimal("0.72")
