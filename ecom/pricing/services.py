"""Editing the pricing rules (the back office calls these): normalising and checking a rule
before it is saved, and generating a campaign's voucher codes in bulk."""

from __future__ import annotations

import csv
import io
import secrets
from collections.abc import Iterator
from decimal import Decimal, InvalidOperation

from sqlalchemy import func, select

from ecom.actor import Actor
from ecom.audit.services import record_change
from ecom.errors import ValidationFailed
from ecom.extensions import db
from ecom.pricing.countries import is_country
from ecom.pricing.models import (
    MethodKind,
    Promotion,
    PromotionKind,
    PromotionScope,
    PromotionUse,
    ShippingMethod,
    ShippingZone,
    TaxRate,
    VoucherCode,
)
from ecom.pricing.quote import normalise_code

# Codes read over the phone or off a flyer: no 0/O, 1/I/L.
CODE_ALPHABET = "23456789ABCDEFGHJKMNPQRSTUVWXYZ"
MAX_GENERATED = 10_000


def _countries(values, field: str) -> list[str]:
    codes = [str(v).strip().upper() for v in values or () if str(v).strip()]
    unknown = [code for code in codes if not is_country(code)]
    if unknown:
        raise ValidationFailed(f"Unknown country code(s): {', '.join(unknown)}.",
                               {field: ["Use ISO 3166-1 alpha-2 codes, e.g. US, DE."]})
    return list(dict.fromkeys(codes))


def prepare_tax_rate(rate: TaxRate) -> None:
    """Upper-case country (checked) and region; an empty region is the whole country."""
    rate.country = _countries([rate.country], "country")[0] if rate.country else rate.country
    if not rate.country:
        raise ValidationFailed("A tax rate needs a country.", {"country": ["Required."]})
    rate.region = (rate.region or "").strip().upper() or None
    if rate.rate is None or not Decimal(0) <= Decimal(rate.rate) < 1:
        raise ValidationFailed("A rate is a fraction between 0 and 1 (0.19 for 19 %).",
                               {"rate": ["Between 0 and 1, e.g. 0.19."]})
    class_id = rate.tax_class_id if rate.tax_class_id is not None else getattr(rate.tax_class, "id", None)
    # The unique key does not see two country-wide rows (NULL regions differ in SQL): this does.
    with db.session.no_autoflush:
        region = TaxRate.region.is_(None) if rate.region is None else TaxRate.region == rate.region
        same = db.session.scalars(select(TaxRate.id).where(
            TaxRate.country == rate.country, TaxRate.tax_class_id == class_id, region)).all()
    if any(row_id != rate.id for row_id in same):
        raise ValidationFailed("That class already has a rate for this destination.",
                               {"region": ["Edit the existing rate instead."]})


def prepare_zone(zone: ShippingZone) -> None:
    """Countries upper-cased, checked, each once; a country may belong to one zone only."""
    zone.countries = _countries(zone.countries, "countries")
    with db.session.no_autoflush:
        others = db.session.execute(select(ShippingZone.id, ShippingZone.name, ShippingZone.countries)).all()
    others = [(name, countries) for zone_id, name, countries in others if zone_id != zone.id]
    for name, countries in others:
        clash = sorted(set(zone.countries) & {str(c).upper() for c in countries or ()})
        if clash:
            raise ValidationFailed(f"{', '.join(clash)} already in the zone '{name}'.",
                                   {"countries": [f"Already in '{name}'."]})


def prepare_method(method: ShippingMethod) -> None:
    """A pickup is free and names a store; other methods belong to a zone; weight brackets
    are ``[{"up_to": kg, "price": amount}]``, sorted by weight."""
    method.code = (method.code or "").strip().lower()
    if method.kind == MethodKind.PICKUP:
        if method.store_id is None and getattr(method, "store", None) is None:
            raise ValidationFailed("A pickup method names its store.", {"store": ["Required for pickup."]})
        method.price = Decimal("0.00")
    elif method.zone_id is None and getattr(method, "zone", None) is None:
        raise ValidationFailed("A shipping method belongs to a zone.", {"zone": ["Required."]})
    brackets = []
    for bracket in method.weight_brackets or ():
        try:
            up_to, price = Decimal(str(bracket["up_to"])), Decimal(str(bracket["price"]))
        except (KeyError, TypeError, InvalidOperation):
            example = '[{"up_to": 1, "price": "4.99"}]'
            raise ValidationFailed('Each weight bracket is {"up_to": kg, "price": amount}.',
                                   {"weight_brackets": [f"e.g. {example}"]}) from None
        if not (up_to.is_finite() and price.is_finite()) or up_to <= 0 or price < 0:
            raise ValidationFailed("Weights are above 0 and prices not negative.",
                                   {"weight_brackets": ["Weights above 0, prices 0 or more."]})
        brackets.append({"up_to": str(up_to), "price": str(price.quantize(Decimal("0.01")))})
    if method.kind == MethodKind.WEIGHT and not brackets:
        raise ValidationFailed("A weight method needs weight brackets.", {"weight_brackets": ["Required."]})
    method.weight_brackets = sorted(brackets, key=lambda b: Decimal(b["up_to"]))


def prepare_promotion(promotion: Promotion) -> None:
    """The code upper-cased (blank: a sale), the value within its kind, the scope's ids."""
    promotion.code = normalise_code(promotion.code) if promotion.code and promotion.code.strip() else None
    if promotion.code and db.session.scalar(select(VoucherCode.id).where(VoucherCode.code == promotion.code)):
        raise ValidationFailed(f"The code {promotion.code} is already a generated code.",
                               {"code": ["Already in use."]})
    if promotion.kind == PromotionKind.PERCENT and not Decimal(0) <= (promotion.value or 0) <= 100:
        raise ValidationFailed("A percentage is between 0 and 100.", {"value": ["Between 0 and 100."]})
    if promotion.kind == PromotionKind.FREE_SHIPPING:
        promotion.value = Decimal("0.00")
    promotion.category_ids = sorted({int(i) for i in promotion.category_ids or ()})
    promotion.product_ids = sorted({int(i) for i in promotion.product_ids or ()})
    if promotion.scope == PromotionScope.CATEGORIES and not promotion.category_ids:
        raise ValidationFailed("Name the categories it applies to.", {"category_ids": ["Required."]})
    if promotion.scope == PromotionScope.PRODUCTS and not promotion.product_ids:
        raise ValidationFailed("Name the products it applies to.", {"product_ids": ["Required."]})
    if promotion.starts_at and promotion.ends_at and promotion.ends_at <= promotion.starts_at:
        raise ValidationFailed("It must end after it starts.", {"ends_at": ["After starts_at."]})
    limited = promotion.usage_limit is not None or promotion.per_customer_limit is not None
    if promotion.id is not None and limited:
        _count_uses(promotion)
    if (promotion.usage_limit is not None and promotion.id is not None
            and promotion.usage_limit < (promotion.times_used or 0)):
        raise ValidationFailed(f"It has been used {promotion.times_used} times already.",
                               {"usage_limit": [f"At least {promotion.times_used}."]})


def _count_uses(promotion: Promotion) -> None:
    """A limited promotion's counter is the uses its orders hold: recounted on every save, as
    the uses taken while it had no limit were only recorded."""
    with db.session.no_autoflush:
        promotion.times_used = db.session.scalar(select(func.count(PromotionUse.id)).where(
            PromotionUse.promotion_id == promotion.id, PromotionUse.released_at.is_(None)))


def uses_held(promotion_ids: list[int]) -> dict[int, int]:
    """The uses each promotion's orders hold now (counted or only recorded), for the back office."""
    if not promotion_ids:
        return {}
    return dict(db.session.execute(
        select(PromotionUse.promotion_id, func.count(PromotionUse.id))
        .where(PromotionUse.promotion_id.in_(promotion_ids), PromotionUse.released_at.is_(None))
        .group_by(PromotionUse.promotion_id)).all())


def generate_codes(promotion: Promotion, count: int, *, prefix: str = "", uses_per_code: int | None = 1,
                   actor: Actor) -> list[VoucherCode]:
    """``count`` new random codes for the voucher ``promotion`` (``PREFIX-XXXXXXXX``), each
    usable ``uses_per_code`` times (None: only the promotion's own limits). Codes already
    taken (by another promotion or code) are drawn again. Raises ValidationFailed."""
    if not 1 <= count <= MAX_GENERATED:
        raise ValidationFailed(f"Generate between 1 and {MAX_GENERATED} codes at a time.",
                               {"count": [f"Between 1 and {MAX_GENERATED}."]})
    if uses_per_code is not None and uses_per_code < 1:
        raise ValidationFailed("Each code is usable at least once.", {"uses_per_code": ["1 or more."]})
    prefix = normalise_code(prefix).strip("-")
    if len(prefix) > 20 or not all(c.isalnum() and c.isascii() for c in prefix):
        raise ValidationFailed("A prefix is up to 20 letters and digits.",
                               {"prefix": ["Letters and digits."]})
    wanted: set[str] = set()
    while len(wanted) < count:
        batch = {_random_code(prefix) for _ in range(count - len(wanted))}
        taken = set(db.session.scalars(select(VoucherCode.code).where(VoucherCode.code.in_(batch))))
        taken |= set(db.session.scalars(select(Promotion.code).where(Promotion.code.in_(batch))))
        wanted |= batch - taken
    codes = [VoucherCode(promotion_id=promotion.id, code=code, usage_limit=uses_per_code)
             for code in sorted(wanted)]
    db.session.add_all(codes)
    db.session.flush()
    record_change(actor, "generate_codes", "promotions", promotion.id, None,
                  {"count": count, "prefix": prefix, "uses_per_code": uses_per_code})
    return codes


def _random_code(prefix: str) -> str:
    body = "".join(secrets.choice(CODE_ALPHABET) for _ in range(10))
    return f"{prefix}-{body}" if prefix else body


CSV_COLUMNS = ("code", "promotion", "uses_per_code", "used", "remaining", "created_at")


def export_codes_csv(promotion: Promotion) -> Iterator[str]:
    """The promotion's generated codes as CSV rows (a header first), for printing or mailing."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)

    def flush() -> str:
        text = buffer.getvalue()
        buffer.seek(0)
        buffer.truncate()
        return text

    writer.writerow(CSV_COLUMNS)
    yield flush()
    rows = db.session.execute(select(VoucherCode.code, VoucherCode.usage_limit, VoucherCode.times_used,
                                     VoucherCode.created_at)
                              .where(VoucherCode.promotion_id == promotion.id).order_by(VoucherCode.id))
    for code, limit, used, created in rows:
        remaining = "" if limit is None else max(limit - used, 0)
        # The promotion's name is the editors' text: a leading = + - @ is kept from running as
        # a spreadsheet formula.
        writer.writerow([code, _safe_cell(promotion.name), "" if limit is None else limit, used, remaining,
                         created.isoformat() if created else ""])
        yield flush()


def _safe_cell(text: str) -> str:
    return f"'{text}" if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text
