"""A worker killed with kill -9 mid-job: no notification lost (re-run or parked), none duplicated.

EVENTS order-paid events are written to the outbox and relayed to RQ (Redis
database 11). A real ``flask --app wsgi worker`` (jobs in its own process,
its scheduler in a child) starts delivering them by SMTP to a sink this
scenario runs on loopback, which answers MAIL FROM after 50 ms so that each
job spends most of its time talking to it; once some are sent and a job is in
flight, the worker's whole process group is killed with SIGKILL. Then a
process running the same worker dequeues one job and is killed with SIGKILL
before starting it (the window between rq's dequeue and the started
registry). The abandoned-job cleanup that RQ's maintenance runs once the dead
worker's heartbeat has expired is then invoked directly, with the clock
moved forward, instead of waiting for the expiry, and what the killed
workers left in the queues' intermediate lists is marked as first seen by
maintenance an hour ago (instead of waiting for two maintenance passes). A
second worker runs in burst mode; its maintenance retries those jobs. Every
event must end with its email sent exactly once, or parked in the failed-job
registry - never silently lost, never received twice by
the SMTP sink.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from collections import Counter

import redis
from rq import Queue
from rq.job import Job
from rq.registry import FailedJobRegistry, ScheduledJobRegistry, StartedJobRegistry

from bench import harness
from ecom.notifications.queues import NOTIFICATIONS, QUEUE_NAMES
from ecom.notifications.relay import BATCH_JOB_PREFIX
from reliability import common

EVENTS = 200
KILL_AFTER_SENT = 40
SMTP_DELAY = 0.05  # seconds before the sink accepts MAIL FROM

# A worker that dequeues one job as `flask worker` does, prints its id and dies of SIGKILL.
DEQUEUE_AND_DIE = """
import os, signal
from wsgi import app
from workers.worker import make_worker, worker_connection
with app.app_context():
    job, _ = make_worker(app, connection=worker_connection(app)).dequeue_job_and_maintain_ttl(None)
    print(job.id, flush=True)
    os.kill(os.getpid(), signal.SIGKILL)
"""


class SlowSink:
    """An aiosmtpd handler: slow to accept a sender, records every message it accepts."""

    def __init__(self):
        self.received: Counter = Counter()

    async def handle_MAIL(self, server, session, envelope, address, mail_options):  # noqa: N802
        await asyncio.sleep(SMTP_DELAY)
        envelope.mail_from = address
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):  # noqa: N802
        subject = ""
        for line in envelope.content.decode("utf-8", "replace").splitlines():
            if line.lower().startswith("subject:"):
                subject = line.split(":", 1)[1].strip()
                break
        for recipient in envelope.rcpt_tos:
            self.received[(recipient, subject)] += 1
        return "250 Message accepted"


def _emit_events(url: str) -> None:
    from ecom.config import _normalise_db_url
    from ecom.extensions import db
    from ecom.notifications.services import emit
    from shop.app import create_app

    app = create_app({"SQLALCHEMY_DATABASE_URI": _normalise_db_url(url), "REDIS_URL": common.QUEUE_REDIS_URL,
                      "LOG_LEVEL": "WARNING", "RATELIMIT_STORAGE_URI": "memory://", **harness.BENCH_SECRETS})
    with app.app_context():
        for index in range(EVENTS):
            emit("ORDER_PAID", {
                "order_id": index + 1, "order_number": f"ORD-KILL-{index:05d}", "user_id": None,
                "user_email": f"survivor{index}@reliability.example", "customer_name": f"Survivor {index}",
                "status": "paid", "total": "42.50", "currency": "usd", "carrier": None,
                "tracking_number": None,
                "items": [{"sku": "SKU-1-1", "product_name": "Mug", "variant_name": "Small", "quantity": 1,
                           "price": "42.50"}]})
        db.session.commit()
        db.session.remove()


def _worker_env(smtp_port: int) -> dict[str, str]:
    return harness.app_env(common.database_url(), redis_url=common.QUEUE_REDIS_URL,
                           RELAY_INTERVAL_SECONDS="0", EXPIRY_INTERVAL_SECONDS="0",
                           NOTIFY_RETRY_INTERVALS="0", MAIL_BACKEND="smtp",
                           SMTP_HOST="127.0.0.1", SMTP_PORT=str(smtp_port), SMTP_USE_TLS="0")


def _dequeue_and_die(smtp_port: int) -> tuple[int, str]:
    """Run DEQUEUE_AND_DIE; its exit code and the id of the job it dequeued (its last line of output)."""
    done = subprocess.run([sys.executable, "-c", DEQUEUE_AND_DIE], cwd=harness.ROOT,
                          env=_worker_env(smtp_port), capture_output=True, text=True, timeout=120)
    lines = done.stdout.strip().splitlines()
    return done.returncode, lines[-1] if lines else ""


def _events_of(job_ids, connection) -> set[str]:
    """The outbox events the jobs carry: a batch job's ids, or the event whose id a job has."""
    events: set[str] = set()
    for job_id in job_ids:
        if job_id.startswith(BATCH_JOB_PREFIX):
            job = Job.fetch(job_id, connection=connection)
            events.update(job.args[0])
        else:
            events.add(job_id)
    return events


def _intermediate(connection) -> dict[str, list[str]]:
    """The job ids in each queue's intermediate list (jobs dequeued by a worker, not started)."""
    return {name: Queue(name, connection=connection).intermediate_queue.get_job_ids() for name in QUEUE_NAMES}


def _start_worker(log_name: str, smtp_port: int, *extra: str) -> tuple[subprocess.Popen, object]:
    env = _worker_env(smtp_port)
    log_path = harness.LOG_DIR / f"{log_name}.log"
    log = open(log_path, "wb")  # noqa: SIM115 - handed to the child process
    # A session of its own: the worker and its children (scheduler) form one process group to kill.
    process = subprocess.Popen([sys.executable, "-m", "flask", "--app", "wsgi", "worker", *extra],
                               cwd=harness.ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
                               start_new_session=True)
    log.close()
    return process, log_path


def run(report: common.Report) -> None:
    common.require_routes("/api/v1/checkout/confirm")
    url = common.fresh_database()
    harness.flush_redis(common.QUEUE_REDIS_URL)
    connection = redis.Redis.from_url(common.QUEUE_REDIS_URL)
    _emit_events(url)
    # Retries without delay (as the workers' own kill test does), so a re-run is not a scheduled job
    # that a burst worker would leave for later.
    code, output = common.flask_command(["relay-outbox", "--batch", "5000"], redis_url=common.QUEUE_REDIS_URL,
                                        timeout=120, log_name="reliability-worker-kill-relay",
                                        NOTIFY_RETRY_INTERVALS="0")
    if code != 0:
        raise common.ScenarioFailed(f"relay-outbox exited {code}: {output[-400:]}")
    report.did(f"wrote {EVENTS} ORDER_PAID events to the outbox and relayed them to RQ")

    engine = common.engine()
    from aiosmtpd.controller import Controller

    sink = SlowSink()
    smtp_port = _free_port()
    controller = Controller(sink, hostname="127.0.0.1", port=smtp_port)
    controller.start()
    try:
        _kill_and_rerun(report, engine, connection, smtp_port, sink)
    finally:
        controller.stop()


def _job_state(job_id: str, connection) -> str:
    from rq.exceptions import NoSuchJobError

    try:
        return str(Job.fetch(job_id, connection=connection).get_status())
    except NoSuchJobError:
        return "no such job"


def _free_port() -> int:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _kill_and_rerun(report: common.Report, engine, connection, smtp_port: int, sink: SlowSink) -> None:
    def sent() -> int:
        with engine.connect() as conn:
            return common.scalar(conn, "SELECT count(*) FROM notifications WHERE status = 'sent'")

    started_registry = StartedJobRegistry(NOTIFICATIONS, connection=connection)
    worker, _ = _start_worker("reliability-worker-kill-1", smtp_port)
    in_flight: list[str] = []
    deadline = time.monotonic() + 120
    try:
        while time.monotonic() < deadline and sent() < KILL_AFTER_SENT:
            time.sleep(0.02)
        # Then kill as soon as a job starts that was not running before: it has its whole
        # SMTP conversation (the sink's delay) still ahead of it.
        seen = set(started_registry.get_job_ids(cleanup=False))
        while time.monotonic() < deadline and not in_flight:
            in_flight = [j for j in started_registry.get_job_ids(cleanup=False) if j not in seen]
            if not in_flight:
                time.sleep(0.001)
    finally:
        os.killpg(worker.pid, signal.SIGKILL)
        worker.wait(30)
    sent_at_kill = sent()
    states = {job_id: _job_state(job_id, connection) for job_id in in_flight}
    abandoned = [job_id for job_id in started_registry.get_job_ids(cleanup=False) if job_id in in_flight]
    report.did(f"kill -9 of the worker's process group with {sent_at_kill} of {EVENTS} sent; "
               f"jobs in flight: {in_flight}; their state after the kill: {states}; "
               f"left in the started registry by the dead worker: {abandoned}")

    died_code, dequeued = _dequeue_and_die(smtp_port)
    left = _intermediate(connection)
    report.did(f"a worker process dequeued job {dequeued} and was killed -9 (exit {died_code}) before "
               f"starting it; its state: {_job_state(dequeued, connection)}; intermediate lists: {left}")

    cleaned_at = time.time() + 3600
    started_registry.cleanup(timestamp=cleaned_at)
    for name, job_ids in left.items():
        intermediate = Queue(name, connection=connection).intermediate_queue
        for job_id in job_ids:
            connection.set(intermediate.get_first_seen_key(job_id), cleaned_at - 2 * 3600)
    report.did("ran RQ's abandoned-job cleanup (clock moved forward past the dead worker's heartbeat) and "
               "marked the jobs in the intermediate lists as first seen by maintenance an hour ago")
    rerun, _ = _start_worker("reliability-worker-kill-2", smtp_port, "--burst")
    try:
        code = rerun.wait(180)
    except subprocess.TimeoutExpired:
        os.killpg(rerun.pid, signal.SIGKILL)
        rerun.wait(30)
        code = -1
    report.did(f"a second worker ran in burst mode and exited {code}; "
               f"state of the job that was in flight: { {j: _job_state(j, connection) for j in in_flight} }; "
               f"of the job dequeued by the killed worker: {_job_state(dequeued, connection)}")

    with engine.connect() as conn:
        per_event = conn.execute(common.text("""
            SELECT x.id, count(n.id) FILTER (WHERE n.status = 'sent') AS sent_rows, count(n.id) AS rows
            FROM outbox_events x LEFT JOIN notifications n ON n.event_id = x.id
            WHERE x.type = 'ORDER_PAID' GROUP BY x.id""")).all()
    engine.dispose()
    parked = _events_of(FailedJobRegistry(NOTIFICATIONS, connection=connection).get_job_ids(), connection)
    waiting = _events_of(ScheduledJobRegistry(NOTIFICATIONS, connection=connection).get_job_ids(), connection)
    dequeued_events = _events_of([dequeued], connection)
    unsent = [row.id for row in per_event if row.sent_rows == 0]
    lost = [event_id for event_id in unsent if event_id not in parked and event_id not in waiting]
    emails = sink.received
    twice = {key: n for key, n in emails.items() if n > 1}
    report.found(f"{len(per_event)} events; {len(per_event) - len(unsent)} with their email sent; "
                 f"{len(parked)} parked in the failed-job registry; {len(waiting)} scheduled for a retry; "
                 f"{len(lost)} lost; "
                 f"{sum(emails.values())} emails received by the SMTP sink, {len(twice)} more than once",
                 sent_at_kill=sent_at_kill, in_flight=len(abandoned), parked=len(parked), lost=len(lost))
    report.check(len(per_event) == EVENTS, f"all {EVENTS} events are in the outbox")
    report.check(bool(abandoned), "a job was in flight when the worker died (left in its started registry)")
    report.check(died_code == -signal.SIGKILL and any(dequeued in ids for ids in left.values()),
                 "the worker killed after its dequeue left the job in an intermediate list")
    report.check(bool(dequeued_events) and dequeued_events <= {row.id for row in per_event} - set(unsent),
                 f"the events of the job dequeued by the killed worker were delivered ({dequeued}: "
                 f"{len(dequeued_events)} events)")
    report.check(not any(_intermediate(connection).values()), "nothing is left in an intermediate list")
    report.check(code == 0, "the second worker finished the queue")
    report.check(not lost, f"no notification lost ({lost[:3]})")
    report.check(all(row.rows <= 1 for row in per_event), "at most one notification row per event")
    report.check(not twice, f"no email received twice ({list(twice)[:3]})")
    report.check(len(emails) == len(per_event) - len(unsent),
                 "the SMTP sink received exactly the emails recorded as sent")
