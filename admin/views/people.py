"""Users and roles, notifications, the audit log (admin only)."""

from __future__ import annotations

import json

from flask import flash, g, redirect, url_for
from flask_admin import expose
from flask_admin.actions import action
from flask_wtf import FlaskForm
from markupsafe import Markup, escape
from sqlalchemy import case, or_
from wtforms import EmailField, PasswordField, SelectField, StringField
from wtforms.validators import DataRequired, EqualTo, Length

from admin.audit_records import ENTITY_NAMES, audit_labels, record_url
from admin.base import ReadOnlyModelView, StaffModelView, ranked_page, unit_of_work
from admin.passwords import set_password_link
from admin.security import Area, current_actor
from admin.views.catalog import _like
from ecom.audit.models import AuditLog
from ecom.extensions import db
from ecom.identity.invitations import Purpose, invite_staff, resend_invitation
from ecom.identity.models import STAFF_ROLES, Role, User
from ecom.identity.services import reset_password, set_user_role, set_users_active
from ecom.notifications.models import DeliveryStatus, Notification


class RoleForm(FlaskForm):
    role = SelectField("Role", choices=[(r.value, r.value) for r in Role])


class InviteForm(FlaskForm):
    email = EmailField("Email", validators=[DataRequired(), Length(max=255)])
    full_name = StringField("Full name", validators=[Length(max=200)])
    role = SelectField("Role", choices=[(r.value, r.value) for r in Role if r in STAFF_ROLES],
                       default=Role.MERCHANDISER.value)


class PasswordForm(FlaskForm):
    password = PasswordField("New password", validators=[DataRequired(), Length(min=8, max=72)])
    confirm = PasswordField("Repeat it", validators=[EqualTo("password", message="The passwords differ.")])


class UserView(StaffModelView):
    area = Area.ADMINISTRATION
    _can_create = False
    _can_edit = False
    _can_delete = False
    details_template = "admin/user_details.html"
    list_template = "admin/user_list.html"
    # The password hash is never listed, shown, exported or editable.
    column_list = ["email", "full_name", "role", "is_active", "last_login_at", "created_at"]
    column_details_list = ["email", "full_name", "role", "is_active", "last_login_at", "created_at",
                           "updated_at"]
    column_exclude_list = ["hashed_password"]
    column_searchable_list = ["email", "full_name"]
    column_filters = ["role", "is_active", "created_at"]
    column_sortable_list = ["email", "role", "is_active", "last_login_at", "created_at"]
    column_default_sort = ("created_at", True)
    column_labels = {"is_active": "Active"}

    def _set_active(self, ids, active: bool, done: str):
        with unit_of_work() as work:
            changed = set_users_active(ids, active, actor=current_actor())
        if work.ok:
            flash(f"{changed} user(s) {done}.", "success")

    @action("activate", "Activate")
    def action_activate(self, ids):
        self._set_active(ids, True, "activated")

    @action("deactivate", "Deactivate", "Deactivated users cannot sign in. Continue?")
    def action_deactivate(self, ids):
        self._set_active(ids, False, "deactivated")

    @expose("/role/<int:user_id>", methods=["POST"])
    def role_view(self, user_id: int):
        user = db.get_or_404(User, user_id)
        form = RoleForm()
        if form.validate_on_submit():
            with unit_of_work() as work:
                set_user_role(user, form.role.data, actor=current_actor())
            if work.ok:
                flash(f"{user.email} is now {user.role}.", "success")
        return redirect(url_for(".details_view", id=user_id))

    @expose("/invite", methods=["GET", "POST"])
    def invite_view(self):
        """A new staff account: the person sets their own password from the emailed link."""
        if not self.may_write():
            return self.inaccessible_callback("invite_view")
        form = InviteForm()
        if form.validate_on_submit():
            with unit_of_work() as work:
                user = invite_staff(form.email.data, full_name=form.full_name.data or "", role=form.role.data,
                                    actor=current_actor(), link_for=set_password_link(Purpose.INVITE))
            if work.ok:
                flash(f"{user.email} was invited as {user.role}: they were emailed a link to set their "
                      "password (valid for 72 hours).", "success")
                return redirect(url_for(".details_view", id=user.id))
        for errors in form.errors.values():
            for message in errors:
                flash(message, "error")
        return self.render("admin/user_invite.html", form=form)

    @expose("/send-link/<int:user_id>", methods=["POST"])
    def send_link_view(self, user_id: int):
        user = db.get_or_404(User, user_id)
        with unit_of_work() as work:
            resend_invitation(user, actor=current_actor(), link_for=set_password_link(Purpose.INVITE))
        if work.ok:
            flash(f"{user.email} was emailed a link to set their password.", "success")
        return redirect(url_for(".details_view", id=user_id))

    @expose("/password/<int:user_id>", methods=["GET", "POST"])
    def password_view(self, user_id: int):
        user = db.get_or_404(User, user_id)
        form = PasswordForm()
        if form.validate_on_submit():
            with unit_of_work() as work:
                reset_password(user, form.password.data, actor=current_actor())
            if work.ok:
                flash(f"The password of {user.email} was reset.", "success")
                return redirect(url_for(".details_view", id=user_id))
        for errors in form.errors.values():
            for message in errors:
                flash(message, "error")
        return self.render("admin/user_password.html", form=form, user=user)

    def render(self, template, **kwargs):
        if template == self.details_template:
            kwargs.setdefault("role_form", RoleForm(role=kwargs["model"].role))
        return super().render(template, **kwargs)


# The notification list's default order: failures first (every status the column can hold).
FAILED_FIRST = {DeliveryStatus.FAILED: 0, DeliveryStatus.SENT: 1}

# Emails whose text holds a one-time password link: not shown to other admins.
SECRET_LINK_EVENTS = frozenset({"STAFF_INVITED", "PASSWORD_RESET"})


def _notification_body(view, context, model, name):
    if model.event_type in SECRET_LINK_EVENTS:
        return "(holds a one-time password link; not shown)"
    return model.body


class NotificationView(ReadOnlyModelView):
    area = Area.ADMINISTRATION
    column_formatters = {"body": _notification_body}
    column_export_exclude_list = ["body"]
    column_list = ["status", "event_type", "channel", "recipient", "subject", "error", "created_at",
                   "sent_at"]
    column_filters = ["status", "channel", "event_type", "recipient", "created_at"]
    column_searchable_list = ["recipient", "subject", "event_id"]
    column_sortable_list = ["status", "event_type", "created_at"]

    def _apply_sorting(self, query, joins, sort_column, sort_desc):
        g.notifications_failed_first = sort_column is None
        if sort_column is None:
            # Failures first, then the newest.
            failed_first = case((Notification.status == "failed", 0), else_=1)
            return query.order_by(failed_first, Notification.created_at.desc(), Notification.id.desc()), joins
        return super()._apply_sorting(query, joins, sort_column, sort_desc)

    def _apply_pagination(self, query, page, page_size):
        page_size = self.page_size if page_size is None else page_size
        if not (page_size and g.get("notifications_failed_first")):
            return super()._apply_pagination(query, page, page_size)
        # Failures first is held by no index: one branch per status off
        # ix_notifications_status_created_id, newest first in each.
        return ranked_page(query, Notification.status, FAILED_FIRST,
                           [Notification.created_at.desc(), Notification.id.desc()], page, page_size)


def _changes(view, context, model, name):
    rows = [
        f"<tr><td>{escape(field)}</td><td>{escape(json.dumps(change.get('before'), default=str))}</td>"
        f"<td>{escape(json.dumps(change.get('after'), default=str))}</td></tr>"
        for field, change in (model.changes or {}).items()
    ]
    if not rows:
        return ""
    return Markup('<table class="table table-sm mb-0"><tr><th>field</th><th>before</th><th>after</th></tr>'
                  + "".join(rows) + "</table>")


class AuditLogView(ReadOnlyModelView):
    area = Area.ADMINISTRATION
    column_list = ["created_at", "actor", "action", "record", "changes"]
    column_details_list = ["created_at", "actor", "action", "record", "entity", "entity_id", "changes"]
    column_labels = {"record": "Record"}
    column_filters = ["actor", "action", "entity", "entity_id", "label", "created_at"]
    column_searchable_list = ["actor", "entity", "label"]  # see _apply_search
    column_default_sort = ("created_at", True)
    column_sortable_list = ["created_at", "actor", "action", "entity"]
    column_formatters = {"changes": _changes, "record": lambda v, c, m, n: _record_link(m)}
    column_formatters_detail = column_formatters

    search_placeholder_text = "Record (order number, SKU...), or an actor's email or entity exactly"

    def search_placeholder(self):
        return self.search_placeholder_text

    def _apply_search(self, query, count_query, joins, count_joins, search):
        # A record's label holds the text (its trigram index on PostgreSQL), or the actor or
        # entity is the text: each branch has its index, where ILIKE on every column scanned
        # the whole log (seconds at half a million entries).
        term = search.strip()
        condition = or_(AuditLog.label.ilike(_like(term), escape="\\"), AuditLog.actor == term.lower(),
                        AuditLog.entity == term)
        query = query.filter(condition)
        if count_query is not None:
            count_query = count_query.filter(condition)
        return query, count_query, joins, count_joins

    def get_list(self, *args, **kwargs):
        count, rows = super().get_list(*args, **kwargs)
        if kwargs.get("execute", True):
            g.audit_labels = audit_labels(rows)
        return count, rows

    def get_one(self, id):
        entry = super().get_one(id)
        if entry is not None:
            g.audit_labels = audit_labels([entry])
        return entry


def _record_link(entry) -> Markup:
    """The record as people know it (order number, SKU, email), linked to its page."""
    label = entry.label or g.get("audit_labels", {}).get((entry.entity, entry.entity_id)) or ""
    kind = ENTITY_NAMES.get(entry.entity, entry.entity)
    shown = escape(f"{kind} {label}" if label else f"{kind} #{entry.entity_id}")
    url = record_url(entry.entity, entry.entity_id)
    return Markup(f'<a href="{escape(url)}" class="audit-record">{shown}</a>') if url else Markup(shown)
