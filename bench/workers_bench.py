"""Notifications per second through the outbox, the relay, RQ and one production worker.

    DATABASE_URL=postgresql://postgres@127.0.0.1/ecom_bench REDIS_URL=redis://127.0.0.1:6379/9 \
        .venv/bin/python bench/workers_bench.py --events 2000

Point both at a database and a Redis db you can spare: the schema is migrated,
and the bench deletes its own rows and empties the queues when it is done.
Stages: emit (N events committed in batches), relay (outbox -> RQ), deliver
(one worker, console backend, log output suppressed). The worker is the one
``flask --app wsgi worker`` runs (``workers.worker.make_worker``: same class,
both queues, its scheduler process started), stopped after it has run as many
jobs as were enqueued. The ceiling is the same worker running N no-op jobs,
measured in the same run, so the figure is also given as a ratio. Both also
get CPU milliseconds per job (worker, its PostgreSQL backend, redis-server),
which move far less than jobs/s when the machine is shared. ``--fork``
measures ``flask worker --fork`` (a work horse forked per job) instead.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from rq import Queue  # noqa: E402
from sqlalchemy import delete, text  # noqa: E402

from ecom.extensions import db  # noqa: E402
from ecom.notifications.models import Notification, OutboxEvent  # noqa: E402
from ecom.notifications.queues import DEFAULT, NOTIFICATIONS, redis_connection  # noqa: E402
from ecom.notifications.services import emit  # noqa: E402
from shop.app import create_app  # noqa: E402
from workers.jobs import relay_once  # noqa: E402
from workers.worker import make_worker, run_worker, worker_connection  # noqa: E402


def timed(func) -> tuple[float, object]:
    started = time.perf_counter()
    value = func()
    return time.perf_counter() - started, value


def empty_queues(connection) -> None:
    for name in (NOTIFICATIONS, DEFAULT):
        queue = Queue(name, connection=connection)
        queue.empty()
        for registry in (queue.finished_job_registry, queue.failed_job_registry,
                         queue.scheduled_job_registry, queue.started_job_registry):
            for job_id in registry.get_job_ids():
                registry.remove(job_id, delete_job=True)


def work_off(app, jobs: int, fork: bool, per: int | None = None) -> tuple[float, dict]:
    """One production worker runs ``jobs`` jobs (it stops after them, or when idle 5 s).

    Returns the seconds it took and the CPU milliseconds per job (or per one of
    ``per`` things the jobs did: notifications, when a job delivers a batch) it cost: the
    worker (this process), its PostgreSQL backend and redis-server (all of
    redis-server: other users of the machine's Redis count too). CPU per job
    hardly depends on what else the machine runs; jobs per second does. With
    ``fork``, the work horses' CPU and their short-lived backends are not counted.
    """
    worker = make_worker(app, connection=worker_connection(app), fork=fork)
    connection = redis_connection(app)
    before = {"worker": _self_cpu(), "postgres": _backends_cpu(), "redis": _redis_cpu(connection)}
    seconds, _ = timed(lambda: run_worker(worker, app, max_jobs=jobs, max_idle_time=5))
    after = {"worker": _self_cpu(), "postgres": _backends_cpu(), "redis": _redis_cpu(connection)}
    used = {"worker": after["worker"] - before["worker"], "redis": after["redis"] - before["redis"],
            "postgres": sum(cpu - before["postgres"].get(pid, 0.0) for pid, cpu in after["postgres"].items())}
    return seconds, {name: round(value * 1000 / (per or jobs), 3) for name, value in used.items()}


def _self_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _redis_cpu(connection) -> float:
    info = connection.info("cpu")
    return float(info["used_cpu_user"]) + float(info["used_cpu_sys"])


def _backends_cpu() -> dict[int, float]:
    """CPU seconds so far of each PostgreSQL backend connected to this database, by pid."""
    if db.engine.dialect.name != "postgresql":
        return {}
    with db.engine.connect() as conn:
        pids = conn.scalars(text("SELECT pid FROM pg_stat_activity WHERE datname = current_database()")).all()
    ticks = os.sysconf("SC_CLK_TCK")
    found = {}
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:  # PostgreSQL on another machine (or the backend is gone): no figure
            continue
        found[pid] = (int(fields[11]) + int(fields[12])) / ticks
    return found


def run(events: int, batch: int, fork: bool = False) -> dict:
    # LOG_LEVEL WARNING: the console backend's emails and rq's lines per job are not printed.
    app = create_app({"MAIL_BACKEND": "console", "RATELIMIT_STORAGE_URI": "memory://",
                      "LOG_LEVEL": "WARNING"})
    if not app.config.get("REDIS_URL"):
        raise SystemExit("Set REDIS_URL (and DATABASE_URL): the bench measures the RQ path.")
    with app.app_context():
        from flask_migrate import upgrade

        upgrade()
        connection = redis_connection(app)
        empty_queues(connection)
        queue = Queue(NOTIFICATIONS, connection=connection)

        def emit_all() -> list[str]:
            ids = []
            for start in range(0, events, batch):
                for n in range(start, min(start + batch, events)):
                    ids.append(emit("ORDER_PAID", {"order_id": n, "order_number": f"BENCH-{n:06d}",
                                                   "user_email": f"bench{n}@example.com",
                                                   "total": "10.00", "currency": "usd"}).id)
                db.session.commit()
            return ids

        emit_seconds, event_ids = timed(emit_all)
        Queue(DEFAULT, connection=connection).empty()  # the after-commit relay requests

        def relay_all() -> int:
            enqueued = 0
            while True:
                result = relay_once(batch)
                enqueued += result.enqueued
                if result.dispatched < batch:
                    return enqueued

        relay_seconds, enqueued = timed(relay_all)
        jobs = queue.count  # the relay puts a batch of events in each delivery job
        db.session.remove()  # no connection held while the worker runs
        deliver_seconds, deliver_cpu = work_off(app, jobs, fork, per=enqueued)
        delivered = db.session.query(Notification).filter(Notification.event_id.in_(event_ids),
                                                          Notification.status == "sent").count()
        db.session.remove()

        empty_queues(connection)
        for _ in range(events):
            # The ceiling's job: RQ's own cost per job and nothing else.
            queue.enqueue("builtins.abs", 1, result_ttl=60)
        ceiling_seconds, ceiling_cpu = work_off(app, events, fork)

        db.session.execute(delete(Notification).where(Notification.event_id.in_(event_ids)))
        db.session.execute(delete(OutboxEvent).where(OutboxEvent.id.in_(event_ids)))
        db.session.commit()
        empty_queues(connection)
        dialect = db.engine.dialect.name

    end_to_end = relay_seconds + deliver_seconds
    return {
        "bench": "workers",
        "events": events,
        "worker": "fork" if fork else "in-process",
        "delivered": delivered,
        "enqueued": enqueued,
        "delivery_jobs": jobs,
        "database": dialect,
        "emit_per_s": round(events / emit_seconds, 1),
        "relay_per_s": round(events / relay_seconds, 1),
        "deliver_per_s": round(delivered / deliver_seconds, 1),
        "notifications_per_s": round(delivered / end_to_end, 1),
        "ceiling_noop_jobs_per_s": round(events / ceiling_seconds, 1),
        "ratio_to_ceiling": round((delivered / deliver_seconds) / (events / ceiling_seconds), 3),
        "deliver_cpu_ms_per_job": deliver_cpu,
        "ceiling_cpu_ms_per_job": ceiling_cpu,
        "python": platform.python_version(),
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=int(os.environ.get("BENCH_EVENTS", "2000")))
    parser.add_argument("--batch", type=int, default=100)
    parser.add_argument("--fork", action="store_true",
                        help="measure `flask worker --fork` (a work horse forked per job) instead")
    args = parser.parse_args()
    figures = run(args.events, args.batch, args.fork)
    rows = [
        ("events emitted and committed", figures["emit_per_s"]),
        ("relay: outbox -> RQ", figures["relay_per_s"]),
        ("deliver: one worker, console", figures["deliver_per_s"]),
        ("end to end: relay + deliver (>= 500)", figures["notifications_per_s"]),
        ("ceiling: same worker, no-op jobs", figures["ceiling_noop_jobs_per_s"]),
    ]
    print(f"{'stage':<40} {'per second':>12}")
    print("-" * 53)
    for name, value in rows:
        print(f"{name:<40} {value:>12.1f}")
    print(f"{'deliver / ceiling':<40} {figures['ratio_to_ceiling']:>12.3f}")
    for stage, unit in (("deliver", "notification"), ("ceiling", "job")):
        cpu = figures[f"{stage}_cpu_ms_per_job"]
        shares = ", ".join(f"{name} {value:.2f}" for name, value in cpu.items())
        print(f"{stage + ': CPU ms per ' + unit:<40} {shares}")
    print(f"delivered {figures['delivered']} of {figures['events']} on {figures['database']}, "
          f"in {figures['delivery_jobs']} delivery jobs")
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
