"""Stock locations, transfers and purchase orders: the warehouse's screens of
commerce-v2 §4. Transfers and purchase orders are worked the way a clerk with a barcode
scanner works: the SKU field has the focus, a scan (or typed SKU and Enter) with a quantity
adds the line, and the page comes back ready for the next one."""

from __future__ import annotations

from flask import flash, has_app_context, redirect, request, url_for
from flask_admin import expose
from flask_admin.contrib.sqla.filters import BaseSQLAFilter
from flask_wtf import FlaskForm
from markupsafe import Markup, escape
from sqlalchemy import select
from sqlalchemy.orm import joinedload, selectinload
from wtforms import DateField, IntegerField, SelectField, StringField
from wtforms.validators import DataRequired, InputRequired, Length, NumberRange, Optional

from admin.base import StaffModelView, unit_of_work
from admin.security import Area, current_actor
from ecom.extensions import db
from ecom.inventory.models import LocationKind, StockLocation
from ecom.inventory.services import active_locations
from ecom.stockroom import services as stockroom
from ecom.stockroom.models import PurchaseOrder, StockTransfer
from ecom.stockroom.status import PurchaseOrderStatus, TransferStatus


class LocationFilter(BaseSQLAFilter):
    """Filter a list by stock location (a select of every location)."""

    options_from_database = True  # asked for its choices on every list (StaffModelView)

    def apply(self, query, value, alias=None):
        return query.filter(self.column == int(value)) if str(value).isdigit() else query

    def operation(self):
        return "is"

    def get_options(self, view):
        # Flask-Admin asks at start-up too, before any database is at hand; each list asks again.
        if not has_app_context():
            return []
        return [(str(location.id), location.name) for location in db.session.scalars(
            select(StockLocation).order_by(StockLocation.priority, StockLocation.id))]


def location_choices() -> list[tuple[int, str]]:
    return [(location.id, f"{location.name} ({location.code})") for location in active_locations()]


class StockLocationView(StaffModelView):
    area = Area.LOCATIONS
    _can_delete = False  # history refers to locations: deactivate one instead
    column_list = ["code", "name", "kind", "store", "ships_orders", "accepts_pickup", "priority", "is_active"]
    column_labels = {"ships_orders": "Ships orders", "accepts_pickup": "Click & collect",
                     "is_active": "Active"}
    column_default_sort = ("priority", False)
    column_sortable_list = ["code", "name", "kind", "priority", "is_active"]
    column_filters = ["kind", "is_active", "ships_orders", "accepts_pickup"]
    column_searchable_list = ["code", "name"]
    column_description = {"priority": "Orders are allocated to the lowest number first."}
    form_columns = ["code", "name", "kind", "store", "address", "ships_orders", "accepts_pickup", "priority",
                    "is_active"]
    form_choices = {"kind": [(k.value, k.value) for k in LocationKind]}
    form_args = {
        "code": {"validators": [DataRequired(), Length(max=32)]},
        "name": {"validators": [DataRequired(), Length(max=200)]},
        "priority": {"validators": [InputRequired(), NumberRange(min=0, max=1_000_000)]},
    }
    def prepare_model(self, model, is_created):
        model.code = (model.code or "").strip().upper()
        if model.kind != LocationKind.STORE:
            model.store = None
        if model.store is None:
            model.accepts_pickup = False


# --- transfers ---------------------------------------------------------------


class NewTransferForm(FlaskForm):
    source = SelectField("From", coerce=int)
    destination = SelectField("To", coerce=int)
    note = StringField("Note", validators=[Length(max=500)])


class ScanForm(FlaskForm):
    sku = StringField("SKU", validators=[DataRequired(message="Scan or type a SKU."), Length(max=64)])
    quantity = IntegerField("Quantity", default=1, validators=[
        InputRequired(message="Enter a quantity."), NumberRange(min=1, max=stockroom.MAX_UNITS)])


def _flash_form_errors(form) -> None:
    for errors in form.errors.values():
        for message in errors:
            flash(message, "error")


def _number_link(endpoint: str):
    return lambda v, c, m, n: Markup(
        f'<a href="{url_for(endpoint, document_id=m.id)}">{escape(m.number)}</a>')


class TransferView(StaffModelView):
    area = Area.STOCKROOM
    _can_create = False
    _can_edit = False
    _can_delete = False
    list_template = "admin/stockroom_list.html"
    column_list = ["number", "source", "destination", "status", "lines", "note", "created_at", "sent_at",
                   "received_at"]
    column_default_sort = ("id", True)
    column_sortable_list = ["status", "created_at", "sent_at", "received_at"]
    column_filters = ["status", LocationFilter(StockTransfer.source_location_id, "From"),
                      LocationFilter(StockTransfer.destination_location_id, "To")]
    column_formatters = {
        "number": _number_link("transfer.scan_view"),
        "lines": lambda v, c, m, n: sum(line.quantity for line in m.lines),
    }
    column_labels = {"lines": "Units"}

    def get_query(self):
        return super().get_query().options(joinedload(StockTransfer.source),
                                           joinedload(StockTransfer.destination),
                                           selectinload(StockTransfer.lines))

    @expose("/start", methods=["GET", "POST"])
    def start_view(self):
        if not self.may_write():
            return self.inaccessible_callback("start_view")
        form = NewTransferForm()
        form.source.choices = form.destination.choices = location_choices()
        if form.validate_on_submit():
            with unit_of_work() as work:
                transfer = stockroom.create_transfer(form.source.data, form.destination.data,
                                                     actor=current_actor(), note=form.note.data or "")
                transfer_id = transfer.id
            if work.ok:
                return redirect(url_for(".scan_view", document_id=transfer_id))
        elif request.method == "POST":
            _flash_form_errors(form)
        return self.render("admin/stockroom_start.html", form=form, title="New transfer")

    @expose("/scan/<int:document_id>", methods=["GET", "POST"])
    def scan_view(self, document_id: int):
        transfer = db.get_or_404(StockTransfer, document_id)
        form = ScanForm()
        if request.method == "POST":
            if not self.may_write():
                return self.inaccessible_callback("scan_view")
            self._act(transfer, form)
            return redirect(url_for(".scan_view", document_id=document_id))
        return self.render("admin/stockroom_scan.html", document=transfer, form=form, kind="transfer",
                           scanning=transfer.status == TransferStatus.DRAFT,
                           actions=_transfer_actions(transfer))

    def _act(self, transfer: StockTransfer, form: ScanForm) -> None:
        step = request.form.get("step", "add")
        actor = current_actor()
        with unit_of_work() as work:
            if step == "add":
                if not form.validate():
                    _flash_form_errors(form)
                    return
                line = stockroom.add_transfer_line(transfer, form.sku.data, form.quantity.data, actor=actor)
                done = f"{line.variant.sku}: {line.quantity} on this transfer."
            elif step.startswith("remove:") and step[7:].isdigit():
                stockroom.remove_transfer_line(transfer, int(step[7:]), actor=actor)
                done = "Line removed."
            elif step == "send":
                stockroom.send_transfer(transfer, actor=actor)
                done = f"{transfer.number} sent: its units left {transfer.source.name}."
            elif step == "receive":
                stockroom.receive_transfer(transfer, actor=actor)
                done = f"{transfer.number} received at {transfer.destination.name}."
            elif step == "cancel":
                stockroom.cancel_transfer(transfer, actor=actor)
                done = f"{transfer.number} cancelled."
            else:
                flash("Unknown step.", "error")
                return
        if work.ok:
            flash(done, "success")


def _transfer_actions(transfer: StockTransfer) -> list[tuple[str, str, str]]:
    # Offered only where they can succeed, in workflow order.
    return {
        TransferStatus.DRAFT: [("send", "Send (units leave the source)", "btn-primary"),
                               ("cancel", "Cancel transfer", "btn-outline-danger")],
        TransferStatus.IN_TRANSIT: [("receive", "Receive at destination", "btn-primary")],
    }.get(TransferStatus(transfer.status), [])


# --- purchase orders ---------------------------------------------------------


class NewPurchaseOrderForm(FlaskForm):
    supplier = StringField("Supplier", validators=[DataRequired(), Length(max=200)])
    destination = SelectField("Deliver to", coerce=int)
    expected_on = DateField("Expected on", validators=[Optional()])
    note = StringField("Note", validators=[Length(max=500)])


class PurchaseOrderView(StaffModelView):
    area = Area.STOCKROOM
    _can_create = False
    _can_edit = False
    _can_delete = False
    list_template = "admin/stockroom_list.html"
    column_list = ["number", "supplier", "destination", "status", "expected_on", "lines", "created_at",
                   "ordered_at", "received_at"]
    column_default_sort = ("id", True)
    column_sortable_list = ["supplier", "status", "expected_on", "created_at"]
    column_filters = ["status", "supplier",
                      LocationFilter(PurchaseOrder.destination_location_id, "Deliver to")]
    column_searchable_list = ["supplier"]
    column_formatters = {
        "number": _number_link("purchaseorder.scan_view"),
        "lines": lambda v, c, m, n: f"{sum(x.quantity_received for x in m.lines)} / "
                                    f"{sum(x.quantity_ordered for x in m.lines)}",
    }
    column_labels = {"lines": "Received / ordered"}

    def get_query(self):
        return super().get_query().options(joinedload(PurchaseOrder.destination),
                                           selectinload(PurchaseOrder.lines))

    @expose("/start", methods=["GET", "POST"])
    def start_view(self):
        if not self.may_write():
            return self.inaccessible_callback("start_view")
        form = NewPurchaseOrderForm()
        form.destination.choices = location_choices()
        if form.validate_on_submit():
            with unit_of_work() as work:
                purchase_order = stockroom.create_purchase_order(
                    form.destination.data, form.supplier.data, actor=current_actor(),
                    expected_on=form.expected_on.data, note=form.note.data or "")
                document_id = purchase_order.id
            if work.ok:
                return redirect(url_for(".scan_view", document_id=document_id))
        elif request.method == "POST":
            _flash_form_errors(form)
        return self.render("admin/stockroom_start.html", form=form, title="New purchase order")

    @expose("/scan/<int:document_id>", methods=["GET", "POST"])
    def scan_view(self, document_id: int):
        purchase_order = db.get_or_404(PurchaseOrder, document_id)
        form = ScanForm()
        if request.method == "POST":
            if not self.may_write():
                return self.inaccessible_callback("scan_view")
            self._act(purchase_order, form)
            return redirect(url_for(".scan_view", document_id=document_id))
        status = PurchaseOrderStatus(purchase_order.status)
        receiving = status in (PurchaseOrderStatus.ORDERED, PurchaseOrderStatus.PARTIALLY_RECEIVED)
        return self.render("admin/stockroom_scan.html", document=purchase_order, form=form,
                           kind="purchase order",
                           scanning=status == PurchaseOrderStatus.DRAFT or receiving, receiving=receiving,
                           actions=_purchase_order_actions(purchase_order))

    def _act(self, purchase_order: PurchaseOrder, form: ScanForm) -> None:
        step = request.form.get("step", "add")
        actor = current_actor()
        warnings: list[str] = []
        with unit_of_work() as work:
            if step in ("add", "receive_line"):
                if not form.validate():
                    _flash_form_errors(form)
                    return
                if step == "add":
                    line = stockroom.add_purchase_order_line(purchase_order, form.sku.data,
                                                             form.quantity.data, actor=actor)
                    done = f"{line.variant.sku}: {line.quantity_ordered} ordered."
                else:
                    receipt = stockroom.receive_purchase_order(
                        purchase_order, {form.sku.data: form.quantity.data}, actor=actor)
                    warnings = receipt.warnings
                    done = ", ".join(f"{sku}: {n} received" for sku, n in receipt.received.items()) + "."
            elif step == "place":
                stockroom.place_purchase_order(purchase_order, actor=actor)
                done = f"{purchase_order.number} ordered from {purchase_order.supplier}."
            elif step == "cancel":
                stockroom.cancel_purchase_order(purchase_order, actor=actor)
                done = f"{purchase_order.number} cancelled."
            else:
                flash("Unknown step.", "error")
                return
        if work.ok:
            flash(done, "success")
            for warning in warnings:
                flash(f"More than ordered: {warning}", "warning")


def _purchase_order_actions(purchase_order: PurchaseOrder) -> list[tuple[str, str, str]]:
    return {
        PurchaseOrderStatus.DRAFT: [("place", "Place the order", "btn-primary"),
                                    ("cancel", "Cancel", "btn-outline-danger")],
        PurchaseOrderStatus.ORDERED: [("cancel", "Cancel (nothing more expected)", "btn-outline-danger")],
        PurchaseOrderStatus.PARTIALLY_RECEIVED: [("cancel", "Close (nothing more expected)",
                                                  "btn-outline-danger")],
    }.get(PurchaseOrderStatus(purchase_order.status), [])
