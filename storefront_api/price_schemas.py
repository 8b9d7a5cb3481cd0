"""The API's shapes of prices: a quote's figures, its lines and the shipping methods offered.
Every figure comes from ``ecom.pricing``; nothing here adds up."""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated

from pydantic import AfterValidator, Field, PlainSerializer, WithJsonSchema

from ecom.pricing.countries import COUNTRIES
from ecom.pricing.engine import Quote, ShippingOption
from storefront_api.schemas import ApiModel, Money

# The country codes the API takes, as documented: ISO 3166-1 alpha-2, upper or lower case.
COUNTRY_CODES = sorted(COUNTRIES) + sorted(code.lower() for code in COUNTRIES)


def known_country(code: str) -> str:
    """``code`` if it is one of COUNTRY_CODES (a pydantic validator). Raises ValueError."""
    if code not in COUNTRY_CODES:
        raise ValueError("not an ISO 3166-1 alpha-2 country code")
    return code


# A country in a body: the ISO list, checked and documented as one (addresses to ship to or save).
KnownCountry = Annotated[str, AfterValidator(known_country), Field(
    pattern=r"^[A-Za-z]{2}$", json_schema_extra={"enum": COUNTRY_CODES}, description="ISO 3166-1 alpha-2")]


# A tax rate leaves the API as a four-place decimal string: "0.0800" is 8 %.
Rate = Annotated[
    Decimal,
    PlainSerializer(lambda value: f"{Decimal(value):.4f}", return_type=str),
    WithJsonSchema({"type": "string", "pattern": r"^\d+\.\d{4}$", "examples": ["0.0800"]}),
]


class StoreRef(ApiModel):
    id: int
    name: str | None


class ShippingMethodOut(ApiModel):
    code: str
    name: str
    kind: str = Field(description="flat, weight or pickup (click & collect)")
    price: Money = Field(description="For this cart: free over the method's threshold, by weight bracket")
    min_days: int | None
    max_days: int | None
    store: StoreRef | None = Field(description="The store of a pickup method")


class QuoteLineOut(ApiModel):
    sku: str
    quantity: int
    unit_price: Money
    compare_at_price: Money | None = Field(description="The former price, shown struck through")
    line_total: Money = Field(description="unit_price x quantity, before the discount")
    discount: Money
    tax: Money
    tax_rate: Rate = Field(description="The rate that applied to this line")
    tax_name: str = Field(description="The name of that rate (\"No tax\" where the destination has none)")


class VoucherOut(ApiModel):
    code: str
    discount: Money = Field(description="Off the lines, plus any shipping it made free")


class QuoteFields(ApiModel):
    """The priced figures: total = subtotal - discount_total + shipping_cost + tax_total, or
    without tax_total when prices include tax (the tax is then part of the amounts)."""

    subtotal: Money
    discount_total: Money
    shipping_method: ShippingMethodOut | None = Field(
        description="The method chosen (the cheapest non-pickup by default); null for an empty cart "
                    "or, in the cart's estimate, a destination not shipped to")
    shipping_cost: Money
    tax_total: Money
    total: Money
    currency: str
    voucher: VoucherOut | None
    prices_include_tax: bool


class QuoteOut(QuoteFields):
    lines: list[QuoteLineOut]
    shipping_methods: list[ShippingMethodOut] = Field(description="Every method offered for this cart "
                                                                  "and destination")


def method_out(option: ShippingOption | None) -> ShippingMethodOut | None:
    if option is None:
        return None
    store = StoreRef(id=option.store_id, name=option.store_name) if option.store_id is not None else None
    return ShippingMethodOut(code=option.code, name=option.name, kind=option.kind, price=option.price,
                             min_days=option.min_days, max_days=option.max_days, store=store)


def quote_fields(quote: Quote) -> dict:
    """The figures of ``quote`` as the API's field values."""
    voucher = VoucherOut(code=quote.voucher.code, discount=quote.voucher.discount) if quote.voucher else None
    return {"subtotal": quote.subtotal, "discount_total": quote.discount_total,
            "shipping_method": method_out(quote.shipping_method), "shipping_cost": quote.shipping_cost,
            "tax_total": quote.tax_total, "total": quote.total, "currency": quote.currency,
            "voucher": voucher, "prices_include_tax": quote.prices_include_tax}


def quote_out(quote: Quote) -> QuoteOut:
    return QuoteOut(
        **quote_fields(quote),
        lines=[QuoteLineOut(sku=line.sku, quantity=line.quantity, unit_price=line.unit_price,
                            compare_at_price=line.compare_at_price, line_total=line.line_total,
                            discount=line.discount, tax=line.tax, tax_rate=line.tax_rate,
                            tax_name=line.tax_name)
               for line in quote.lines],
        shipping_methods=[method_out(option) for option in quote.shipping_methods])
