"""The customer page: orders, addresses, lifetime value and staff notes, for anyone who may
read orders."""

from __future__ import annotations

from flask import flash, redirect, request, url_for
from flask_admin import expose
from sqlalchemy import func, select

from admin.base import StaffModelView, unit_of_work
from admin.security import Area, can_read, current_actor
from ecom.commerce.models import Order
from ecom.commerce.revenue import customer_lifetime_value
from ecom.extensions import db
from ecom.identity.models import Role, User
from ecom.identity.notes import add_customer_note, customer_notes

RECENT_ORDERS = 50


class CustomerView(StaffModelView):
    area = Area.ORDERS
    _can_create = False
    _can_edit = False
    _can_delete = False
    details_template = "admin/customer_details.html"
    column_list = ["email", "full_name", "is_active", "last_login_at", "created_at"]
    column_searchable_list = ["email", "full_name"]
    column_filters = ["is_active", "created_at"]
    column_sortable_list = ["email", "full_name", "last_login_at", "created_at"]
    column_default_sort = ("created_at", True)
    column_labels = {"is_active": "Active"}
    count_limit = 10_000

    def get_query(self):
        return super().get_query().filter(User.role == Role.CUSTOMER)

    def get_count_query(self):
        return super().get_count_query().filter(User.role == Role.CUSTOMER)

    def get_one(self, id):
        return db.session.scalar(select(User).where(User.id == int(id), User.role == Role.CUSTOMER))

    def render(self, template, **kwargs):
        if template == self.details_template and kwargs.get("model") is not None:
            customer = kwargs["model"]
            kwargs.update(
                orders=db.session.scalars(select(Order).where(Order.user_id == customer.id)
                                          .order_by(Order.created_at.desc()).limit(RECENT_ORDERS)).all(),
                order_count=db.session.scalar(select(func.count(Order.id))
                                              .where(Order.user_id == customer.id)),
                lifetime_value=customer_lifetime_value(customer.id),
                notes=customer_notes(customer),
                may_note=can_read(Area.ORDERS))
        return super().render(template, **kwargs)

    @expose("/note/<int:user_id>", methods=["POST"])
    def note_view(self, user_id: int):
        customer = self.get_one(user_id)
        if customer is None:
            flash("No such customer.", "error")
            return redirect(url_for(".index_view"))
        with unit_of_work() as work:
            add_customer_note(customer, request.form.get("body", ""), actor=current_actor())
        if work.ok:
            flash("Note added.", "success")
        return redirect(url_for(".details_view", id=user_id) + "#notes")
