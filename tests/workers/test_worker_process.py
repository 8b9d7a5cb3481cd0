"""A real worker process (``flask --app wsgi worker``) killed with SIGKILL mid-delivery."""

from __future__ import annotations

import os
import signal
import subprocess
import time

import pytest
from rq import Queue
from rq.job import Job, JobStatus
from rq.registry import StartedJobRegistry
from sqlalchemy import select

from ecom.config import PROJECT_ROOT
from ecom.extensions import db
from ecom.notifications.models import Notification
from ecom.notifications.queues import NOTIFICATIONS, redis_connection
from ecom.notifications.services import emit
from tests.workers.conftest import delivery_job_id, order_data
from workers.jobs import relay_once

pytestmark = pytest.mark.slow

FLASK = str(PROJECT_ROOT / ".venv" / "bin" / "flask")


def worker_env(database_url: str, redis_url: str, smtp_port: int) -> dict:
    env = dict(os.environ)
    env.update(
        DATABASE_URL=database_url, REDIS_URL=redis_url, MAIL_BACKEND="smtp", SMTP_HOST="127.0.0.1",
        SMTP_PORT=str(smtp_port), SMTP_USE_TLS="0", NOTIFY_RETRY_INTERVALS="0",
        RELAY_INTERVAL_SECONDS="0", EXPIRY_INTERVAL_SECONDS="0", LOG_LEVEL="INFO",
    )
    return env


def start_worker(env: dict, log_path, *extra: str) -> subprocess.Popen:
    log = open(log_path, "ab")  # noqa: SIM115 - handed to the child process
    # A session of its own, so the whole group (worker and its scheduler) can be killed at once.
    return subprocess.Popen([FLASK, "--app", "wsgi", "worker", *extra], cwd=PROJECT_ROOT, env=env,
                            stdout=log, stderr=subprocess.STDOUT, start_new_session=True)


def wait_for(condition, what: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"gave up waiting for {what}")
        time.sleep(0.1)


def test_worker_killed_mid_job_reruns_the_job_and_notifies_once(
    postgres, queue_app, database_url, redis_url, smtp_server, tmp_path
):
    # given an event relayed to RQ, and an SMTP server that hangs in DATA
    event = emit("ORDER_PAID", order_data("survivor@example.com"))
    event_id = event.id
    db.session.commit()
    relay_once()
    smtp_server.blocking = True
    env = worker_env(database_url, redis_url, smtp_server.port)
    connection = redis_connection(queue_app)
    started = StartedJobRegistry(NOTIFICATIONS, connection=connection)

    # when a worker process picks the job up and is SIGKILLed while the email is being sent
    worker = start_worker(env, tmp_path / "worker.log")
    try:
        assert smtp_server.data_started.wait(60), (tmp_path / "worker.log").read_text()
        job_id = delivery_job_id(event_id)
        wait_for(lambda: job_id in started.get_job_ids(cleanup=False), "the job to be started")
    finally:
        os.killpg(worker.pid, signal.SIGKILL)
        worker.wait(30)

    # then nothing was sent (the dead worker's claim rolled back with its connection), and the
    # job is still marked started - abandoned
    db.session.expire_all()
    assert db.session.scalars(select(Notification).where(Notification.event_id == event_id)).all() == []
    assert smtp_server.messages == []
    assert Job.fetch(delivery_job_id(event_id), connection=connection).get_status() == JobStatus.STARTED

    # when the abandoned-job cleanup runs (as a worker's maintenance does once the job's
    # heartbeat has expired - here with the clock moved forward instead of waiting)
    smtp_server.blocking = False
    smtp_server.release.set()
    started.cleanup(timestamp=time.time() + 3600)

    # then the job was not lost: it is back on the queue (it had retries left)
    assert delivery_job_id(event_id) in Queue(NOTIFICATIONS, connection=connection).job_ids

    # when a worker runs again
    rerun = start_worker(env, tmp_path / "worker.log", "--burst")
    assert rerun.wait(120) == 0, (tmp_path / "worker.log").read_text()

    # then the job finished and the customer got exactly one email
    assert Job.fetch(delivery_job_id(event_id), connection=connection).get_status() == JobStatus.FINISHED
    [envelope] = smtp_server.messages
    assert envelope.rcpt_tos == ["survivor@example.com"]
    db.session.expire_all()
    [row] = db.session.scalars(select(Notification).where(Notification.event_id == event_id)).all()
    assert row.status == "sent" and row.error is None
    assert Queue(NOTIFICATIONS, connection=connection).failed_job_registry.count == 0
