"""Orders (read-only money and status; cancel and refund) and the fulfillment queue."""

from __future__ import annotations

from collections import defaultdict
from decimal import Decimal, InvalidOperation

from flask import flash, redirect, request, url_for
from flask_admin import expose
from flask_admin.actions import action
from flask_admin.contrib.sqla.filters import BaseSQLAFilter
from flask_wtf import FlaskForm
from markupsafe import Markup, escape
from sqlalchemy import case, select
from sqlalchemy.orm import joinedload, selectinload
from wtforms import StringField
from wtforms.validators import DataRequired, Length

from admin.base import StaffModelView, unit_of_work
from admin.security import Area, can_edit, current_actor
from ecom.commerce.cancellation import cancel_order
from ecom.commerce.models import Order, OrderItem, Payment, PaymentRefund
from ecom.commerce.order_actions import refund_payment
from ecom.commerce.status import ALLOWED, REFUNDABLE, OrderStatus, RefundStatus
from ecom.db import money
from ecom.errors import ValidationFailed
from ecom.extensions import db
from ecom.fulfillment import services
from ecom.fulfillment.models import Fulfillment
from ecom.fulfillment.status import FulfillmentStatus


class GuestOrderFilter(BaseSQLAFilter):
    """Orders placed without an account (claimed by one since, or not)."""

    def apply(self, query, value, alias=None):
        guest = Order.order_token_hash.is_not(None)
        return query.filter(guest if value == "1" else ~guest)

    def operation(self):
        return "is"

    def get_options(self, view):
        return [("1", "a guest order"), ("0", "an account's order")]


def _customer(view, context, order, name):
    """The order's email, marked when it was placed as a guest (nobody verified that email)."""
    if not order.placed_as_guest:
        return order.email
    claimed = " (claimed)" if order.user_id is not None else ""
    badge = f'<span class="badge badge-secondary guest-order">guest{claimed}</span>'
    return Markup(f"{escape(order.email)} {badge}")


class CancelForm(FlaskForm):
    reason = StringField("Reason", validators=[DataRequired(), Length(max=500)])


class RefundForm(FlaskForm):
    amount = StringField("Amount (empty for the full remaining amount)", validators=[Length(max=20)])


class OrderView(StaffModelView):
    area = Area.ORDERS
    _can_create = False
    _can_edit = False
    _can_delete = False
    details_template = "admin/order_details.html"
    column_list = ["order_number", "email", "status", "total", "currency", "created_at", "paid_at",
                   "shipped_at"]
    column_searchable_list = ["order_number", "email"]
    column_filters = ["status", "created_at", "paid_at", "total", "email",
                      GuestOrderFilter(Order.order_token_hash, "Guest")]
    column_formatters = {"email": _customer}
    column_sortable_list = ["order_number", "status", "total", "created_at", "paid_at"]
    column_default_sort = ("created_at", True)
    count_limit = 10_000  # a million orders are not counted on every page view

    def get_one(self, id):
        return db.session.scalar(
            select(Order).where(Order.id == int(id)).options(
                selectinload(Order.items), selectinload(Order.payments).selectinload(Payment.refunds),
                selectinload(Order.history),
                joinedload(Order.fulfillment), joinedload(Order.user))
        )

    def render(self, template, **kwargs):
        if template == self.details_template:
            order = kwargs.get("model")
            payment = order.payment if order is not None else None
            # The buttons follow the state machines; the services have the last word.
            kwargs.update(cancel_form=CancelForm(), refund_form=RefundForm(),
                          may_change=can_edit(Area.ORDERS),
                          may_cancel=order is not None
                          and OrderStatus.CANCELLED in ALLOWED[OrderStatus(order.status)],
                          may_refund=payment is not None and payment.status in REFUNDABLE)
        return super().render(template, **kwargs)

    def _order_or_none(self, order_id: int) -> Order | None:
        order = db.session.get(Order, order_id)
        if order is None:
            flash("No such order.", "error")
        return order

    @expose("/cancel/<int:order_id>", methods=["POST"])
    def cancel_view(self, order_id: int):
        if not can_edit(Area.ORDERS):
            return _forbidden()
        form = CancelForm()
        if not form.validate_on_submit():
            flash("Give a reason for the cancellation.", "error")
        elif (order := self._order_or_none(order_id)) is not None:
            with unit_of_work() as work:
                cancel_order(order, actor=current_actor(), reason=form.reason.data)
            if work.ok:
                flash(f"Order {order.order_number} cancelled.", "success")
                _flash_refunds_waiting(order)
        return redirect(url_for(".details_view", id=order_id))

    @expose("/refund/<int:order_id>", methods=["POST"])
    def refund_view(self, order_id: int):
        if not can_edit(Area.ORDERS):
            return _forbidden()
        form = RefundForm()
        order = self._order_or_none(order_id)
        if order is not None and form.validate_on_submit():
            with unit_of_work() as work:
                refund = refund_payment(order, _parse_amount(form.amount.data), actor=current_actor())
            if work.ok:
                flash(f"Refund recorded for order {order.order_number}.", "success")
                _flash_refunds_waiting(order, [refund.id])
        return redirect(url_for(".details_view", id=order_id))


def _flash_refunds_waiting(order: Order, refund_ids: list[int] | None = None) -> None:
    """After the commit the refunds were made; say so about any the gateway has not made yet."""
    query = (select(PaymentRefund).join(Payment).where(Payment.order_id == order.id,
                                                       PaymentRefund.status == RefundStatus.REQUESTED))
    if refund_ids is not None:
        query = query.where(PaymentRefund.id.in_(refund_ids))
    for refund in db.session.scalars(query):
        flash(f"The payment provider has not made the refund of {refund.amount} yet "
              f"({refund.last_error or 'no answer'}); it is retried automatically.", "warning")


def _forbidden():
    from flask import abort

    abort(403)


def _parse_amount(text: str | None) -> Decimal | None:
    """The amount typed, or None for all that is left; whether it may be refunded is
    ``request_refund``'s to say."""
    if not (text or "").strip():
        return None
    try:
        amount = money(text.strip())
    except (InvalidOperation, ValueError):
        amount = None
    if amount is None or not amount.is_finite():
        raise ValidationFailed("The refund amount must be a number like 12.50.")
    return amount


OPEN_FIRST = {FulfillmentStatus.PENDING: 0, FulfillmentStatus.PROCESSING: 1, FulfillmentStatus.PACKED: 2,
              FulfillmentStatus.SHIPPED: 3}


class ShipForm(FlaskForm):
    carrier = StringField("Carrier", validators=[DataRequired(), Length(max=100)])


class FulfillmentView(StaffModelView):
    area = Area.FULFILLMENT
    _can_create = False
    _can_edit = False
    _can_delete = False
    list_template = "admin/fulfillment_list.html"
    column_list = ["order_number", "status", "order.email", "carrier", "tracking_number", "created_at",
                   "packed_at", "shipped_at"]
    column_labels = {"order.email": "Customer"}
    column_filters = ["status", "created_at", "carrier"]
    column_searchable_list = ["order_number", "tracking_number"]
    column_sortable_list = ["order_number", "status", "created_at", "shipped_at"]
    # The warehouse works the oldest first.
    column_default_sort = ("created_at", False)

    column_formatters = {
        "order_number": lambda v, c, m, n: Markup(
            f'<a href="{url_for("order.details_view", id=m.order_id)}">{escape(m.order_number)}</a>'),
    }

    def get_query(self):
        return super().get_query().options(joinedload(Fulfillment.order))

    def _apply_sorting(self, query, joins, sort_column, sort_desc):
        if sort_column is None:
            # Open work first (pending, processing, packed), each oldest first; finished ones after.
            return query.order_by(case(OPEN_FIRST, value=Fulfillment.status, else_=9),
                                  Fulfillment.created_at, Fulfillment.id), joins
        return super()._apply_sorting(query, joins, sort_column, sort_desc)

    def _fulfillments(self, ids) -> list[Fulfillment]:
        return list(db.session.scalars(
            select(Fulfillment).where(Fulfillment.id.in_([int(i) for i in ids])).order_by(Fulfillment.id)))

    def _step(self, ids, step_name: str, done: str):
        """One unit of work for the selection: a refused item is reported, the others done."""
        step = getattr(services, step_name)
        with unit_of_work() as work:
            result = services.apply_to_many(step, self._fulfillments(ids), actor=current_actor())
        if work.ok:
            _flash_bulk(result, done)

    @action("processing", "Mark processing")
    def action_processing(self, ids):
        self._step(ids, "mark_processing", "marked processing")

    @action("packed", "Mark packed")
    def action_packed(self, ids):
        self._step(ids, "mark_packed", "marked packed")

    @action("shipped", "Mark shipped…")
    def action_shipped(self, ids):
        return redirect(url_for(".ship_view", ids=",".join(ids)))

    @action("delivered", "Mark delivered")
    def action_delivered(self, ids):
        self._step(ids, "mark_delivered", "marked delivered")

    @action("picklist", "Print pick list")
    def action_picklist(self, ids):
        return redirect(url_for(".picklist_view", ids=",".join(ids)))

    def is_action_allowed(self, name):
        if name == "picklist":
            return True
        return super().is_action_allowed(name)

    def _ids_arg(self) -> list[int]:
        return [int(i) for i in (request.args.get("ids") or "").split(",") if i.strip().isdigit()]

    @expose("/ship", methods=["GET", "POST"])
    def ship_view(self):
        if not self.may_write():
            return _forbidden()
        fulfillments = self._fulfillments(self._ids_arg())
        form = ShipForm()
        if request.method == "POST" and form.validate_on_submit():
            self._ship(fulfillments, form.carrier.data)
            return redirect(url_for(".index_view"))
        if request.method == "POST":
            flash("Enter the carrier.", "error")
        return self.render("admin/ship.html", form=form, fulfillments=fulfillments)

    def _ship(self, fulfillments, carrier: str):
        tracking = {f.id: (request.form.get(f"tracking_{f.id}") or "").strip() for f in fulfillments}

        def ship(fulfillment: Fulfillment, *, actor) -> Fulfillment:
            if not tracking[fulfillment.id]:
                raise ValidationFailed("A tracking number is required to ship.")
            return services.ship_fulfillment(fulfillment, carrier=carrier.strip(),
                                             tracking_number=tracking[fulfillment.id], actor=actor)

        with unit_of_work() as work:
            result = services.apply_to_many(ship, fulfillments, actor=current_actor())
        if work.ok:
            _flash_bulk(result, "shipped")

    @expose("/picklist")
    def picklist_view(self):
        fulfillments = self._fulfillments(self._ids_arg()) or list(db.session.scalars(
            select(Fulfillment).where(Fulfillment.status.in_(
                [FulfillmentStatus.PENDING, FulfillmentStatus.PROCESSING])).order_by(Fulfillment.created_at)
            .limit(100)))
        order_ids = [f.order_id for f in fulfillments]
        lines: dict[str, dict] = defaultdict(lambda: {"quantity": 0, "orders": []})
        for item in db.session.scalars(
                select(OrderItem).where(OrderItem.order_id.in_(order_ids)).order_by(OrderItem.sku)):
            line = lines[item.sku]
            line.update(sku=item.sku, name=f"{item.product_name} — {item.variant_name}")
            line["quantity"] += item.quantity
            line["orders"].append(item.order_id)
        numbers = {f.order_id: f.order_number for f in fulfillments}
        return self.render("admin/picklist.html", fulfillments=fulfillments,
                           lines=sorted(lines.values(), key=lambda x: x["sku"]), numbers=numbers)

    @expose("/slip/<int:fulfillment_id>")
    def slip_view(self, fulfillment_id: int):
        fulfillment = db.get_or_404(Fulfillment, fulfillment_id)
        order = db.session.scalar(select(Order).where(Order.id == fulfillment.order_id)
                                  .options(selectinload(Order.items)))
        return self.render("admin/packing_slip.html", fulfillment=fulfillment, order=order)


def _flash_bulk(result: services.BulkResult, done: str) -> None:
    if result.done:
        flash(f"{len(result.done)} fulfillment(s) {done}.", "success")
    for fulfillment_id, message in result.failed.items():
        flash(f"{db.session.get(Fulfillment, fulfillment_id).order_number}: {message}", "error")
