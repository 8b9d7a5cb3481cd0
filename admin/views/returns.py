"""The returns queue: admins approve or reject, the warehouse receives (restock into a location
or write off), admins refund by line (commerce-v2 §5 and §6). The rules are
``ecom.commerce.returns``'s; this view parses, calls and renders."""

from __future__ import annotations

from flask import flash, g, redirect, request, url_for
from flask_admin import expose
from flask_wtf import FlaskForm
from markupsafe import Markup, escape
from sqlalchemy import select
from sqlalchemy.orm import selectinload

from admin.base import PrefixSearch, StaffModelView, unit_of_work
from admin.security import Area, can_edit, can_read, current_actor
from admin.views.locations import LocationFilter
from admin.views.orders import _flash_refunds_waiting, _forbidden
from ecom.commerce.models import Order, OrderItem, Return, ReturnLine
from ecom.commerce.returns import (
    Receipt,
    approve_return,
    at_location,
    close_return,
    receive_return,
    refund_return,
    refunded_units,
    reject_return,
    shipped_from,
    shipping_refundable,
)
from ecom.commerce.status import ReturnStatus
from ecom.extensions import db
from ecom.fulfillment.models import Fulfillment
from ecom.inventory.models import StockLocation
from ecom.inventory.services import active_locations
from ecom.pricing.shares import refundable_share


class ActionForm(FlaskForm):
    """CSRF only; the fields are read from the request by name."""


# What staff may still close (withdrawn, never sent back, or received and not to be refunded).
CLOSABLE = (ReturnStatus.REQUESTED, ReturnStatus.APPROVED, ReturnStatus.RECEIVED)


class ReturnLocationFilter(LocationFilter):
    """A clerk's own location: returns received there, or shipped from there and not received
    yet (so expected back there)."""

    def apply(self, query, value, alias=None):
        return query.filter(at_location(int(value))) if str(value).isdigit() else query


def _locations_column(view, context, model, name):
    """Where each line was received, else where it was shipped from (expected back)."""
    names = {location.id: location.name for location in _location_names()}
    shipped: dict[int, list[int]] = {}
    for fulfillment in model.order.fulfillments:  # loaded with the list (get_query)
        for line in fulfillment.lines:
            shipped.setdefault(line.order_item_id, []).append(fulfillment.location_id)
    received = [line.location_id for line in model.lines if line.location_id is not None]
    if received:
        return ", ".join(dict.fromkeys(names.get(i, "?") for i in received))
    expected = [i for line in model.lines for i in shipped.get(line.order_item_id, [])]
    return ("from " + ", ".join(dict.fromkeys(names.get(i, "?") for i in expected))) if expected else ""


def _location_names() -> list[StockLocation]:
    # Once per request: the list renders a cell per row.
    cache = getattr(g, "_return_locations", None)
    if cache is None:
        cache = g._return_locations = list(db.session.scalars(select(StockLocation)))
    return cache


class ReturnView(PrefixSearch, StaffModelView):
    area = Area.RETURNS
    _can_create = False
    _can_edit = False
    _can_delete = False
    details_template = "admin/return_details.html"
    column_list = ["rma_number", "order.order_number", "status", "location", "order.email", "refund_amount",
                   "created_at"]
    column_labels = {"order.order_number": "Order", "order.email": "Customer", "rma_number": "RMA",
                     "location": "Location"}
    # A clerk filters the queue by their own location, as the fulfillment queue.
    column_filters = [ReturnLocationFilter(Return.id, "Location"), "status", "created_at"]
    column_searchable_list = ["rma_number"]
    # RMA numbers are "RMA-<order number>-<n>": the clerk types one, or an order number.
    prefix_search_field = "rma_number"
    prefix_search_implied = "RMA-"
    search_placeholder_text = "RMA or order number, or how it starts"
    column_sortable_list = ["rma_number", "status", "created_at"]
    column_default_sort = ("created_at", True)
    column_formatters = {
        "rma_number": lambda v, c, m, n: Markup(
            f'<a href="{url_for(".details_view", id=m.id)}" class="return-link">{escape(m.rma_number)}</a>'),
        "order.order_number": lambda v, c, m, n: Markup(
            f'<a href="{url_for("order.details_view", id=m.order_id)}">{escape(m.order.order_number)}</a>'),
        "location": _locations_column,
    }

    def get_query(self):
        return super().get_query().options(
            selectinload(Return.lines),
            selectinload(Return.order).selectinload(Order.fulfillments).selectinload(Fulfillment.lines))

    def get_one(self, id):
        return db.session.scalar(select(Return).where(Return.id == int(id)).options(
            selectinload(Return.lines).selectinload(ReturnLine.order_item), selectinload(Return.order)))

    def render(self, template, **kwargs):
        if template == self.list_template and not can_read(Area.REFUNDS):
            kwargs["list_columns"] = [(name, label) for name, label in kwargs["list_columns"]
                                      if name != "refund_amount"]
        if template == self.details_template and kwargs.get("model") is not None:
            ret = kwargs["model"]
            kwargs.update(action_form=ActionForm(), lines=_line_rows(ret), locations=active_locations(),
                          shipping_left=shipping_refundable(ret.order),
                          may_see_money=can_read(Area.REFUNDS),
                          may_close=can_edit(Area.RETURNS) and ret.status in CLOSABLE,
                          may_decide=can_edit(Area.RETURNS) and ret.status == ReturnStatus.REQUESTED,
                          may_receive=can_edit(Area.RETURNS_RECEIVE) and ret.status == ReturnStatus.APPROVED,
                          may_refund=can_edit(Area.REFUNDS) and ret.status == ReturnStatus.RECEIVED)
        return super().render(template, **kwargs)

    def _return(self, return_id: int) -> Return | None:
        ret = db.session.get(Return, return_id)
        if ret is None:
            flash("No such return.", "error")
        return ret

    def _back(self, return_id: int):
        return redirect(url_for(".details_view", id=return_id))

    @expose("/decide/<int:return_id>", methods=["POST"])
    def decide_view(self, return_id: int):
        if not can_edit(Area.RETURNS):
            return _forbidden()
        if ActionForm().validate_on_submit() and (ret := self._return(return_id)) is not None:
            approve = request.form.get("decision") == "approve"
            with unit_of_work() as work:
                if approve:
                    approve_return(ret, actor=current_actor())
                else:
                    reject_return(ret, actor=current_actor(), note=request.form.get("note", "")[:500])
            if work.ok:
                flash(f"Return {ret.rma_number} {'approved' if approve else 'rejected'}.", "success")
        return self._back(return_id)

    @expose("/close/<int:return_id>", methods=["POST"])
    def close_view(self, return_id: int):
        """Close a return without a refund (an admin's decision, like approve and reject)."""
        if not can_edit(Area.RETURNS):
            return _forbidden()
        if ActionForm().validate_on_submit() and (ret := self._return(return_id)) is not None:
            with unit_of_work() as work:
                close_return(ret, actor=current_actor(), note=request.form.get("note", "").strip()[:500])
            if work.ok:
                flash(f"Return {ret.rma_number} closed without a refund.", "success")
        return self._back(return_id)

    @expose("/receive/<int:return_id>", methods=["POST"])
    def receive_view(self, return_id: int):
        if not can_edit(Area.RETURNS_RECEIVE):
            return _forbidden()
        if ActionForm().validate_on_submit() and (ret := self._return(return_id)) is not None:
            receipts = {}
            for line in ret.lines:
                condition = request.form.get(f"condition-{line.id}", "")
                location = request.form.get(f"location-{line.id}", "")
                receipts[line.id] = Receipt(condition, int(location) if location.isdigit() else None)
            with unit_of_work() as work:
                receive_return(ret, receipts, actor=current_actor())
            if work.ok:
                flash(f"Return {ret.rma_number} received.", "success")
        return self._back(return_id)

    @expose("/refund/<int:return_id>", methods=["POST"])
    def refund_view(self, return_id: int):
        if not can_edit(Area.REFUNDS):
            return _forbidden()
        if ActionForm().validate_on_submit() and (ret := self._return(return_id)) is not None:
            with unit_of_work() as work:
                refund_return(ret, actor=current_actor(), shipping=request.form.get("shipping") == "1")
            if work.ok:
                flash(f"Return {ret.rma_number} refunded: {ret.refund_amount}.", "success")
                _flash_refunds_waiting(ret.order, [ret.refund_id] if ret.refund_id else [])
        return self._back(return_id)


def _line_rows(ret: Return) -> list[dict]:
    """Each line with the amount refunding it would pay now (its share after the units of its
    order line refunded before), or what it was refunded."""
    done = refunded_units(ret.order_id)
    shipped = shipped_from(ret.order_id)
    rows = []
    for line in ret.lines:
        item: OrderItem = line.order_item
        already = done.get(item.id, 0)
        units = min(line.quantity, item.quantity - already)
        if line.refund_amount is not None:
            refundable = line.refund_amount
        elif units > 0 and ret.status in CLOSABLE:  # a rejected or closed return refunds nothing
            refundable = refundable_share(ret.order, item, units, already=already)
        else:
            refundable = None
        # The receive form starts at the location that shipped the line (where it comes back).
        rows.append({"line": line, "item": item, "refundable": refundable,
                     "expected_location_id": (shipped.get(item.id) or [None])[0]})
    return rows
