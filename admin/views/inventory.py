"""Inventory per location (adjusted only through stock movements), the movement ledger, reservations,
stores."""

from __future__ import annotations

from urllib.parse import urlsplit

from flask import flash, redirect, request, url_for
from flask_admin import expose
from flask_admin.contrib.sqla.filters import BaseSQLAFilter
from flask_wtf import FlaskForm
from markupsafe import Markup, escape
from sqlalchemy import select
from sqlalchemy.orm import joinedload
from wtforms import FloatField, IntegerField, SelectField, StringField
from wtforms.validators import DataRequired, InputRequired, Length, NumberRange

from admin.base import ReadOnlyModelView, StaffModelView, unit_of_work
from admin.security import Access, Area, current_actor
from admin.views.locations import LocationFilter
from ecom.catalog.models import Product, Variant
from ecom.errors import ValidationFailed
from ecom.extensions import db
from ecom.inventory.models import Inventory, StockLocation, StockMovement, StockReservation
from ecom.inventory.services import MANUAL_REASONS, adjust_stock, default_location


class LowStockFilter(BaseSQLAFilter):
    def apply(self, query, value, alias=None):
        return query.filter(Inventory.is_low if value == "1" else ~Inventory.is_low)

    def operation(self):
        return "is"

    def get_options(self, view):
        return [("1", "low"), ("0", "not low")]


class AdjustStockForm(FlaskForm):
    # Left out (a form or script of before locations), the location in the URL or the default one.
    location = SelectField("Location", coerce=int, validate_choice=False)
    delta = IntegerField("Change (+/- units)", validators=[
        DataRequired(message="Enter a non-zero number of units."),
        NumberRange(min=-1_000_000, max=1_000_000)])
    reason = SelectField("Reason", choices=[(r.value, r.value) for r in MANUAL_REASONS])
    note = StringField("Note", validators=[Length(max=500)])


def _available(view, context, model, name):
    css = "badge badge-warning" if model.is_low else "badge badge-light"
    return Markup(f'<span class="{css}">{model.available}</span>')


def _adjust_link(view, context, model, name):
    # Keyed by variant and location: the row's own id is the inventory row's.
    url = url_for(".adjust_view", variant_id=model.variant_id, location_id=model.location_id)
    return Markup(f'<a class="btn btn-sm btn-outline-primary" href="{url}">Adjust stock</a>')


def _product_link(view, context, model, name):
    variant = model.variant
    url = url_for("inventory.product_stock_view", product_id=variant.product_id)
    return Markup(f'<a href="{url}" title="Stock by location">{escape(variant.product.name)}</a>')


def _order_link(view, context, model, name):
    if model.order is None:
        return ""
    url = url_for("order.details_view", id=model.order_id)
    return Markup(f'<a href="{url}">{escape(model.order.order_number)}</a>')


class InventoryView(StaffModelView):
    area = Area.INVENTORY
    list_template = "admin/inventory_list.html"
    _can_create = False
    _can_delete = False
    column_list = ["location.name", "product", "variant.sku", "variant.name", "quantity", "reserved",
                   "available",
                   "low_stock_threshold", "updated_at", "adjust"]
    column_labels = {"variant.sku": "SKU", "variant.name": "Variant", "low_stock_threshold": "Threshold",
                     "location.name": "Location"}
    column_sortable_list = [("variant.sku", "variant.sku"), "quantity", "reserved", "low_stock_threshold",
                            "updated_at"]
    column_default_sort = ("id", True)
    column_searchable_list = ["variant.sku", "variant.name"]
    # Low stock keeps the first place (flt0_0 in links), the location the second (flt0_1).
    column_filters = [LowStockFilter(Inventory.id, "Low stock"),
                      LocationFilter(Inventory.location_id, "Location"),
                      "quantity", "reserved"]
    column_formatters = {"available": _available, "adjust": _adjust_link, "product": _product_link}
    # Counts change only through stock movements: quantity and reserved are never form fields.
    form_columns = ["low_stock_threshold"]
    form_args = {"low_stock_threshold": {"validators": [NumberRange(min=0)]}}
    def get_query(self):
        return super().get_query().options(joinedload(Inventory.variant).joinedload(Variant.product),
                                           joinedload(Inventory.location))

    @expose("/adjust/<int:variant_id>", methods=["GET", "POST"])
    def adjust_view(self, variant_id: int):
        if self._adjust_refused():
            return self.inaccessible_callback("adjust_view")
        variant = db.session.get(Variant, variant_id)
        if variant is None:
            flash("No such variant.", "error")
            return redirect(url_for(".index_view"))
        form = AdjustStockForm()
        form.location.choices = [(loc.id, f"{loc.name} ({loc.code})") for loc in db.session.scalars(
            select(StockLocation).order_by(StockLocation.priority, StockLocation.id))]
        if not form.location.data:
            wanted = request.args.get("location_id", "")
            form.location.data = int(wanted) if wanted.isdigit() else default_location().id
        if form.validate_on_submit():
            with unit_of_work() as work:
                movement = self._adjust(variant, form)
                where = movement.location.name
            if work.ok:
                flash(f"Stock of {variant.sku} at {where} changed by {form.delta.data:+d}.", "success")
                return redirect(_local_backoffice_path(request.args.get("url")) or url_for(".index_view"))
        elif request.method == "POST":
            for errors in form.errors.values():
                for message in errors:
                    flash(message, "error")
        rows = list(db.session.scalars(select(Inventory).where(Inventory.variant_id == variant_id)
                                       .options(joinedload(Inventory.location)).order_by(Inventory.location_id)))
        return self.render("admin/adjust_stock.html", form=form, variant=variant, rows=rows,
                           inventory=next((r for r in rows if r.location_id == form.location.data), None))

    @expose("/product/<int:product_id>")
    def product_stock_view(self, product_id: int):
        """Stock per variant and location of one product, each cell adjustable."""
        product = db.get_or_404(Product, product_id)
        locations = list(db.session.scalars(select(StockLocation).order_by(StockLocation.priority,
                                                                           StockLocation.id)))
        rows = {(row.variant_id, row.location_id): row for row in db.session.scalars(
            select(Inventory).join(Variant).where(Variant.product_id == product_id))}
        return self.render("admin/product_stock.html", product=product, locations=locations, rows=rows,
                           may_adjust=not self._adjust_refused(), variants=sorted(product.variants,
                                                                                   key=lambda v: v.sku))

    def _adjust_refused(self) -> bool:
        from admin.security import access_of

        return access_of(self.area) not in (Access.EDIT, Access.ADJUST)

    def _adjust(self, variant: Variant, form: AdjustStockForm):
        location = db.session.get(StockLocation, form.location.data)
        if location is None:
            raise ValidationFailed("Choose a location.", {"location": ["Unknown location."]})
        return adjust_stock(variant, form.delta.data, form.reason.data, actor=current_actor(),
                            note=form.note.data or "", location=location)


def _local_backoffice_path(url: str | None) -> str | None:
    """``url`` when it is a path inside the back office (``/admin/...``), else None.

    ``?url=`` says where to go back to after the change; anything else (another host, a
    protocol-relative ``//host``, a ``javascript:`` URL) would make the page an open redirect."""
    if not url:
        return None
    parts = urlsplit(url)
    if parts.scheme or parts.netloc or "\\" in url or any(ord(ch) < 0x20 for ch in url):
        return None
    if not (parts.path == "/admin" or parts.path.startswith("/admin/")) or url.startswith("//"):
        return None
    return url


class StockMovementView(ReadOnlyModelView):
    area = Area.INVENTORY
    column_list = ["created_at", "location.name", "product", "variant.sku", "variant.name", "delta", "reason",
                   "note", "user", "order"]
    column_labels = {"variant.sku": "SKU", "variant.name": "Variant", "order": "Order", "user": "By",
                     "location.name": "Location"}
    column_default_sort = ("created_at", True)
    column_sortable_list = ["created_at", "delta", "reason"]
    column_filters = [LocationFilter(StockMovement.location_id, "Location"), "variant.sku", "reason",
                      "user.email", "created_at", "order.order_number"]
    column_searchable_list = ["variant.sku", "note"]
    column_formatters = {"product": _product_link, "order": _order_link}

    def get_query(self):
        return super().get_query().options(joinedload(StockMovement.variant).joinedload(Variant.product),
                                           joinedload(StockMovement.user), joinedload(StockMovement.order),
                                           joinedload(StockMovement.location))


class ReservationView(ReadOnlyModelView):
    area = Area.INVENTORY
    column_list = ["order", "location.name", "variant.sku", "quantity", "status", "expires_at", "created_at"]
    column_labels = {"variant.sku": "SKU", "location.name": "Location"}
    column_default_sort = ("expires_at", True)
    column_filters = ["status", "expires_at", "variant.sku",
                      LocationFilter(StockReservation.location_id, "Location")]
    column_sortable_list = ["status", "expires_at", "created_at", "quantity"]

    def get_query(self):
        return super().get_query().options(joinedload(StockReservation.variant),
                                           joinedload(StockReservation.order),
                                           joinedload(StockReservation.location))


class StoreView(StaffModelView):
    area = Area.STORES
    column_list = ["name", "city", "country", "latitude", "longitude", "phone", "is_active"]
    column_searchable_list = ["name", "city", "postal_code"]
    column_filters = ["is_active", "country", "city"]
    column_editable_list = ["is_active"]
    column_labels = {"is_active": "Active"}
    form_columns = ["name", "address", "city", "state", "postal_code", "country", "latitude", "longitude",
                    "phone", "email", "opening_hours", "is_active"]
    # Flask-Admin scaffolds no field for Float columns; these carry the range checks.
    form_extra_fields = {
        "latitude": FloatField("Latitude", validators=[
            InputRequired(), NumberRange(min=-90, max=90, message="Latitude is between -90 and 90.")]),
        "longitude": FloatField("Longitude", validators=[
            InputRequired(), NumberRange(min=-180, max=180, message="Longitude is between -180 and 180.")]),
    }
    form_args = {
        "country": {"validators": [DataRequired(), Length(min=2, max=2, message="Two-letter country code.")]},
        "name": {"validators": [DataRequired()]},
    }

    def delete_refusal(self, model):
        from ecom.catalog.deletion import Refusal
        from ecom.inventory.deletion import store_delete_refusal

        refused = store_delete_refusal(model)
        return Refusal(*refused) if refused else None

    def way_out_url(self, model, refusal):
        return url_for(".deactivate_view", store_id=model.id)

    @expose("/deactivate/<int:store_id>", methods=["POST"])
    def deactivate_view(self, store_id: int):
        from ecom.audit.services import record_change
        from ecom.stores.models import Store

        if not self.may_write():
            return self.inaccessible_callback("deactivate_view")
        store = db.get_or_404(Store, store_id)
        with unit_of_work() as work:
            if store.is_active:
                store.is_active = False
                db.session.flush()
                record_change(current_actor(), "update", "stores", store.id, {"is_active": True},
                              {"is_active": False}, label=store.name)
        if work.ok:
            flash(f"{store.name} was deactivated; its stock history stays.", "success")
        return redirect(url_for(".index_view"))

    def prepare_model(self, model, is_created):
        model.country = (model.country or "").upper()
        if model.opening_hours in ("", "null"):
            model.opening_hours = None


