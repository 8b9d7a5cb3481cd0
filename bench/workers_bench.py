"""Notifications per second through the outbox, the relay, RQ and one SimpleWorker.

    DATABASE_URL=postgresql://postgres@127.0.0.1/ecom_bench REDIS_URL=redis://127.0.0.1:6379/9 \
        .venv/bin/python bench/workers_bench.py --events 2000

Point both at a database and a Redis db you can spare: the schema is migrated,
and the bench deletes its own rows and empties the queues when it is done.
Stages: emit (N events committed in batches), relay (outbox -> RQ), deliver
(one rq SimpleWorker, console backend, log output suppressed). The ceiling is
the same SimpleWorker running N no-op jobs, measured in the same run, so the
figure is also given as a ratio.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from rq import Queue, SimpleWorker  # noqa: E402
from sqlalchemy import delete  # noqa: E402

from ecom.app import create_app  # noqa: E402
from ecom.extensions import db  # noqa: E402
from ecom.notifications.models import Notification, OutboxEvent  # noqa: E402
from ecom.notifications.queues import DEFAULT, NOTIFICATIONS, redis_connection  # noqa: E402
from ecom.notifications.relay import relay_outbox  # noqa: E402
from ecom.notifications.services import emit  # noqa: E402


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


def run(events: int, batch: int) -> dict:
    app = create_app({"MAIL_BACKEND": "console", "RATELIMIT_STORAGE_URI": "memory://"})
    if not app.config.get("REDIS_URL"):
        raise SystemExit("Set REDIS_URL (and DATABASE_URL): the bench measures the RQ path.")
    logging.getLogger("ecom.notifications").setLevel(logging.WARNING)
    logging.getLogger("rq.worker").setLevel(logging.WARNING)
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
                result = relay_outbox(batch)
                enqueued += result.enqueued
                if result.dispatched < batch:
                    return enqueued

        relay_seconds, enqueued = timed(relay_all)
        worker = SimpleWorker([queue], connection=connection)
        deliver_seconds, _ = timed(lambda: worker.work(burst=True, logging_level="WARNING"))
        delivered = db.session.query(Notification).filter(Notification.event_id.in_(event_ids),
                                                          Notification.status == "sent").count()

        empty_queues(connection)
        for _ in range(events):
            # The ceiling's job: RQ's own cost per job and nothing else.
            queue.enqueue("builtins.abs", 1, result_ttl=60)
        ceiling_worker = SimpleWorker([queue], connection=connection)
        ceiling_seconds, _ = timed(lambda: ceiling_worker.work(burst=True, logging_level="WARNING"))

        db.session.execute(delete(Notification).where(Notification.event_id.in_(event_ids)))
        db.session.execute(delete(OutboxEvent).where(OutboxEvent.id.in_(event_ids)))
        db.session.commit()
        empty_queues(connection)
        dialect = db.engine.dialect.name

    end_to_end = relay_seconds + deliver_seconds
    return {
        "bench": "workers",
        "events": events,
        "delivered": delivered,
        "enqueued": enqueued,
        "database": dialect,
        "emit_per_s": round(events / emit_seconds, 1),
        "relay_per_s": round(events / relay_seconds, 1),
        "deliver_per_s": round(delivered / deliver_seconds, 1),
        "notifications_per_s": round(delivered / end_to_end, 1),
        "ceiling_noop_jobs_per_s": round(events / ceiling_seconds, 1),
        "ratio_to_ceiling": round((delivered / deliver_seconds) / (events / ceiling_seconds), 3),
        "python": platform.python_version(),
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=int(os.environ.get("BENCH_EVENTS", "2000")))
    parser.add_argument("--batch", type=int, default=100)
    args = parser.parse_args()
    figures = run(args.events, args.batch)
    rows = [
        ("events emitted and committed", figures["emit_per_s"]),
        ("relay: outbox -> RQ", figures["relay_per_s"]),
        ("deliver: one SimpleWorker, console", figures["deliver_per_s"]),
        ("end to end: relay + deliver", figures["notifications_per_s"]),
        ("ceiling: same worker, no-op jobs", figures["ceiling_noop_jobs_per_s"]),
    ]
    print(f"{'stage':<40} {'per second':>12}")
    print("-" * 53)
    for name, value in rows:
        print(f"{name:<40} {value:>12.1f}")
    print(f"{'deliver / ceiling':<40} {figures['ratio_to_ceiling']:>12.3f}")
    print(f"delivered {figures['delivered']} of {figures['events']} on {figures['database']}")
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
