"""A worker killed with kill -9 mid-job: no notification lost (re-run or parked), none duplicated.

EVENTS order-paid events are written to the outbox and relayed to RQ (Redis
database 11). A real ``flask --app wsgi worker`` (forking work horses) starts
delivering them (console email backend); once some are sent and a job is in
flight, the worker's whole process group (worker and work horse) is killed
with SIGKILL. The abandoned-job cleanup that RQ's maintenance runs once the
dead worker's heartbeat has expired is then invoked directly, with the clock
moved forward, instead of waiting for the expiry. A second worker runs in
burst mode. Every event must end with its email sent exactly once, or parked
in the failed-job registry - never silently lost, never sent twice.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections import Counter

from bench import harness
from reliability import common

EVENTS = 200
KILL_AFTER_SENT = 40


def _emit_events(url: str) -> None:
    from ecom.app import create_app
    from ecom.config import _normalise_db_url
    from ecom.extensions import db
    from ecom.notifications.services import emit

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


def _start_worker(log_name: str, *extra: str) -> tuple[subprocess.Popen, object]:
    env = harness.app_env(common.database_url(), redis_url=common.QUEUE_REDIS_URL,
                          RELAY_INTERVAL_SECONDS="0", EXPIRY_INTERVAL_SECONDS="0", NOTIFY_RETRY_INTERVALS="0")
    log_path = harness.LOG_DIR / f"{log_name}.log"
    log = open(log_path, "wb")  # noqa: SIM115 - handed to the child process
    # A session of its own: the worker and its work horse form one process group to kill.
    process = subprocess.Popen([sys.executable, "-m", "flask", "--app", "wsgi", "worker", *extra],
                               cwd=harness.ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
                               start_new_session=True)
    log.close()
    return process, log_path


def run(report: common.Report) -> None:
    common.require_routes("/api/v1/checkout/confirm")
    try:
        from rq.job import Job, JobStatus
        from rq.registry import FailedJobRegistry, StartedJobRegistry

        from ecom.notifications.queues import NOTIFICATIONS
    except ImportError as exc:
        raise common.ScenarioSkipped(f"the workers are not merged yet: {exc}") from exc
    import redis

    url = common.fresh_database()
    harness.flush_redis(common.QUEUE_REDIS_URL)
    connection = redis.Redis.from_url(common.QUEUE_REDIS_URL)
    _emit_events(url)
    code, output = common.flask_command(["relay-outbox", "--batch", "5000"], redis_url=common.QUEUE_REDIS_URL,
                                        timeout=120, log_name="reliability-worker-kill-relay")
    if code != 0:
        raise common.ScenarioFailed(f"relay-outbox exited {code}: {output[-400:]}")
    report.did(f"wrote {EVENTS} ORDER_PAID events to the outbox and relayed them to RQ")

    engine = common.engine()

    def sent() -> int:
        with engine.connect() as conn:
            return common.scalar(conn, "SELECT count(*) FROM notifications WHERE status = 'sent'")

    started_registry = StartedJobRegistry(NOTIFICATIONS, connection=connection)
    worker, first_log = _start_worker("reliability-worker-kill-1")
    in_flight: list[str] = []
    deadline = time.monotonic() + 120
    try:
        while time.monotonic() < deadline:
            running = started_registry.get_job_ids(cleanup=False)
            if running and sent() >= KILL_AFTER_SENT:
                in_flight = running
                break
            time.sleep(0.005)
    finally:
        os.killpg(worker.pid, signal.SIGKILL)
        worker.wait(30)
    sent_at_kill = sent()
    still_started = [job_id for job_id in in_flight
                     if Job.fetch(job_id, connection=connection).get_status() == JobStatus.STARTED]
    report.did(f"kill -9 of the worker's process group with {sent_at_kill} of {EVENTS} sent; "
               f"jobs in flight: {in_flight}; still marked started after the kill: {still_started}")

    cleaned_at = time.time() + 3600
    started_registry.cleanup(timestamp=cleaned_at)
    report.did("ran RQ's abandoned-job cleanup (clock moved forward past the dead worker's heartbeat)")
    rerun, second_log = _start_worker("reliability-worker-kill-2", "--burst")
    try:
        code = rerun.wait(180)
    except subprocess.TimeoutExpired:
        os.killpg(rerun.pid, signal.SIGKILL)
        rerun.wait(30)
        code = -1
    report.did(f"a second worker ran in burst mode and exited {code}")

    with engine.connect() as conn:
        per_event = conn.execute(common.text("""
            SELECT x.id, count(n.id) FILTER (WHERE n.status = 'sent') AS sent_rows, count(n.id) AS rows
            FROM outbox_events x LEFT JOIN notifications n ON n.event_id = x.id
            WHERE x.type = 'ORDER_PAID' GROUP BY x.id""")).all()
    engine.dispose()
    parked = set(FailedJobRegistry(NOTIFICATIONS, connection=connection).get_job_ids())
    unsent = [row.id for row in per_event if row.sent_rows == 0]
    lost = [event_id for event_id in unsent if event_id not in parked]
    logs = first_log.read_text(errors="replace") + second_log.read_text(errors="replace")
    emails = common.emails_logged(logs, "Payment confirmed")
    twice = {key: n for key, n in emails.items() if n > 1}
    report.found(f"{len(per_event)} events; {len(per_event) - len(unsent)} with their email sent; "
                 f"{len(parked)} parked in the failed-job registry; {len(lost)} lost; "
                 f"{sum(emails.values())} emails logged, {len(twice)} more than once",
                 sent_at_kill=sent_at_kill, in_flight=len(still_started), parked=len(parked), lost=len(lost))
    report.check(len(per_event) == EVENTS, f"all {EVENTS} events are in the outbox")
    report.check(bool(still_started), "a job was really in flight when the worker died")
    report.check(code == 0, "the second worker finished the queue")
    report.check(not lost, f"no notification lost ({lost[:3]})")
    report.check(all(row.rows <= 1 for row in per_event), "at most one notification row per event")
    report.check(not twice, f"no email sent twice ({list(twice)[:3]})")
    report.check(Counter(emails.values()).get(1, 0) + len(parked) >= EVENTS - len(lost),
                 "every sent notification was logged by the console backend")
