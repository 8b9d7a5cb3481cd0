"""The cart's estimate, POST /checkout/quote and the priced payment intent: every voucher
refusal is a 422 naming errors.voucher_code; an order keeps what was priced."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
from sqlalchemy import select

from ecom.commerce.expiry import expire_order
from ecom.commerce.models import Order
from ecom.db import utcnow
from ecom.extensions import db
from ecom.pricing.models import Promotion, PromotionUse, ShippingMethod, TaxRate
from tests.commerce_support import auth, fill_cart
from tests.factories import StoreFactory, UserFactory, stocked_variant
from tests.pricing_support import method, promotion, tax_class, tax_rate, us_shop, zone

INTENT = "/api/v1/checkout/payment-intent"
QUOTE = "/api/v1/checkout/quote"
US_ADDRESS = {
    "full_name": "Sam Shopper",
    "street": "1 Main Street",
    "city": "Springfield",
    "state": "IL",
    "postal_code": "62701",
    "country": "US",
}
DE_ADDRESS = dict(US_ADDRESS, city="Berlin", state="", postal_code="10115", country="DE")


@pytest.fixture
def shop(db):
    """The demo's rules: US standard/express at 8 %, an EU zone with VAT, a pickup store."""
    us_shop()
    eu = zone("Europe", ["DE", "FR"], tax_shipping=True)
    method(eu, "eu-standard", "4.90", min_days=2, max_days=6)
    tax_rate("DE", "0.19", name="MwSt")
    tax_rate("DE", "0.07", cls="reduced", name="MwSt ermäßigt")
    berlin = StoreFactory(name="Berlin", country="DE")
    method(None, "pickup-berlin", kind="pickup", store=berlin, name="Pick up in Berlin")
    return berlin


@pytest.fixture
def cart(db, shopper, shop):
    variant = stocked_variant(quantity=50, price="20.00")
    variant.compare_at_price = Decimal("25.00")
    fill_cart(shopper, [(variant, 2)])
    return variant


def quote(client, user, **body):
    return client.post(QUOTE, json={"shipping_address": US_ADDRESS, **body}, headers=auth(user))


def pay(client, user, **body):
    return client.post(INTENT, json={"shipping_address": US_ADDRESS, **body}, headers=auth(user))


def test_the_quote_prices_the_cart_and_offers_every_method(client, shopper, cart):
    response = quote(client, shopper)

    assert response.status_code == 200, response.get_json()
    body = response.get_json()
    # 40.00 + 5.99 (under 50.00) + 3.20 tax
    assert (
        body["subtotal"],
        body["discount_total"],
        body["shipping_cost"],
        body["tax_total"],
        body["total"],
    ) == ("40.00", "0.00", "5.99", "3.20", "49.19")
    assert body["shipping_method"] == {
        "code": "standard",
        "name": "Standard",
        "kind": "flat",
        "price": "5.99",
        "min_days": 3,
        "max_days": 5,
        "store": None,
    }
    assert [m["code"] for m in body["shipping_methods"]] == ["standard", "express", "pickup-berlin"]
    assert body["shipping_methods"][2]["store"]["name"] == "Berlin"
    assert body["lines"] == [
        {
            "sku": cart.sku,
            "quantity": 2,
            "unit_price": "20.00",
            "compare_at_price": "25.00",
            "line_total": "40.00",
            "discount": "0.00",
            "tax": "3.20",
            "tax_rate": "0.0800",
            "tax_name": "Sales tax",
        }
    ]
    assert body["voucher"] is None and body["prices_include_tax"] is False


def test_the_payment_intent_is_priced_by_the_same_quote(client, shopper, cart):
    promotion("Ten", code="TEN", value="10")
    expected = quote(client, shopper, shipping_method="express", voucher_code="ten").get_json()

    response = pay(client, shopper, shipping_method="express", voucher_code="ten")

    assert response.status_code == 201, response.get_json()
    order = response.get_json()["order"]
    # 40.00 - 4.00 + 14.99 + 2.88 (36.00 * 8 %)
    assert (
        (
            order["subtotal"],
            order["discount_total"],
            order["shipping_cost"],
            order["tax_total"],
            order["total"],
        )
        == ("40.00", "4.00", "14.99", "2.88", "53.87")
        == (
            expected["subtotal"],
            expected["discount_total"],
            expected["shipping_cost"],
            expected["tax_total"],
            expected["total"],
        )
    )
    assert order["shipping_method"] == {"code": "express", "name": "Express"}
    assert order["voucher_code"] == "TEN" and order["payment"]["amount"] == "53.87"
    assert order["items"][0]["discount"] == "4.00" and order["items"][0]["tax"] == "2.88"
    # a voucher without limits: its use is recorded, not counted (no counter row to lock)
    use = db.session.scalar(select(PromotionUse))
    assert (use.code, use.discount, use.released_at) == ("TEN", Decimal("4.00"), None)
    assert db.session.scalar(select(Promotion.times_used).where(Promotion.code == "TEN")) == 0


def test_a_pickup_order_names_its_store(client, shopper, cart, shop):
    from ecom.inventory.models import StockReservation
    from tests.factories import StockLocationFactory
    from tests.locations_support import place

    # the store's click & collect shelf holds the units (stock locations, issue 14)
    shelf = StockLocationFactory(kind="store", store=shop, ships_orders=False, accepts_pickup=True)
    place(cart, shelf, 5)

    response = pay(client, shopper, shipping_method="pickup-berlin")

    assert response.status_code == 201, response.get_json()
    order = db.session.scalar(select(Order))
    assert order.pickup_store_id == shop.id and order.shipping_cost == 0
    assert order.tax == Decimal("7.60")  # taxed where it is handed over: 40.00 * 19 %
    assert response.get_json()["order"]["pickup_store_id"] == shop.id
    # and its units are held at the store only
    held = [(r.location_id, r.quantity) for r in db.session.scalars(select(StockReservation))]
    assert held == [(shelf.id, 2)]


def test_click_and_collect_through_the_api_is_one_pickup_at_the_store(client, shopper, cart, shop):
    from ecom.actor import Actor
    from ecom.fulfillment import services as fulfillment
    from ecom.fulfillment.models import Fulfillment
    from ecom.notifications.models import Notification
    from tests.factories import StockLocationFactory
    from tests.locations_support import place, row_at

    shelf = StockLocationFactory(kind="store", store=shop, name="Berlin shelf", ships_orders=False,
                                 accepts_pickup=True)
    place(cart, shelf, 3)
    intent = pay(client, shopper, shipping_method="pickup-berlin").get_json()["payment_intent_id"]
    paid = client.post("/api/v1/checkout/confirm", json={"payment_intent_id": intent}, headers=auth(shopper))
    assert paid.status_code == 200, paid.get_json()

    [parcel] = db.session.scalars(select(Fulfillment)).all()
    assert parcel.is_pickup and parcel.location_id == shelf.id and row_at(cart, shelf).quantity == 1
    clerk = Actor("clerk@shop.test", None)
    fulfillment.mark_processing(parcel, actor=clerk)
    fulfillment.mark_ready_for_pickup(parcel, actor=clerk)
    db.session.commit()
    [mail] = db.session.scalars(select(Notification).where(
        Notification.event_type == "ORDER_READY_FOR_PICKUP", Notification.channel == "email")).all()
    assert "Berlin" in mail.body
    fulfillment.mark_picked_up(parcel, actor=clerk)
    assert parcel.order.status == "delivered"


def test_a_pickup_at_a_store_without_the_stock_is_refused_before_any_order(client, shopper, cart, shop):
    from tests.factories import StockLocationFactory

    StockLocationFactory(kind="store", store=shop, name="Berlin shelf", ships_orders=False,
                         accepts_pickup=True)
    response = pay(client, shopper, shipping_method="pickup-berlin")

    assert response.status_code == 409 and "at Berlin shelf" in response.get_json()["detail"]
    assert db.session.scalar(select(Order)) is None


def test_a_pickup_at_a_store_without_a_click_and_collect_stock_room_is_a_422(client, shopper, cart, shop):
    response = pay(client, shopper, shipping_method="pickup-berlin")

    assert response.status_code == 422 and "click & collect" in response.get_json()["detail"]
    assert db.session.scalar(select(Order)) is None


def test_a_german_address_pays_vat_and_taxed_shipping(client, shopper, cart):
    body = quote(client, shopper, shipping_address=DE_ADDRESS).get_json()
    # 40.00 * 19 % = 7.60; shipping 4.90 * 19 % = 0.93
    assert (body["shipping_cost"], body["tax_total"], body["total"]) == ("4.90", "8.53", "53.43")


def test_an_unknown_country_and_one_not_shipped_to_are_clear_422s(client, shopper, cart):
    unknown = quote(client, shopper, shipping_address=dict(US_ADDRESS, country="ZZ"))
    nowhere = pay(client, shopper, shipping_address=dict(US_ADDRESS, country="JP"))
    bad_method = pay(client, shopper, shipping_method="teleport")

    assert unknown.status_code == 422 and "shipping_address.country" in unknown.get_json()["errors"]
    assert nowhere.status_code == 422 and nowhere.get_json()["errors"] == {
        "country": ["We do not ship to this country."]
    }
    assert bad_method.status_code == 422 and "shipping_method" in bad_method.get_json()["errors"]
    assert db.session.scalar(select(Order.id)) is None


REFUSALS = [
    ("UNKNOWN1", {}, "This code is not known."),
    ("SOON", {"starts_at": utcnow() + timedelta(days=1)}, "This code is not valid yet."),
    ("OVER", {"ends_at": utcnow() - timedelta(minutes=1)}, "This code has expired."),
    ("GONE", {"usage_limit": 0}, "This code has been used up."),
    ("BIG", {"min_subtotal": Decimal("100.00")}, "This code needs a subtotal of at least 100.00."),
    (
        "OTHER",
        {"scope": "products", "product_ids": [999_999]},
        "This code does not apply to anything in the cart.",
    ),
    ("OFF", {"is_active": False}, "This code is not known."),
]


@pytest.mark.parametrize(("code", "fields", "message"), REFUSALS, ids=[r[0] for r in REFUSALS])
@pytest.mark.parametrize("endpoint", [QUOTE, INTENT])
def test_each_reason_a_voucher_is_refused_is_a_422(client, shopper, cart, code, fields, message, endpoint):
    if code != "UNKNOWN1":
        promotion(code.title(), code=code, **fields)

    response = client.post(
        endpoint, json={"shipping_address": US_ADDRESS, "voucher_code": code.lower()}, headers=auth(shopper)
    )

    assert response.status_code == 422
    assert response.get_json()["errors"] == {"voucher_code": [message]}
    assert db.session.scalar(select(Order.id)) is None


def test_the_customers_own_limit_is_a_422(client, shopper, cart):
    promotion("Once", code="ONCE", per_customer_limit=1)
    first = pay(client, shopper, voucher_code="once")
    assert first.status_code == 201
    # a new checkout of the same cart replaces the open order, giving its use back first
    assert pay(client, shopper, voucher_code="once").status_code == 201
    db.session.expire_all()
    order = db.session.scalar(select(Order).where(Order.status == "created"))
    order.status = "paid"  # the paid order keeps its use
    db.session.commit()

    again = quote(client, shopper, voucher_code="ONCE")

    assert again.status_code == 422
    assert again.get_json()["errors"] == {
        "voucher_code": ["You have already used this code as often as it allows."]
    }


def test_cancelling_an_unpaid_order_gives_the_use_back(client, shopper, cart):
    promotion("Single", code="SINGLE", usage_limit=1)
    placed = pay(client, shopper, voucher_code="single").get_json()["order"]
    other = UserFactory()
    fill_cart(other, [(cart, 1)])
    assert pay(client, other, voucher_code="single").status_code == 422  # used up

    cancelled = client.post(f"/api/v1/orders/{placed['order_number']}/cancel", headers=auth(shopper))

    assert cancelled.status_code == 200
    db.session.expire_all()
    assert db.session.scalar(select(Promotion.times_used).where(Promotion.code == "SINGLE")) == 0
    assert db.session.scalar(select(PromotionUse.released_at)) is not None
    assert pay(client, other, voucher_code="single").status_code == 201


def test_expiry_gives_the_use_back(client, shopper, cart):
    promotion("Single", code="SINGLE", usage_limit=1)
    placed = pay(client, shopper, voucher_code="single").get_json()["order"]
    order = db.session.scalar(select(Order).where(Order.order_number == placed["order_number"]))

    assert expire_order(order.id, utcnow() + timedelta(hours=1)) == placed["order_number"]

    assert db.session.scalar(select(Promotion.times_used).where(Promotion.code == "SINGLE")) == 0


def test_an_orders_totals_never_change_when_the_rules_do(client, shopper, cart):
    sale = promotion("Sale", value="10")
    promotion("Five", code="FIVE", kind="fixed", value="5.00")
    placed = pay(client, shopper, voucher_code="five").get_json()["order"]
    number = placed["order_number"]

    # when every rule changes afterwards
    for rate in db.session.scalars(select(TaxRate)):
        rate.rate = Decimal("0.2500")
    for shipping in db.session.scalars(select(ShippingMethod).where(ShippingMethod.kind != "pickup")):
        shipping.price = Decimal("99.00")
    sale.value = Decimal("50")
    db.session.delete(db.session.scalar(select(Promotion).where(Promotion.code == "FIVE")))
    tax_class("standard").name = "Changed"
    db.session.commit()

    # then the order reads as it was priced
    again = client.get(f"/api/v1/orders/{number}", headers=auth(shopper)).get_json()
    for field in (
        "subtotal",
        "discount_total",
        "shipping_cost",
        "tax_total",
        "total",
        "items",
        "voucher_code",
        "shipping_method",
    ):
        assert again[field] == placed[field], field
    # and a new quote uses the new rules
    assert quote(client, shopper).get_json()["tax_total"] != placed["tax_total"]


def test_the_cart_shows_an_estimate_for_a_destination(client, shopper, cart):
    headers = auth(shopper)
    default = client.get("/api/v1/cart", headers=headers).get_json()
    german = client.get("/api/v1/cart?country=de", headers=headers).get_json()
    unknown = client.get("/api/v1/cart?country=ZZ", headers=headers)
    nowhere = client.get("/api/v1/cart?country=JP", headers=headers).get_json()

    assert (default["destination"], default["shipping_method"]["code"], default["total"]) == (
        {"country": "US", "region": None},
        "standard",
        "49.19",
    )
    assert default["items"][0]["compare_at_price"] == "25.00" and default["items"][0]["tax"] == "3.20"
    assert (german["shipping_method"]["code"], german["tax_total"]) == ("eu-standard", "8.53")
    assert unknown.status_code == 422 and "country" in unknown.get_json()["errors"]
    assert nowhere["shipping_method"] is None and nowhere["total"] == "40.00"


def test_an_automatic_sale_shows_in_the_cart(client, shopper, cart):
    promotion("Category sale", value="25", scope="categories", category_ids=[cart.product.category_id])
    body = client.get("/api/v1/cart", headers=auth(shopper)).get_json()
    # 40.00 - 10.00 = 30.00: under 50.00, so 5.99 shipping; tax 2.40
    assert (body["discount_total"], body["items"][0]["discount"], body["total"]) == (
        "10.00",
        "10.00",
        "38.39",
    )


def test_the_quote_and_the_cart_answer_as_the_document_says(client, shopper, cart):
    from tests.storefront_api.test_openapi_contract import conforms, request_conforms

    document = client.get("/api/v1/openapi.json").get_json()
    operation = document["paths"]["/api/v1/checkout/quote"]["post"]
    assert {"200", "409", "422"} <= set(operation["responses"])
    promotion("Ten", code="TEN")
    body = {"shipping_address": US_ADDRESS, "shipping_method": "express", "voucher_code": "ten"}
    assert request_conforms(document, "/api/v1/checkout/quote", "post", body) == []
    assert request_conforms(document, "/api/v1/checkout/payment-intent", "post", body) == []
    answer = client.post(QUOTE, json=body, headers=auth(shopper)).get_json()
    assert conforms(document, "/api/v1/checkout/quote", "post", "200", answer) == []
    cart_answer = client.get("/api/v1/cart?country=DE&region=BE", headers=auth(shopper)).get_json()
    assert conforms(document, "/api/v1/cart", "get", "200", cart_answer) == []
    params = {p["name"] for p in document["paths"]["/api/v1/cart"]["get"]["parameters"]}
    assert {"country", "region"} <= params
    placed = client.post(INTENT, json=body, headers=auth(shopper)).get_json()
    assert conforms(document, "/api/v1/checkout/payment-intent", "post", "201", placed) == []
    assert placed["order"]["voucher_code"] == "TEN"


def test_a_guest_cart_gets_a_quote_too(client, shop):
    variant = stocked_variant(quantity=5, price="30.00")
    db.session.commit()
    added = client.post("/api/v1/cart/items", json={"sku": variant.sku, "quantity": 2})
    token = added.headers["X-Cart-Token"]

    answer = client.post(QUOTE, json={"shipping_address": DE_ADDRESS}, headers={"X-Cart-Token": token})

    assert answer.status_code == 200
    # European standard shipping 4.90; VAT 19 %: 60.00 * 0.19 = 11.40, 4.90 * 0.19 = 0.931 -> 0.93
    assert (answer.get_json()["shipping_cost"], answer.get_json()["tax_total"]) == ("4.90", "12.33")
    empty = client.post(QUOTE, json={"shipping_address": DE_ADDRESS})
    assert empty.status_code == 409


def test_a_generated_single_use_code_serves_one_order_until_it_is_cancelled(client, shopper, cart):
    from ecom.actor import SYSTEM
    from ecom.pricing.models import VoucherCode
    from ecom.pricing.services import generate_codes

    campaign = promotion("Flyer", kind="fixed", value="5.00")
    [code] = generate_codes(campaign, 1, prefix="flyer", actor=SYSTEM)
    other = UserFactory()
    fill_cart(other, [(cart, 1)])

    placed = pay(client, shopper, voucher_code=code.code.lower())
    refused = pay(client, other, voucher_code=code.code)

    assert placed.status_code == 201 and placed.get_json()["order"]["discount_total"] == "5.00"
    assert refused.status_code == 422 and refused.get_json()["errors"] == {
        "voucher_code": ["This code has been used up."]
    }
    number = placed.get_json()["order"]["order_number"]
    assert client.post(f"/api/v1/orders/{number}/cancel", headers=auth(shopper)).status_code == 200
    db.session.expire_all()
    assert db.session.scalar(select(VoucherCode.times_used)) == 0
    assert pay(client, other, voucher_code=code.code).status_code == 201


def test_a_late_payment_of_an_expired_order_takes_its_use_back(client, shopper, cart):
    # given an order with a voucher, expired (its use given back), then paid after all
    promotion("Ten", code="TEN", usage_limit=5)
    placed = pay(client, shopper, voucher_code="ten").get_json()
    order = db.session.scalar(select(Order).where(Order.order_number == placed["order"]["order_number"]))
    expire_order(order.id, utcnow() + timedelta(hours=1))
    db.session.commit()
    assert db.session.scalar(select(Promotion.times_used)) == 0

    from ecom.actor import WEBHOOK
    from ecom.commerce.checkout import Finalized, finalize_payment
    from ecom.commerce.gateways.base import Intent

    # (the succeeded verdict as a signed webhook would bring it)
    intent = Intent(placed["payment_intent_id"], None, "succeeded", amount_minor=int(order.total * 100))
    result = finalize_payment(intent.id, actor=WEBHOOK, intent=intent)

    # then the revived order holds its use again, with the discount it was priced with
    assert result.outcome == Finalized.PAID and result.order.discount_total == Decimal("4.00")
    db.session.expire_all()
    assert db.session.scalar(select(Promotion.times_used)) == 1
    assert db.session.scalar(select(PromotionUse.released_at)) is None


def test_a_saved_address_in_an_unknown_country_is_a_422_too(client, shopper, cart):
    from tests.factories import AddressFactory

    saved = AddressFactory(user=shopper, country="QQ")
    response = client.post(QUOTE, json={"shipping_address_id": saved.id}, headers=auth(shopper))
    assert response.status_code == 422 and response.get_json()["errors"] == {
        "country": ["Not an ISO 3166-1 alpha-2 country code."]
    }
    mixed = client.get("/api/v1/cart?country=dE", headers=auth(shopper))
    assert mixed.status_code == 422


def test_an_unlimited_sale_locks_no_promotion_row_but_a_limited_voucher_does(client, shopper, cart):
    from tests.commerce_support import statements_during

    promotion("Everything 10 % off", value="10")
    promotion("Limited", code="LIMITED", kind="fixed", value="1.00", usage_limit=100)
    headers = auth(shopper)

    response, sql = statements_during(
        lambda: client.post(INTENT, json={"shipping_address": US_ADDRESS, "voucher_code": "limited"},
                            headers=headers))

    assert response.status_code == 201, response.get_json()
    counter_updates = [s for s in sql if s.startswith("UPDATE promotions")]
    assert len(counter_updates) == 1  # the voucher's, not the sale's
    db.session.expire_all()
    assert {u.code for u in db.session.scalars(select(PromotionUse))} == {None, "LIMITED"}
    assert [p.times_used for p in db.session.scalars(select(Promotion).order_by(Promotion.id))] == [0, 1]


def test_giving_an_unlimited_promotion_a_limit_counts_the_uses_it_holds(client, shopper, cart):
    from ecom.pricing.services import prepare_promotion

    sale = promotion("Sale", value="10")
    assert pay(client, shopper).status_code == 201
    db.session.expire_all()
    sale = db.session.get(Promotion, sale.id)
    assert sale.times_used == 0

    sale.usage_limit = 5
    prepare_promotion(sale)
    db.session.flush()

    assert sale.times_used == 1
    # and from now on the use is given back from the counter
    number = db.session.scalar(select(Order.order_number))
    assert client.post(f"/api/v1/orders/{number}/cancel", headers=auth(shopper)).status_code == 200
    db.session.expire_all()
    assert db.session.get(Promotion, sale.id).times_used == 0
