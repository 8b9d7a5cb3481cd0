"""Back office 2 on the orders side: every payment attempt shown, money with its sign, dates
to the minute in the user's zone, only the actions that can succeed, the customer page."""

from __future__ import annotations

import re
from decimal import Decimal

from sqlalchemy import select

from ecom.commerce.models import Order, OrderEvent
from ecom.commerce.order_actions import refund_payment
from ecom.commerce.status import EventKind
from ecom.fulfillment.models import Fulfillment
from ecom.identity.models import CustomerNote
from ecom.unit_of_work import commit
from tests.admin.conftest import new_client, sign_in
from tests.commerce_support import ADDRESS, auth, fill_cart
from tests.factories import AddressFactory, UserFactory, stocked_variant

MICROSECONDS = re.compile(r"\d{2}:\d{2}:\d{2}\.\d+")


def _declined_twice_then_paid(app, db):
    shopper = UserFactory()
    variant = stocked_variant(quantity=10, price="20.00")
    fill_cart(shopper, [(variant, 1)])
    client = app.test_client()
    placed = client.post("/api/v1/checkout/payment-intent", json={"shipping_address": ADDRESS},
                         headers=auth(shopper)).get_json()
    for method in ("pm_card_chargeDeclined", "pm_card_chargeDeclined", "pm_card_visa"):
        client.post("/api/v1/checkout/confirm", json={"payment_intent_id": placed["payment_intent_id"],
                                                      "payment_method": method}, headers=auth(shopper))
    return db.session.scalar(select(Order).where(Order.order_number == placed["order"]["order_number"]))


def test_every_payment_attempt_is_on_the_order_page_declines_too(app, db, as_role):
    order = _declined_twice_then_paid(app, db)

    history = [(e.from_status, e.to_status) for e in db.session.scalars(
        select(OrderEvent).where(OrderEvent.order_id == order.id, OrderEvent.kind == EventKind.PAYMENT)
        .order_by(OrderEvent.id))]
    assert history == [("pending", "failed"), ("failed", "failed"), ("failed", "completed")]

    body = as_role("merchandiser").get(f"/admin/order/details/?id={order.id}").get_data(as_text=True)
    attempts = body[body.index('id="payment-attempts"'):]
    attempts = attempts[:attempts.index("</table>")]
    assert attempts.count('class="payment-attempt') == 3
    assert attempts.count("→ failed") == 2 and "declined again" in attempts


def test_money_has_its_sign_and_dates_have_no_microseconds(db, as_role, make_order):
    order = make_order("paid")

    body = as_role("admin").get(f"/admin/order/details/?id={order.id}").get_data(as_text=True)
    listing = as_role("admin").get("/admin/order/").get_data(as_text=True)

    assert f'id="order-total">${order.total:,.2f}<' in body
    assert f"${order.total:,.2f}" in listing
    for page in (body, listing):
        assert not MICROSECONDS.search(page)
        assert "+00:00" not in page


def test_dates_follow_the_users_time_zone(db, as_role, staff, make_order):
    order = make_order("paid")
    staff["admin"].time_zone = "Asia/Tokyo"
    db.session.commit()

    body = as_role("admin").get(f"/admin/order/details/?id={order.id}").get_data(as_text=True)

    tokyo = order.created_at.astimezone(__import__("zoneinfo").ZoneInfo("Asia/Tokyo"))
    assert tokyo.strftime("%Y-%m-%d %H:%M JST") in body


def test_the_queue_offers_each_fulfillment_its_one_next_step(db, as_role, make_order):
    orders = {status: make_order(status) for status in ("paid", "packed", "delivered")}
    ids = {status: db.session.scalar(select(Fulfillment.id).where(Fulfillment.order_id == o.id))
           for status, o in orders.items()}

    body = as_role("warehouse").get("/admin/fulfillment/").get_data(as_text=True)

    assert f'id="step-{ids["paid"]}"' in body and "Start picking" in body
    assert f'id="ship-{ids["packed"]}"' in body
    assert f'id="ship-{ids["paid"]}"' not in body and f'ship-{ids["delivered"]}"' not in body
    assert f'id="step-{ids["delivered"]}"' not in body
    # The merchandiser may look but not act: no buttons
    assert "next-step" not in as_role("merchandiser").get("/admin/fulfillment/").get_data(as_text=True)


def test_the_ship_form_is_only_for_packed_fulfillments(db, as_role, make_order):
    pending = db.session.scalar(select(Fulfillment).where(Fulfillment.order_id == make_order("paid").id))

    body = as_role("warehouse").get(f"/admin/fulfillment/ship?ids={pending.id}").get_data(as_text=True)

    assert 'id="not-ready"' in body and "mark it packed first" in body
    assert 'id="ship-submit"' not in body and 'id="nothing-to-ship"' in body


def test_the_next_step_button_moves_the_fulfillment_on(db, as_role, make_order):
    fulfillment = db.session.scalar(select(Fulfillment).where(Fulfillment.order_id == make_order("paid").id))

    as_role("warehouse").post(f"/admin/fulfillment/step/{fulfillment.id}", follow_redirects=True)

    db.session.expire_all()
    assert db.session.get(Fulfillment, fulfillment.id).status == "processing"


def test_the_customer_page_shows_orders_addresses_net_lifetime_value_and_notes(app, db, staff, make_order):
    order = make_order("paid")
    customer = order.user
    AddressFactory(user=customer, city="Lisbon")
    refund_payment(order, Decimal("10.00"), actor=__import__("ecom.actor").actor.SYSTEM)
    commit()
    client = new_client(app)
    sign_in(client, staff["warehouse"])

    client.post(f"/admin/customer/note/{customer.id}", data={"body": "Prefers morning delivery."})
    body = client.get(f"/admin/customer/details/?id={customer.id}").get_data(as_text=True)

    assert order.order_number in body and "Lisbon" in body
    assert f'id="lifetime-value">${order.total - Decimal("10.00"):,.2f}<' in body
    assert "Prefers morning delivery." in body
    assert db.session.scalar(select(CustomerNote).where(CustomerNote.user_id == customer.id)).author == \
        "warehouse@shop.test"
    # Staff are not customers: their page is not here
    assert client.get(f"/admin/customer/details/?id={staff['admin'].id}").status_code in (302, 404)


def _link(page: str, element_id: str) -> str:
    return re.search(rf'href="([^"]+)" id="{element_id}"', page).group(1).replace("&amp;", "&")


def test_the_dashboard_counts_revenue_net_of_refunds_and_links_each_figure(db, as_role, make_order):
    from ecom.actor import SYSTEM
    from ecom.db import utcnow

    order = make_order("paid")
    order.created_at = order.paid_at = utcnow()
    refund_payment(order, Decimal("10.00"), actor=SYSTEM)
    commit()
    client = as_role("merchandiser")

    page = client.get("/admin/").get_data(as_text=True)

    net = order.total - Decimal("10.00")
    assert f'id="revenue-range">${net:,.2f}<' in page and f'id="revenue-today">${net:,.2f}<' in page
    assert 'id="refunded-range">$10.00 refunded<' in page
    # Each figure leads to the list behind it
    for figure in ("orders-today", "revenue-today", "orders-range", "revenue-range"):
        listed = client.get(_link(page, figure)).get_data(as_text=True)
        assert order.order_number in listed, figure
    assert "x-tick" in page and "y-tick" in page


def test_the_dashboard_range_is_chosen_and_checked(db, as_role, make_order):
    order = make_order("paid", quantity=1)
    client = as_role("admin")

    old = client.get("/admin/?start=2020-01-01&end=2020-01-31").get_data(as_text=True)
    wrong = client.get("/admin/?start=2020-02-01&end=2020-01-01").get_data(as_text=True)
    garbled = client.get("/admin/?start=yesterday").get_data(as_text=True)

    assert old.count("<rect ") == 31 and 'id="orders-range">0<' in old
    assert order.items[0].product_name not in old
    assert "ends before it starts" in wrong and "YYYY-MM-DD" in garbled


def test_audit_entries_name_and_link_their_records_whatever_made_them(app, db, as_role, staff, make_order):
    from ecom.actor import WEBHOOK, Actor
    from ecom.identity.services import set_user_role
    from ecom.inventory.services import adjust_stock
    from tests.factories import stocked_variant as make_variant

    # Given changes made outside the back office: a job's stock count, a webhook's refund,
    # a role change from the CLI, and a cancellation through the API's service
    variant = make_variant(quantity=5, sku="LAMP-RED")
    adjust_stock(variant, -2, "damage", actor=Actor("system:job"))
    order = make_order("paid")
    refund_payment(order, Decimal("5.00"), actor=WEBHOOK)
    set_user_role(staff["warehouse"], "merchandiser", actor=Actor("cli"))
    commit()

    page = as_role("admin").get("/admin/auditlog/").get_data(as_text=True)

    found = re.findall(r'<a href="([^"]+)" class="audit-record">([^<]+)</a>', page)
    links = {text.replace("&amp;", "&"): href.replace("&amp;", "&") for href, text in found}
    assert links["Stock of LAMP-RED"].startswith("/admin/inventory/details/")
    assert links[f"Order {order.order_number}"] == f"/admin/order/details/?id={order.id}"
    assert links["User warehouse@shop.test"] == f"/admin/user/details/?id={staff['warehouse'].id}"
    assert "system:job" in page and "stripe:webhook" in page and "cli" in page


def test_staff_choose_their_time_zone(db, as_role, staff):
    client = as_role("warehouse")

    client.post("/admin/me", data={"time_zone": "Europe/Lisbon"})
    refused = client.post("/admin/me", data={"time_zone": "Mars/Olympus"}).get_data(as_text=True)

    db.session.expire_all()
    assert staff["warehouse"].time_zone == "Europe/Lisbon"
    assert "Unknown time zone" in refused
