"""Redis stopped during checkouts: every checkout 2xx, the outbox drains after Redis returns.

The app uses a private redis-server this scenario starts on 127.0.0.1:6390
(never the machine's Redis on 6379). Shoppers check out (payment-intent, then
confirm) in three rounds: Redis up, Redis stopped, Redis back. Then the outbox
is relayed and one burst worker delivers; every event must be dispatched and
every order's emails sent.
"""

from __future__ import annotations

import shutil
import subprocess
import threading
import time
from collections import Counter

from bench import harness
from reliability import common

PORT = 8833
REDIS_PORT = 6390
REDIS_URL = f"redis://127.0.0.1:{REDIS_PORT}/0"
PER_ROUND = 20
THREADS = 8


class PrivateRedis:
    """A redis-server of our own on loopback, no persistence; stopped by its pid only."""

    def __init__(self, port: int):
        self.port = port
        self.process: subprocess.Popen | None = None

    def start(self) -> None:
        binary = shutil.which("redis-server")
        if not binary:
            raise common.ScenarioSkipped("redis-server is not installed")
        self.process = subprocess.Popen(
            [binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        import redis

        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                redis.Redis(port=self.port, socket_connect_timeout=0.5).ping()
                return
            except redis.RedisError:
                time.sleep(0.1)
        raise RuntimeError(f"private redis on {self.port} did not start")

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=10)


def checkout_round(user_ids: list[int], statuses: Counter) -> None:
    lock = threading.Lock()
    pending = list(user_ids)

    def shopper() -> None:
        while True:
            with lock:
                if not pending:
                    return
                user_id = pending.pop()
            client = common.client_for(PORT, user_id)
            status, body, _ = client.request("POST", "/api/v1/checkout/payment-intent",
                                             {"shipping_address": harness.SHIPPING_ADDRESS})
            with lock:
                statuses[("payment_intent", status)] += 1
            if status == 201:
                status, _, _ = client.request("POST", "/api/v1/checkout/confirm",
                                              {"payment_intent_id": body["payment_intent_id"]})
                with lock:
                    statuses[("confirm", status)] += 1
            client.close()

    threads = [threading.Thread(target=shopper, daemon=True) for _ in range(THREADS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)


def run(report: common.Report) -> None:
    common.require_routes("/api/v1/checkout/payment-intent", "/api/v1/checkout/confirm")
    common.fresh_database()
    engine = common.engine()
    with engine.begin() as conn:
        sku = common.seed_stock(conn, 1000)[0]
        users = common.seed_shoppers(conn, 3 * PER_ROUND)
        common.fill_carts(conn, users, sku, 1)
    redis_server = PrivateRedis(REDIS_PORT)
    redis_server.start()
    rounds = {}
    try:
        with common.app_server(PORT, redis_url=REDIS_URL, name="reliability-redis-down"):
            for label, chunk in (("redis up", users[:PER_ROUND]),
                                 ("redis stopped", users[PER_ROUND:2 * PER_ROUND]),
                                 ("redis back", users[2 * PER_ROUND:])):
                if label == "redis stopped":
                    # Stopped while this round's first checkouts are in flight.
                    stopper = threading.Timer(0.3, redis_server.stop)
                    stopper.start()
                    report.did(f"stopping the private redis-server on {REDIS_PORT} 0.3 s into the round")
                elif label == "redis back":
                    redis_server.start()
                    report.did(f"started the private redis-server on {REDIS_PORT} again (empty)")
                statuses: Counter = Counter()
                started = time.monotonic()
                checkout_round(chunk, statuses)
                if label == "redis stopped":
                    stopper.join()
                rounds[label] = statuses
                report.did(f"{label}: {len(chunk)} checkouts in {time.monotonic() - started:.1f}s -> "
                           f"{dict(sorted((f'{k} {s}', n) for (k, s), n in statuses.items()))}")
        with engine.connect() as conn:
            waiting = common.scalar(conn, "SELECT count(*) FROM outbox_events WHERE dispatched_at IS NULL")
        report.found(f"{waiting} events waiting in the outbox before the relay")
        worker_log = common.drain_outbox(REDIS_URL, log_name="reliability-redis-down")
        report.did("relayed the outbox and ran one burst worker against the returned Redis")
    finally:
        redis_server.stop()

    with engine.connect() as conn:
        events = common.scalar(conn, "SELECT count(*) FROM outbox_events")
        undispatched = common.scalar(conn, "SELECT count(*) FROM outbox_events WHERE dispatched_at IS NULL")
        paid = common.scalar(conn, "SELECT count(*) FROM orders WHERE status = 'paid'")
        unsent = common.scalar(conn, """
            SELECT count(*) FROM outbox_events x WHERE x.type IN ('ORDER_PLACED', 'ORDER_PAID')
            AND NOT EXISTS (SELECT 1 FROM notifications n WHERE n.event_id = x.id AND n.status = 'sent')""")
    engine.dispose()
    emails = common.emails_logged(worker_log, "")
    report.found(f"{paid} paid orders; {events} outbox events, {undispatched} undispatched after the drain; "
                 f"{unsent} order events without a sent notification; {sum(emails.values())} emails logged",
                 undispatched=undispatched)
    for label, statuses in rounds.items():
        bad = {f"{k} {s}": n for (k, s), n in statuses.items() if not 200 <= s < 300}
        report.check(not bad and statuses[("confirm", 200)] == PER_ROUND,
                     f"{label}: every checkout 2xx ({bad or 'all 2xx'})")
    report.check(paid == 3 * PER_ROUND, "every order paid")
    report.check(undispatched == 0, "the outbox drained after Redis returned")
    report.check(unsent == 0, "every order event has its notification sent")
    report.check(all(n == 1 for n in emails.values()), "no email sent twice")
