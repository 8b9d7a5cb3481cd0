"""Pricing screens: rules checked by ecom.pricing.services, usage shown, codes generated in bulk."""

from __future__ import annotations

import csv
import io
from decimal import Decimal

from sqlalchemy import func, select

from ecom.pricing.models import Promotion, ShippingZone, TaxRate, VoucherCode
from tests.factories import ProductFactory
from tests.pricing_support import promotion, tax_class, tax_rate, zone


def test_an_admin_creates_a_zone_with_countries_as_text(as_role, db):
    response = as_role("admin").post(
        "/admin/shippingzone/new/", data={"name": "Europe", "countries": "de, FR ,at", "tax_shipping": "y"}
    )
    assert response.status_code == 302
    created = db.session.scalar(select(ShippingZone).where(ShippingZone.name == "Europe"))
    assert created.countries == ["DE", "FR", "AT"] and created.tax_shipping is True


def test_an_unknown_country_or_one_already_zoned_is_a_message(as_role, db):
    zone("Europe", ["DE"])
    db.session.commit()  # a savepoint: the refused saves roll back to here
    client = as_role("admin")
    unknown = client.post(
        "/admin/shippingzone/new/", data={"name": "X", "countries": "ZZ"}, follow_redirects=True
    )
    twice = client.post(
        "/admin/shippingzone/new/", data={"name": "Y", "countries": "DE"}, follow_redirects=True
    )
    assert "Unknown country code(s): ZZ" in unknown.get_data(as_text=True)
    assert "DE already in the zone" in twice.get_data(as_text=True)
    assert db.session.scalar(select(func.count(ShippingZone.id))) == 1


def test_a_tax_rate_is_normalised(as_role, db):
    standard = tax_class()
    db.session.commit()
    response = as_role("admin").post(
        "/admin/taxrate/new/",
        data={
            "country": "us",
            "region": " ca ",
            "tax_class": standard.id,
            "rate": "0.0725",
            "name": "California",
        },
    )
    assert response.status_code == 302
    rate = db.session.scalar(select(TaxRate))
    assert (rate.country, rate.region, rate.rate) == ("US", "CA", Decimal("0.0725"))


def test_merchandisers_read_tax_and_shipping_but_edit_promotions(as_role, db):
    merch = as_role("merchandiser")
    assert merch.get("/admin/taxrate/").status_code == 200
    assert merch.post("/admin/taxrate/new/", data={"country": "US"}).status_code == 403
    assert merch.post("/admin/shippingmethod/new/", data={"code": "x"}).status_code == 403
    response = merch.post(
        "/admin/promotion/new/",
        data={
            "name": "Spring",
            "code": " spring10 ",
            "kind": "percent",
            "value": "10",
            "scope": "all",
            "is_active": "y",
        },
    )
    assert response.status_code == 302
    assert db.session.scalar(select(Promotion.code)) == "SPRING10"
    assert as_role("warehouse").get("/admin/promotion/").status_code == 403


def test_a_category_sale_names_its_categories(as_role, db):
    product = ProductFactory()
    db.session.commit()
    client = as_role("admin")
    missing = client.post(
        "/admin/promotion/new/",
        data={"name": "Shoe sale", "kind": "percent", "value": "20", "scope": "categories"},
        follow_redirects=True,
    )
    assert "Name the categories it applies to" in missing.get_data(as_text=True)
    done = client.post(
        "/admin/promotion/new/",
        data={
            "name": "Shoe sale",
            "kind": "percent",
            "value": "20",
            "scope": "categories",
            "category_ids": f"{product.category_id}",
        },
    )
    assert done.status_code == 302
    assert db.session.scalar(select(Promotion.category_ids)) == [product.category_id]


def test_the_list_shows_usage_so_far_and_remaining(as_role, db):
    promotion("Launch", code="LAUNCH", usage_limit=10, times_used=3)
    db.session.commit()
    page = as_role("merchandiser").get("/admin/promotion/").get_data(as_text=True)
    assert "3 / 10" in page and ">7<" in page.replace(" ", "").replace("\n", "")


def test_five_hundred_single_use_codes_are_generated_and_exported(as_role, db):
    campaign = promotion("Flyer", kind="fixed", value="5.00")
    db.session.commit()
    client = as_role("merchandiser")

    response = client.post(
        f"/admin/promotion/generate/{campaign.id}",
        data={"count": "500", "prefix": "flyer", "uses_per_code": "1"},
    )

    assert response.status_code == 302
    assert db.session.scalar(select(func.count(VoucherCode.id))) == 500
    export = client.get(f"/admin/promotion/codes/{campaign.id}.csv")
    assert export.status_code == 200 and export.mimetype == "text/csv"
    rows = list(csv.DictReader(io.StringIO(export.get_data(as_text=True))))
    assert len(rows) == 500 == len({row["code"] for row in rows})
    assert all(
        row["code"].startswith("FLYER-") and row["uses_per_code"] == "1" and row["remaining"] == "1"
        for row in rows
    )


def test_too_many_codes_is_a_message(as_role, db):
    campaign = promotion("Flyer")
    db.session.commit()
    response = as_role("admin").post(
        f"/admin/promotion/generate/{campaign.id}", data={"count": "100001"}, follow_redirects=True
    )
    assert response.status_code == 200
    assert db.session.scalar(select(func.count(VoucherCode.id))) == 0


def test_a_generated_code_is_a_working_voucher(db):
    from ecom.actor import SYSTEM
    from ecom.commerce.cart import variant_line
    from ecom.pricing.engine import USED_UP, VoucherRefused
    from ecom.pricing.quote import Destination, quote_lines
    from ecom.pricing.services import generate_codes
    from tests.factories import stocked_variant

    campaign = promotion("Flyer", kind="fixed", value="5.00")
    [code] = generate_codes(campaign, 1, prefix="x", actor=SYSTEM)
    line = variant_line(stocked_variant(price="20.00"), 1)
    assert quote_lines([line], Destination("US"), voucher_code=code.code.lower()).discount_total == Decimal(
        "5.00"
    )
    code.times_used = 1
    db.session.flush()
    try:
        quote_lines([line], Destination("US"), voucher_code=code.code)
    except VoucherRefused as refused:
        assert refused.reason == USED_UP
    else:
        raise AssertionError("a used single-use code was accepted")


def test_the_product_form_has_a_tax_class_and_variants_a_compare_at_price(as_role, db):
    page = as_role("admin").get("/admin/product/new/").get_data(as_text=True)
    assert 'name="tax_class"' in page and "compare_at_price" in page


def test_a_second_country_wide_rate_of_a_class_is_refused(as_role, db):
    standard = tax_class()
    tax_rate("DE", "0.19")
    db.session.commit()
    response = as_role("admin").post(
        "/admin/taxrate/new/",
        data={"country": "DE", "region": "", "tax_class": standard.id, "rate": "0.16", "name": "Again"},
        follow_redirects=True,
    )
    assert "already has a rate" in response.get_data(as_text=True)
    assert db.session.scalar(select(func.count(TaxRate.id))) == 1


def test_shipping_methods_by_weight_and_pickup(as_role, db):
    from ecom.pricing.models import ShippingMethod
    from tests.factories import StoreFactory

    europe = zone("Europe", ["DE"])
    store = StoreFactory(name="Berlin", country="DE")
    db.session.commit()
    client = as_role("admin")
    weight = client.post(
        "/admin/shippingmethod/new/",
        data={
            "zone": europe.id,
            "code": "Parcel",
            "name": "Parcel",
            "kind": "weight",
            "price": "0",
            "weight_brackets": '[{"up_to": 5, "price": "9.99"}, {"up_to": 1, "price": "4.99"}]',
            "is_active": "y",
        },
    )
    no_store = client.post(
        "/admin/shippingmethod/new/",
        data={
            "code": "pickup-x",
            "name": "Pick up",
            "kind": "pickup",
            "price": "3.00",
            "weight_brackets": "[]",
        },
        follow_redirects=True,
    )
    pickup = client.post(
        "/admin/shippingmethod/new/",
        data={
            "code": "pickup-berlin",
            "name": "Pick up",
            "kind": "pickup",
            "price": "3.00",
            "store": store.id,
            "weight_brackets": "[]",
            "is_active": "y",
        },
    )
    assert weight.status_code == 302 and pickup.status_code == 302
    assert "names its store" in no_store.get_data(as_text=True)
    parcel = db.session.scalar(select(ShippingMethod).where(ShippingMethod.code == "parcel"))
    assert [b["up_to"] for b in parcel.weight_brackets] == ["1", "5"]
    assert db.session.scalar(select(ShippingMethod.price).where(ShippingMethod.code == "pickup-berlin")) == 0


def test_the_price_check_prices_skus_like_checkout(as_role, db):
    from tests.factories import stocked_variant
    from tests.pricing_support import us_shop

    us_shop()
    promotion("Ten", code="TEN")
    variant = stocked_variant(price="20.00")
    db.session.commit()
    client = as_role("merchandiser")

    page = client.post("/admin/pricecheck/", data={"lines": f"{variant.sku} x 3", "country": "us",
                                                   "voucher_code": "ten"}).get_data(as_text=True)
    # 60.00 - 6.00 = 54.00: free standard shipping; 54.00 * 8 % = 4.32
    assert "58.32 USD" in page
    unknown = client.post("/admin/pricecheck/", data={"lines": "NOPE x 1", "country": "US"})
    assert "No product with SKU NOPE" in unknown.get_data(as_text=True)
    bad = client.post("/admin/pricecheck/", data={"lines": f"{variant.sku} x lots", "country": "US"})
    assert "write &#39;SKU x quantity&#39;" in bad.get_data(as_text=True)
    assert as_role("warehouse").get("/admin/pricecheck/").status_code == 403
