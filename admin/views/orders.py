"""Orders (read-only money and status; cancel and refund) and the fulfillment queue."""

from __future__ import annotations

from collections import defaultdict
from decimal import Decimal, InvalidOperation

from flask import flash, g, redirect, request, url_for
from flask_admin import expose
from flask_admin.actions import action
from flask_admin.contrib.sqla.filters import BaseSQLAFilter
from flask_wtf import FlaskForm
from flask_wtf.csrf import generate_csrf
from markupsafe import Markup, escape
from sqlalchemy import case, select
from sqlalchemy.orm import joinedload, selectinload
from wtforms import StringField
from wtforms.validators import DataRequired, Length

from admin.base import ExactFirstSearch, StaffModelView, ranked_page, unit_of_work
from admin.formatting import format_money
from admin.security import Area, can_edit, can_read, current_actor
from admin.views.locations import LocationFilter
from ecom.commerce.cancellation import cancel_order
from ecom.commerce.models import Order, Payment, PaymentRefund
from ecom.commerce.order_actions import refund_payment
from ecom.commerce.returns import goodwill_refund, line_refundables, returns_of, shipping_refundable
from ecom.commerce.status import ALLOWED, REFUNDABLE, EventKind, OrderStatus, RefundStatus
from ecom.db import money
from ecom.errors import ValidationFailed
from ecom.extensions import db
from ecom.fulfillment import services
from ecom.fulfillment.models import Fulfillment
from ecom.fulfillment.status import FulfillmentStatus
from ecom.inventory.models import StockLocation
from ecom.inventory.services import active_locations


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
    """The order's email, linked to the customer's page when an account placed or claimed it,
    and marked when it was placed as a guest (nobody verified that email)."""
    email = escape(order.email)
    if order.user_id is not None:
        email = Markup(f'<a href="{escape(url_for("customer.details_view", id=order.user_id))}">{email}</a>')
    if not order.placed_as_guest:
        return Markup(email)
    claimed = " (claimed)" if order.user_id is not None else ""
    badge = f'<span class="badge badge-secondary guest-order">guest{claimed}</span>'
    return Markup(f"{email} {badge}")


class CancelForm(FlaskForm):
    reason = StringField("Reason", validators=[DataRequired(), Length(max=500)])


class RefundForm(FlaskForm):
    amount = StringField("Amount (empty for the full remaining amount)", validators=[Length(max=20)])


class OrderSearch(ExactFirstSearch):
    """An order number typed whole or by its start (``ORD-`` may be left out) is looked up
    on its B-tree before the numbers are searched inside."""

    exact_search_codes = ("order_number",)
    exact_search_code_implied = "ORD-"


class OrderView(OrderSearch, StaffModelView):
    area = Area.ORDERS
    _can_create = False
    _can_edit = False
    _can_delete = False
    details_template = "admin/order_details.html"
    column_list = ["order_number", "email", "status", "total", "created_at", "paid_at", "shipped_at"]
    column_searchable_list = ["order_number", "email"]
    exact_search_emails = ("email",)
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
                selectinload(Order.fulfillments), joinedload(Order.user))
        )

    def render(self, template, **kwargs):
        if template == self.details_template:
            order = kwargs.get("model")
            payment = order.payment if order is not None else None
            # The buttons follow the state machines; the services have the last word.
            kwargs.update(payment_attempts=[e for e in (order.history if order else [])
                                            if e.kind == EventKind.PAYMENT],
                          customer_url=url_for("customer.details_view", id=order.user_id)
                          if order is not None and order.user_id else None,
                          cancel_form=CancelForm(), refund_form=RefundForm(),
                          may_change=can_edit(Area.ORDERS),
                          may_cancel=order is not None
                          and OrderStatus.CANCELLED in ALLOWED[OrderStatus(order.status)],
                          may_refund=payment is not None and payment.status in REFUNDABLE)
            # Goodwill refunds by line (commerce-v2 §5): the refunds area, admins only (§6).
            may_goodwill = kwargs["may_refund"] and can_edit(Area.REFUNDS)
            kwargs.update(may_goodwill=may_goodwill,
                          goodwill_lines=line_refundables(order) if may_goodwill else [],
                          goodwill_shipping=shipping_refundable(order) if may_goodwill else None,
                          order_returns=returns_of(order) if order is not None else [],
                          may_open_returns=can_read(Area.RETURNS))
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


    @expose("/goodwill/<int:order_id>", methods=["POST"])
    def goodwill_view(self, order_id: int):
        """A goodwill refund of units of lines (and the shipping), without a return."""
        if not can_edit(Area.REFUNDS):
            return _forbidden()
        form = RefundForm()
        order = self._order_or_none(order_id)
        if order is not None and form.validate_on_submit():
            with unit_of_work() as work:
                units = _goodwill_units(order)
                refund = goodwill_refund(order, units, shipping=request.form.get("goodwill-shipping") == "1",
                                         actor=current_actor(), reason="goodwill")
            if work.ok:
                flash(f"Goodwill refund recorded for order {order.order_number}.", "success")
                _flash_refunds_waiting(order, [refund.id] if refund is not None else [])
        return redirect(url_for(".details_view", id=order_id))


def _goodwill_units(order: Order) -> dict[int, int]:
    """order item id -> units typed on the order page (empty or 0: none)."""
    units = {}
    for item in order.items:
        text = (request.form.get(f"goodwill-{item.id}") or "").strip()
        if not text or text == "0":
            continue
        if not text.isdigit() or len(text) > 6:
            raise ValidationFailed(f"{item.sku}: units are a whole number.")
        units[item.id] = int(text)
    return units


def _flash_refunds_waiting(order: Order, refund_ids: list[int] | None = None) -> None:
    """After the commit the refunds were made; say so about any the gateway has not made yet."""
    query = (select(PaymentRefund).join(Payment).where(Payment.order_id == order.id,
                                                       PaymentRefund.status == RefundStatus.REQUESTED))
    if refund_ids is not None:
        query = query.where(PaymentRefund.id.in_(refund_ids))
    for refund in db.session.scalars(query):
        flash(f"The payment provider has not made the refund of {format_money(refund.amount)} yet "
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
              FulfillmentStatus.READY_FOR_PICKUP: 2, FulfillmentStatus.SHIPPED: 3}
QUEUE_RANK = {status: OPEN_FIRST.get(status, 9) for status in FulfillmentStatus}


class ShipForm(FlaskForm):
    carrier = StringField("Carrier", validators=[DataRequired(), Length(max=100)])


class FulfillmentView(OrderSearch, StaffModelView):
    area = Area.FULFILLMENT
    _can_create = False
    _can_edit = False
    _can_delete = False
    list_template = "admin/fulfillment_list.html"
    column_list = ["order_number", "location.name", "status", "next_step", "order.email", "carrier",
                   "tracking_number", "created_at", "packed_at", "shipped_at"]
    column_labels = {"order.email": "Customer", "location.name": "From", "next_step": "Next step"}
    # A clerk filters the queue by their own location (the pick list follows the filter).
    column_filters = [LocationFilter(Fulfillment.location_id, "Location"), "status", "created_at", "carrier",
                      "is_pickup"]
    column_searchable_list = ["order_number", "tracking_number"]
    exact_search_equals = ("tracking_number",)
    column_sortable_list = ["order_number", "status", "created_at", "shipped_at"]
    # The warehouse works the oldest first.
    column_default_sort = ("created_at", False)

    column_formatters = {
        "order_number": lambda v, c, m, n: Markup(
            f'<a href="{url_for("order.details_view", id=m.order_id)}">{escape(m.order_number)}</a>'),
        "next_step": lambda v, c, m, n: _next_step_button(v, m),
    }

    def get_query(self):
        return super().get_query().options(joinedload(Fulfillment.order), joinedload(Fulfillment.location))

    def _apply_sorting(self, query, joins, sort_column, sort_desc):
        if sort_column is None:
            # Open work first (pending, processing, packed), each oldest first; finished ones after.
            g.fulfillment_queue_order = True
            return query.order_by(case(OPEN_FIRST, value=Fulfillment.status, else_=9),
                                  Fulfillment.created_at, Fulfillment.id), joins
        g.fulfillment_queue_order = False
        return super()._apply_sorting(query, joins, sort_column, sort_desc)

    def get_list(self, page, sort_column, sort_desc, search, filters, *args, **kwargs):
        g.fulfillment_search = bool(search)
        return super().get_list(page, sort_column, sort_desc, search, filters, *args, **kwargs)

    def _apply_pagination(self, query, page, page_size):
        page_size = self.page_size if page_size is None else page_size
        # A search's few matches are found by the trigram indexes and sorted as they are; the
        # status branches would each read every row of their status to test the search.
        if not (page_size and g.get("fulfillment_queue_order")) or g.get("fulfillment_search"):
            return super()._apply_pagination(query, page, page_size)
        # The rank is held by no index: one branch per status off ix_fulfillments_status_created_id.
        return ranked_page(query, Fulfillment.status, QUEUE_RANK, [Fulfillment.created_at, Fulfillment.id],
                           page, page_size)

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

    @action("ready_for_pickup", "Ready for pickup (tells the customer)")
    def action_ready_for_pickup(self, ids):
        self._step(ids, "mark_ready_for_pickup", "ready for pickup")

    @action("picked_up", "Picked up")
    def action_picked_up(self, ids):
        self._step(ids, "mark_picked_up", "picked up")

    @action("picklist", "Print pick list")
    def action_picklist(self, ids):
        return redirect(url_for(".picklist_view", ids=",".join(ids)))

    def is_action_allowed(self, name):
        if name == "picklist":
            return True
        return super().is_action_allowed(name)

    def _ids_arg(self) -> list[int]:
        return [int(i) for i in (request.args.get("ids") or "").split(",") if i.strip().isdigit()]

    @expose("/step/<int:fulfillment_id>", methods=["POST"])
    def step_view(self, fulfillment_id: int):
        """The row's one next step (processing, packed, delivered); shipping has its own form."""
        if not self.may_write():
            return _forbidden()
        fulfillment = db.get_or_404(Fulfillment, fulfillment_id)
        step = NEXT_STEPS.get(FulfillmentStatus(fulfillment.status))
        if step is None or step[0] == "ship":
            flash(f"{fulfillment.order_number} is {fulfillment.status}: there is no such step for it now.",
                  "error")
            return redirect(url_for(".index_view"))
        self._step([str(fulfillment.id)], step[0], step[2])
        return redirect(url_for(".index_view"))

    @expose("/ship", methods=["GET", "POST"])
    def ship_view(self):
        if not self.may_write():
            return _forbidden()
        selected = self._fulfillments(self._ids_arg())
        # Only packed fulfillments can ship: the others are named, with what they need first.
        fulfillments = [f for f in selected if f.status == FulfillmentStatus.PACKED]
        not_ready = [f for f in selected if f.status != FulfillmentStatus.PACKED]
        form = ShipForm()
        if request.method == "POST" and fulfillments and form.validate_on_submit():
            self._ship(fulfillments, form.carrier.data)
            return redirect(url_for(".index_view"))
        if request.method == "POST" and fulfillments:
            flash("Enter the carrier.", "error")
        return self.render("admin/ship.html", form=form, fulfillments=fulfillments, not_ready=not_ready)

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
        """What to pick for the selected fulfillments, or the open queue of one location
        (``?location_id=``; else every location's): each fulfillment's own lines, so a split
        order's pick list at one warehouse holds only what leaves from there."""
        location = db.session.get(StockLocation, request.args.get("location_id", type=int) or 0)
        open_queue = select(Fulfillment).where(Fulfillment.status.in_(
            [FulfillmentStatus.PENDING, FulfillmentStatus.PROCESSING]))
        if location is not None:
            open_queue = open_queue.where(Fulfillment.location_id == location.id)
        fulfillments = self._fulfillments(self._ids_arg()) or list(db.session.scalars(
            open_queue.order_by(Fulfillment.created_at).limit(100)))
        lines: dict[tuple[str, str], dict] = defaultdict(lambda: {"quantity": 0, "orders": []})
        for fulfillment in fulfillments:
            for fline in fulfillment.lines:
                item = fline.order_item
                line = lines[(fulfillment.location.name, item.sku)]
                line.update(sku=item.sku, name=f"{item.product_name} — {item.variant_name}",
                            location=fulfillment.location.name)
                line["quantity"] += fline.quantity
                line["orders"].append(fulfillment.order_id)
        numbers = {f.order_id: f.order_number for f in fulfillments}
        return self.render("admin/picklist.html", fulfillments=fulfillments, location=location,
                           lines=[lines[key] for key in sorted(lines)], numbers=numbers,
                           locations=active_locations())

    @expose("/slip/<int:fulfillment_id>")
    def slip_view(self, fulfillment_id: int):
        fulfillment = db.get_or_404(Fulfillment, fulfillment_id)
        order = db.session.scalar(select(Order).where(Order.id == fulfillment.order_id)
                                  .options(selectinload(Order.items)))
        return self.render("admin/packing_slip.html", fulfillment=fulfillment, order=order)


# Each status's one next step in the workflow: (service or "ship", button label, past tense).
NEXT_STEPS = {
    FulfillmentStatus.PENDING: ("mark_processing", "Start picking", "marked processing"),
    FulfillmentStatus.PROCESSING: ("mark_packed", "Mark packed", "marked packed"),
    FulfillmentStatus.PACKED: ("ship", "Ship…", "shipped"),
    FulfillmentStatus.SHIPPED: ("mark_delivered", "Mark delivered", "marked delivered"),
}


def _next_step_button(view, fulfillment: Fulfillment):
    """The one button a row offers: the step that can succeed from its status, if any."""
    step = NEXT_STEPS.get(FulfillmentStatus(fulfillment.status))
    if step is None or not view.may_write():
        return ""
    name, label, _ = step
    if name == "ship":
        href = url_for(".ship_view", ids=str(fulfillment.id))
        return Markup(f'<a class="btn btn-sm btn-primary next-step" id="ship-{fulfillment.id}" '
                      f'href="{escape(href)}">{label}</a>')
    action = url_for(".step_view", fulfillment_id=fulfillment.id)
    return Markup(f'<form method="post" action="{escape(action)}" class="d-inline">'
                  f'<input type="hidden" name="csrf_token" value="{escape(generate_csrf())}">'
                  f'<button class="btn btn-sm btn-outline-primary next-step" id="step-{fulfillment.id}" '
                  f'type="submit">{label}</button></form>')


def _flash_bulk(result: services.BulkResult, done: str) -> None:
    if result.done:
        flash(f"{len(result.done)} fulfillment(s) {done}.", "success")
    for fulfillment_id, message in result.failed.items():
        flash(f"{db.session.get(Fulfillment, fulfillment_id).order_number}: {message}", "error")
