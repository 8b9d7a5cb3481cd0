"""Thumbnails of uploaded product images: a worker job per image.

``start_thumbnails`` is called by the back office after the upload's commit: with Redis the
jobs go to the ``default`` queue (the upload answers at once), without it they run right
there. The job takes an image id, reloads, and makes only what is missing, so a re-run does
nothing new; ``flask make-thumbnails`` catches images whose job was lost.
"""

from __future__ import annotations

import logging

from flask import Flask

from ecom import runtime
from ecom.catalog.images import make_thumbnails
from ecom.notifications.queues import DEFAULT, get_queue
from ecom.unit_of_work import unit_of_work

log = logging.getLogger(__name__)


def run_thumbnails(image_id: int) -> dict | None:
    """Make one image's thumbnails, committed. The keys made, or None (image gone)."""
    with unit_of_work():
        return make_thumbnails(image_id)


def start_thumbnails(image_ids: list[int], app: Flask) -> str:
    """Queue (with Redis) or run (without) the thumbnail job of each image. "queued" or "done"."""
    if runtime.settings(app)["REDIS_URL"]:
        from workers.jobs import make_thumbnails_job

        queue = get_queue(app, DEFAULT)
        for image_id in image_ids:
            queue.enqueue(make_thumbnails_job, image_id, job_id=f"thumbnails-{image_id}")
        return "queued"
    for image_id in image_ids:
        try:
            run_thumbnails(image_id)
        except Exception:  # noqa: BLE001 - the upload stands; make-thumbnails makes them later
            log.exception("thumbnails of image %s failed", image_id)
    return "done"
