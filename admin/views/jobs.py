"""Background jobs: queue depths, failed jobs with a retry button, the outbox backlog."""

from __future__ import annotations

from flask import current_app, flash, redirect, url_for
from flask_admin import expose
from flask_wtf import FlaskForm
from sqlalchemy import func, select

from admin.base import StaffView
from admin.security import Area
from ecom.extensions import db
from ecom.notifications.models import OutboxEvent


def _queue_stats_module():
    try:
        from ecom.notifications import queue_stats
    except ImportError:  # until the workers' queue_stats lands
        return None
    return queue_stats


def outbox_backlog() -> dict:
    pending = select(OutboxEvent).where(OutboxEvent.dispatched_at.is_(None)).subquery()
    count, oldest = db.session.execute(select(func.count(), func.min(pending.c.created_at))).one()
    failing = db.session.scalar(
        select(func.count(OutboxEvent.id)).where(OutboxEvent.dispatched_at.is_(None),
                                                 OutboxEvent.last_error.is_not(None)))
    recent = list(db.session.scalars(
        select(OutboxEvent).where(OutboxEvent.dispatched_at.is_(None))
        .order_by(OutboxEvent.created_at).limit(20)))
    return {"pending": count or 0, "oldest": oldest, "failing": failing or 0, "recent": recent}


class JobsView(StaffView):
    area = Area.ADMINISTRATION

    @expose("/")
    def index(self):
        stats_module = _queue_stats_module()
        queues, failed, error = [], [], None
        if not current_app.config.get("REDIS_URL"):
            error = "No REDIS_URL: jobs run in-process, there are no queues."
        elif stats_module is None:
            error = "Queue statistics are not available in this build."
        else:
            try:
                queues = stats_module.queue_stats(current_app)
                failed = stats_module.failed_jobs(current_app, 50)
            except Exception as exc:  # Redis down must not take the page down
                error = f"Redis unavailable: {type(exc).__name__}"
        return self.render("admin/jobs.html", queues=queues, failed=failed, error=error,
                           outbox=outbox_backlog(), retry_form=FlaskForm())

    @expose("/retry/<job_id>", methods=["POST"])
    def retry_view(self, job_id: str):
        form = FlaskForm()
        stats_module = _queue_stats_module()
        if form.validate_on_submit() and stats_module is not None:
            try:
                stats_module.retry_failed_job(current_app, job_id)
                flash(f"Job {job_id} re-queued.", "success")
            except Exception as exc:  # an unknown or vanished job is a message, not a 500
                flash(f"Could not retry {job_id}: {exc}", "error")
        return redirect(url_for(".index"))
