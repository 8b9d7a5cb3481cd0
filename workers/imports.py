"""Running a product CSV import: the edge that owns its commits.

``ecom.catalog.csv_io.import_steps`` is the import itself (it only flushes); here it is
driven to the end, one unit of work per step, so its progress shows while it runs. The
back office starts imports with ``start_import`` (queued with Redis, else inline); the
``import-products`` command and the RQ job call ``run_import``.
"""

from __future__ import annotations

import logging

from flask import Flask

from ecom import runtime
from ecom.actor import Actor
from ecom.catalog.csv_io import fail_import, import_steps
from ecom.catalog.models import ImportJob
from ecom.extensions import db
from ecom.notifications.queues import DEFAULT, get_queue
from ecom.unit_of_work import unit_of_work

# A big file takes a while; RQ's default (180 s) would kill it half-way.
IMPORT_TIMEOUT_SECONDS = 3600

log = logging.getLogger(__name__)


def run_import(job: ImportJob, *, actor: Actor | None = None) -> ImportJob:
    """Import ``job``'s CSV to the end, committing at each step ``import_steps`` yields
    (running, every few rows, finished). The caller has committed the job row.

    The job always ends ``finished`` or ``failed``: should the run itself break (a bug, the
    database gone for a moment), the rows committed so far stay, the job is marked failed with
    a message, and the error is logged - it never stays ``running``."""
    job_id = job.id
    steps = import_steps(job, actor=actor)
    try:
        while True:
            with unit_of_work():
                if next(steps, None) is None:
                    return job
    except Exception:  # noqa: BLE001 - whatever broke, the job must not stay "running"
        log.exception("import job %s stopped part-way", job_id)
        steps.close()
        db.session.rollback()
        with unit_of_work():
            job = db.session.get(ImportJob, job_id)
            fail_import(job, "The import stopped unexpectedly; rows before this point were imported. "
                             "Check the file and import it again (rows already imported are updated).")
        return job


def start_import(job: ImportJob, app: Flask) -> str:
    """Run the job on the RQ ``default`` queue when Redis is configured, else right now.

    The caller has committed the job row. Returns "queued" or the finished status.
    """
    if runtime.settings(app)["REDIS_URL"]:
        from workers.jobs import run_import_job

        get_queue(app, DEFAULT).enqueue(run_import_job, job.id, job_timeout=IMPORT_TIMEOUT_SECONDS)
        return "queued"
    return run_import(job).status
