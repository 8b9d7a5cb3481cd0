"""Background jobs: queue depths, failed jobs with a retry button, the outbox backlog."""

from __future__ import annotations

import redis
from flask import current_app, flash, redirect, url_for
from flask_admin import expose
from flask_wtf import FlaskForm
from sqlalchemy import select

from admin.base import StaffView, unit_of_work
from admin.security import Area, current_actor
from ecom.audit.services import record_change
from ecom.extensions import db
from ecom.notifications import queue_stats
from ecom.notifications.models import OutboxEvent


class JobsView(StaffView):
    area = Area.ADMINISTRATION

    @expose("/")
    def index(self):
        app = current_app._get_current_object()
        stats = queue_stats.queue_stats(app)
        failed, error = [], None
        if stats.get("redis") == "ok":
            try:
                failed = queue_stats.failed_jobs(app, 50)
            except redis.RedisError as exc:  # Redis going away must not take the page down
                error = f"Redis unavailable: {type(exc).__name__}"
        elif stats.get("redis") != "disabled":
            error = f"Redis unavailable ({stats.get('redis')}): events wait in the outbox."
        waiting = db.session.scalars(
            select(OutboxEvent).where(OutboxEvent.dispatched_at.is_(None)).order_by(OutboxEvent.created_at)
            .limit(20)).all()
        return self.render("admin/jobs.html", stats=stats, failed=failed, error=error, waiting=waiting,
                           retry_form=FlaskForm())

    @expose("/retry/<job_id>", methods=["POST"])
    def retry_view(self, job_id: str):
        form = FlaskForm()
        if form.validate_on_submit():
            try:
                with unit_of_work() as work:
                    result = queue_stats.retry_failed_job(current_app._get_current_object(), job_id)
                    record_change(current_actor(), "retry", "jobs", job_id, None, result)
            except redis.RedisError as exc:
                flash(f"Redis unavailable: {type(exc).__name__}", "error")
            else:
                if work.ok:
                    flash(f"Job {job_id} is queued again on '{result['queue']}'.", "success")
        return redirect(url_for(".index"))
