"""Tax classes and rates, shipping zones and methods (admin edits, merchandisers read), and
promotions and vouchers with their usage and generated codes (admin and merchandisers edit).
The rules are checked by ``ecom.pricing.services``; the figures come from ``ecom.pricing``."""

from __future__ import annotations

from flask import Response, abort, flash, g, redirect, stream_with_context, url_for
from flask_admin import expose
from flask_admin.model.template import EndpointLinkRowAction
from flask_wtf import FlaskForm
from markupsafe import Markup
from sqlalchemy import func, select
from wtforms import IntegerField, StringField, TextAreaField
from wtforms.validators import InputRequired, Length, NumberRange, Optional

from admin.base import PrefixSearch, StaffModelView, StaffView, flash_error, unit_of_work
from admin.security import Area, current_actor
from ecom.commerce.quoting import quote_skus
from ecom.errors import EcomError, ValidationFailed
from ecom.extensions import db
from ecom.pricing import services
from ecom.pricing.models import MethodKind, Promotion, PromotionKind, PromotionScope, VoucherCode
from ecom.pricing.quote import Destination


class CommaListField(StringField):
    """A list column edited as comma-separated text ("DE, FR, AT" or "3, 7")."""

    def __init__(self, *args, as_int: bool = False, **kwargs):
        super().__init__(*args, **kwargs)
        self.as_int = as_int

    def _value(self):
        return ", ".join(str(item) for item in self.data or [])

    def process_formdata(self, valuelist):
        text = valuelist[0] if valuelist else ""
        parts = [part.strip() for part in text.replace(";", ",").split(",") if part.strip()]
        if self.as_int:
            try:
                self.data = [int(part) for part in parts]
            except ValueError:
                self.data = []
                raise ValueError("Whole numbers (ids), separated by commas.") from None
            if any(not 0 < number < 2**31 for number in self.data):
                raise ValueError("Ids are whole numbers above 0.")
        else:
            self.data = parts


class TaxShippingView(StaffModelView):
    area = Area.TAX_SHIPPING
    page_size = 50


class TaxClassView(TaxShippingView):
    column_list = ["code", "name"]
    form_columns = ["code", "name"]
    column_searchable_list = ["code", "name"]
    column_descriptions = {"code": "standard, reduced, zero...: products without a class are standard"}


class TaxRateView(TaxShippingView):
    column_list = ["country", "region", "tax_class", "rate", "name"]
    column_filters = ["country", "region"]
    column_searchable_list = ["country", "name"]
    column_default_sort = ("country", False)
    form_columns = ["country", "region", "tax_class", "rate", "name"]
    column_descriptions = {"rate": "A fraction: 0.19 is 19 %",
                           "region": "Empty for the whole country; a region's rate wins over it"}
    column_formatters = {"rate": lambda v, c, m, n: f"{m.rate * 100:.2f} %" if m.rate is not None else ""}

    def prepare_model(self, model, is_created):
        services.prepare_tax_rate(model)


class ShippingZoneView(TaxShippingView):
    column_list = ["name", "countries", "tax_shipping"]
    form_columns = ["name", "countries", "tax_shipping"]
    form_overrides = {"countries": CommaListField}
    column_formatters = {"countries": lambda v, c, m, n: ", ".join(m.countries or [])}
    column_descriptions = {"countries": "ISO codes, separated by commas: DE, FR, AT",
                           "tax_shipping": "Tax shipping at the destination's standard rate (EU style)"}

    def prepare_model(self, model, is_created):
        services.prepare_zone(model)


def _brackets(view, context, model, name):
    return ", ".join(f"≤{b['up_to']} kg: {b['price']}" for b in model.weight_brackets or [])


class ShippingMethodView(TaxShippingView):
    column_list = ["code", "name", "zone", "kind", "price", "free_over", "weight_brackets", "min_days",
                   "max_days", "store", "is_active"]
    column_filters = ["kind", "is_active"]
    column_searchable_list = ["code", "name"]
    form_columns = ["zone", "code", "name", "kind", "price", "free_over", "weight_brackets", "min_days",
                    "max_days", "store", "is_active"]
    form_choices = {"kind": [(k.value, k.value) for k in MethodKind]}
    form_args = {"weight_brackets": {"description": 'For kind weight: [{"up_to": 1, "price": "4.99"}, '
                                                    '{"up_to": 5, "price": "9.99"}] (kg, ascending)'},
                 "store": {"description": "For kind pickup: the store where it is collected"},
                 "free_over": {"description": "Free when the merchandise after discounts reaches this"}}
    column_formatters = {"weight_brackets": _brackets}
    column_labels = {"is_active": "Active"}

    def prepare_model(self, model, is_created):
        services.prepare_method(model)


def _usage(view, context, model, name):
    limit = "∞" if model.usage_limit is None else model.usage_limit
    return f"{_held(view, model)} / {limit}"


def _held(view, model) -> int:
    # A limited promotion's counter; an unlimited one's uses are only recorded: count them.
    if model.usage_limit is not None or model.per_customer_limit is not None:
        return model.times_used
    return view.uses_held().get(model.id, 0)


def _remaining(view, context, model, name):
    return "∞" if model.usage_limit is None else max(model.usage_limit - _held(view, model), 0)


def _codes(view, context, model, name):
    count = view.code_counts(g.get("promotion_page_ids", [])).get(model.id, 0)
    if not count:
        return ""
    url = url_for(".export_codes", promotion_id=model.id)
    return Markup(f'{count} <a href="{url}">CSV</a>')


class PromotionView(StaffModelView):
    area = Area.PROMOTIONS
    column_list = ["name", "code", "kind", "value", "scope", "min_subtotal", "starts_at", "ends_at",
                   "usage", "uses_left", "generated", "is_active"]
    column_labels = {"usage": "Used / limit", "uses_left": "Remaining", "generated": "Generated codes",
                     "is_active": "Active", "code": "Code (empty: a sale)"}
    column_searchable_list = ["name", "code"]
    column_filters = ["kind", "scope", "is_active", "starts_at", "ends_at"]
    column_default_sort = ("id", True)
    column_formatters = {"usage": _usage, "generated": _codes, "uses_left": _remaining}
    form_columns = ["name", "code", "kind", "value", "scope", "category_ids", "product_ids", "min_subtotal",
                    "starts_at", "ends_at", "usage_limit", "per_customer_limit", "is_active"]
    form_choices = {"kind": [(k.value, k.value) for k in PromotionKind],
                    "scope": [(s.value, s.value) for s in PromotionScope]}
    form_overrides = {"category_ids": CommaListField, "product_ids": CommaListField}
    form_args = {
        "category_ids": {"label": "Category ids", "as_int": True,
                         "description": "For scope categories: ids separated by commas"},
        "product_ids": {"label": "Product ids", "as_int": True,
                        "description": "For scope products: ids separated by commas"},
        "code": {"description": "Entered by the shopper in any case; leave empty for an automatic sale"},
        "value": {"description": "percent: 0-100; fixed: an amount (off each unit for a sale, off the "
                                 "eligible subtotal for a voucher); free_shipping: ignored"},
        "usage_limit": {"description": "Orders that may use it in all (a use is given back when an "
                                       "unpaid order is cancelled or expires)"},
    }
    column_extra_row_actions = [
        EndpointLinkRowAction("fa fa-ticket", ".generate_view", id_arg="promotion_id",
                              title="Generate voucher codes"),
    ]

    def code_counts(self, promotion_ids: list[int]) -> dict[int, int]:
        """Generated codes per promotion of ``promotion_ids`` (the page's: a voucher may have
        hundreds of thousands of codes, and the whole table is not counted for 20 rows)."""
        if "promotion_code_counts" not in g:
            counts = (select(VoucherCode.promotion_id, func.count(VoucherCode.id))
                      .where(VoucherCode.promotion_id.in_(promotion_ids))
                      .group_by(VoucherCode.promotion_id))
            g.promotion_code_counts = dict(db.session.execute(counts).all()) if promotion_ids else {}
        return g.promotion_code_counts

    def uses_held(self) -> dict[int, int]:
        if "promotion_uses_held" not in g:
            g.promotion_uses_held = services.uses_held(list(g.get("promotion_page_ids", [])))
        return g.promotion_uses_held

    def get_list(self, *args, **kwargs):
        count, rows = super().get_list(*args, **kwargs)
        if kwargs.get("execute", True):
            g.promotion_page_ids = [row.id for row in rows]
        return count, rows

    def prepare_model(self, model, is_created):
        services.prepare_promotion(model)

    @expose("/generate/<int:promotion_id>", methods=["GET", "POST"])
    def generate_view(self, promotion_id: int):
        if not self.may_write():
            abort(403)
        promotion = db.get_or_404(Promotion, promotion_id)
        form = GenerateCodesForm()
        if form.validate_on_submit():
            with unit_of_work() as work:
                codes = services.generate_codes(promotion, form.count.data, prefix=form.prefix.data or "",
                                                uses_per_code=form.uses_per_code.data,
                                                actor=current_actor())
            if work.ok:
                flash(f"{len(codes)} codes generated for {promotion.name}.", "success")
                return redirect(url_for(".generate_view", promotion_id=promotion.id))
        for errors in form.errors.values():
            for message in errors:
                flash(message, "error")
        count = self.code_counts([promotion.id]).get(promotion.id, 0)
        return self.render("admin/generate_codes.html", promotion=promotion, form=form, count=count)

    @expose("/codes/<int:promotion_id>.csv")
    def export_codes(self, promotion_id: int):
        promotion = db.get_or_404(Promotion, promotion_id)
        rows = services.export_codes_csv(promotion)
        filename = f"voucher-codes-{promotion.id}.csv"
        return Response(stream_with_context(rows), mimetype="text/csv",
                        headers={"Content-Disposition": f"attachment; filename={filename}"})


class GenerateCodesForm(FlaskForm):
    count = IntegerField("How many codes", default=100, validators=[
        InputRequired(), NumberRange(min=1, max=services.MAX_GENERATED)])
    prefix = StringField("Prefix", description="Letters and digits, e.g. SPRING", validators=[Length(max=20)])
    uses_per_code = IntegerField("Uses per code", default=1,
                                 description="Empty: only the voucher's own limits",
                                 validators=[Optional(), NumberRange(min=1, max=1_000_000)])


class PriceCheckForm(FlaskForm):
    lines = TextAreaField("Lines", description="One 'SKU x quantity' per line, e.g. TRAIL-RUNNER-40 x 2",
                          validators=[InputRequired(), Length(max=5000)])
    country = StringField("Country", default="US", validators=[InputRequired(), Length(max=2)])
    region = StringField("Region / state", validators=[Length(max=120)])
    shipping_method = StringField("Shipping method code", description="Empty: the cheapest",
                                  validators=[Length(max=40)])
    voucher_code = StringField("Voucher code", validators=[Length(max=64)])


def parse_lines(text: str) -> list[tuple[str, int]]:
    """``SKU x 2`` (or ``SKU 2``, or just ``SKU``) per line. Raises ValidationFailed."""
    lines = []
    for number, raw in enumerate(text.splitlines(), start=1):
        parts = raw.replace("×", " ").replace(" x ", " ").replace(",", " ").split()
        if not parts:
            continue
        quantity = parts[1] if len(parts) > 1 else "1"
        if len(parts) > 2 or not quantity.isdigit() or not 1 <= int(quantity) <= 99:
            raise ValidationFailed(f"Line {number}: write 'SKU x quantity' (1 to 99).",
                                   {"lines": [f"Line {number} is not 'SKU x quantity'."]})
        lines.append((parts[0], int(quantity)))
    return lines


class PriceCheckView(StaffView):
    """A price check: what the checkout would charge for some SKUs, a destination, a method and a
    voucher, now - to try a promotion or a rate before shoppers do. Writes nothing."""

    area = Area.PROMOTIONS

    @expose("/", methods=["GET", "POST"])
    def index(self):
        form = PriceCheckForm()
        quote = None
        if form.validate_on_submit():
            try:
                quote = quote_skus(parse_lines(form.lines.data), Destination(
                    form.country.data.strip().upper(), (form.region.data or "").strip() or None),
                    shipping_method=(form.shipping_method.data or "").strip() or None,
                    voucher_code=(form.voucher_code.data or "").strip() or None)
            except EcomError as exc:
                flash_error(exc)
        for errors in form.errors.values():
            for message in errors:
                flash(message, "error")
        return self.render("admin/price_check.html", form=form, quote=quote)


class VoucherCodeView(PrefixSearch, StaffModelView):
    area = Area.PROMOTIONS
    _can_create = False
    _can_edit = False
    column_list = ["code", "promotion", "usage_limit", "times_used", "created_at"]
    column_labels = {"times_used": "Used", "usage_limit": "Uses per code"}
    column_searchable_list = ["code"]
    column_default_sort = ("id", True)
    count_limit = 10_000
    search_placeholder_text = "Code, or how it starts"
    prefix_search_field = "code"


def pricing_views() -> list:
    """The back office's pricing screens, registered by ``admin.init_admin``."""
    from ecom.pricing.models import ShippingMethod, ShippingZone, TaxClass, TaxRate

    pricing = "Pricing"
    return [
        TaxClassView(TaxClass, name="Tax classes", endpoint="taxclass", category=pricing),
        TaxRateView(TaxRate, name="Tax rates", endpoint="taxrate", category=pricing),
        ShippingZoneView(ShippingZone, name="Shipping zones", endpoint="shippingzone", category=pricing),
        ShippingMethodView(ShippingMethod, name="Shipping methods", endpoint="shippingmethod",
                           category=pricing),
        PromotionView(Promotion, name="Promotions and vouchers", endpoint="promotion", category=pricing),
        VoucherCodeView(VoucherCode, name="Voucher codes", endpoint="vouchercode", category=pricing),
        PriceCheckView(name="Price check", endpoint="pricecheck", category=pricing),
    ]
