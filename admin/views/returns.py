"""The returns queue: admins approve or reject, the warehouse receives (restock into a location
or write off), admins refund by line (commerce-v2 §5 and §6). The rules are
``ecom.commerce.returns``'s; this view parses, calls and renders."""

from __future__ import annotations

from flask import flash, redirect, request, url_for
from flask_admin import expose
from flask_wtf import FlaskForm
from markupsafe import Markup, escape
from sqlalchemy import select
from sqlalchemy.orm import selectinload

from admin.base import StaffModelView, unit_of_work
from admin.security import Area, can_edit, current_actor
from admin.views.orders import _flash_refunds_waiting, _forbidden
from ecom.commerce.models import OrderItem, Return, ReturnLine
from ecom.commerce.returns import (
    Receipt,
    approve_return,
    receive_return,
    refund_return,
    refunded_units,
    reject_return,
    shipping_refundable,
)
from ecom.commerce.status import ReturnStatus
from ecom.extensions import db
from ecom.inventory.services import active_locations
from ecom.pricing.shares import refundable_share


class ActionForm(FlaskForm):
    """CSRF only; the fields are read from the request by name."""


class ReturnView(StaffModelView):
    area = Area.RETURNS
    _can_create = False
    _can_edit = False
    _can_delete = False
    details_template = "admin/return_details.html"
    column_list = ["rma_number", "order.order_number", "status", "order.email", "refund_amount", "created_at"]
    column_labels = {"order.order_number": "Order", "order.email": "Customer", "rma_number": "RMA"}
    column_filters = ["status", "created_at"]
    column_searchable_list = ["rma_number"]
    column_sortable_list = ["rma_number", "status", "created_at"]
    column_default_sort = ("created_at", True)
    column_formatters = {
        "rma_number": lambda v, c, m, n: Markup(
            f'<a href="{url_for(".details_view", id=m.id)}" class="return-link">{escape(m.rma_number)}</a>'),
        "order.order_number": lambda v, c, m, n: Markup(
            f'<a href="{url_for("order.details_view", id=m.order_id)}">{escape(m.order.order_number)}</a>'),
    }

    def get_one(self, id):
        return db.session.scalar(select(Return).where(Return.id == int(id)).options(
            selectinload(Return.lines).selectinload(ReturnLine.order_item), selectinload(Return.order)))

    def render(self, template, **kwargs):
        if template == self.details_template and kwargs.get("model") is not None:
            ret = kwargs["model"]
            kwargs.update(action_form=ActionForm(), lines=_line_rows(ret), locations=active_locations(),
                          shipping_left=shipping_refundable(ret.order),
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
    rows = []
    for line in ret.lines:
        item: OrderItem = line.order_item
        already = done.get(item.id, 0)
        units = min(line.quantity, item.quantity - already)
        refundable = (line.refund_amount if line.refund_amount is not None
                      else refundable_share(ret.order, item, units, already=already) if units > 0 else None)
        rows.append({"line": line, "item": item, "refundable": refundable})
    return rows
