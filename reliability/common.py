"""What the reliability scenarios share: a fresh database, seeded shoppers, reporting.

Scenarios run against PostgreSQL database ``ecom_bench_reliability`` (emptied
before each scenario) and the app under gunicorn on loopback, with the same
settings as the benches. Shoppers are created in SQL with tokens minted with
the bench JWT secret, so that 500 of them cost no bcrypt time; their carts are
filled in SQL too. Everything a scenario checks afterwards, it checks in SQL.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time

from sqlalchemy import text

from bench import datagen, harness

DATABASE = "ecom_bench_reliability"
APP_NAME = "ecom-reliability-app"  # application_name of the app's connections
WEBHOOK_SECRET = "whsec_reliability_0123456789"


class ScenarioFailed(AssertionError):
    pass


class ScenarioSkipped(Exception):
    pass


class Report:
    """What a scenario did and found, printed as it goes; failures collected."""

    def __init__(self, name: str):
        self.name = name
        self.failures: list[str] = []
        self.facts: dict = {}

    def did(self, message: str) -> None:
        print(f"  [{self.name}] did:   {message}", flush=True)

    def found(self, message: str, **facts) -> None:
        self.facts.update(facts)
        print(f"  [{self.name}] found: {message}", flush=True)

    def check(self, ok: bool, message: str) -> None:
        mark = "ok  " if ok else "FAIL"
        print(f"  [{self.name}] {mark}   {message}", flush=True)
        if not ok:
            self.failures.append(message)


def database_url(with_app_name: bool = True) -> str:
    url = harness.database_url(DATABASE)
    return f"{url}?application_name={APP_NAME}" if with_app_name else url


def fresh_database() -> str:
    """Create/migrate the scenario database and empty every table."""
    url = harness.ensure_database(DATABASE)
    harness.migrate(url)
    engine = harness.engine_for(url)
    with engine.begin() as conn:
        tables = conn.execute(text(
            "SELECT tablename FROM pg_tables WHERE schemaname = 'public' "
            "AND tablename NOT IN ('alembic_version', 'stock_locations')"
        )).scalars().all()
        conn.execute(text(f"TRUNCATE {', '.join(tables)} RESTART IDENTITY CASCADE"))
        # The MAIN warehouse migration 0008 made stays (or comes back): stock is allocated there.
        conn.execute(text("DELETE FROM stock_locations WHERE code <> 'MAIN'"))
        conn.execute(text(
            "INSERT INTO stock_locations (code, name, kind, address, ships_orders, accepts_pickup, priority, "
            "is_active, created_at, updated_at) VALUES ('MAIN', 'Main warehouse', 'warehouse', '', true, "
            "false, 10, true, now(), now()) ON CONFLICT (code) DO NOTHING"))
    engine.dispose()
    return url


def engine():
    return harness.engine_for(harness.database_url(DATABASE))


def seed_stock(conn, units_per_sku: int, products: int = 1) -> list[str]:
    """``products`` products x 3 variants, every SKU with ``units_per_sku`` units; the SKUs."""
    datagen.generate_catalog(conn, products)
    conn.execute(text("UPDATE inventory SET quantity = :q, reserved = 0"), {"q": units_per_sku})
    return [f"SKU-{p}-{v}" for p in range(1, products + 1) for v in (1, 2, 3)]


seed_shoppers = datagen.seed_shoppers
fill_carts = datagen.fill_carts
mint_token = harness.mint_token


def client_for(port: int, user_id: int) -> harness.JsonClient:
    client = harness.JsonClient(port)
    client.token = mint_token(user_id)
    return client


def signed_webhook(event_type: str, obj: dict, event_id: str) -> tuple[bytes, str]:
    """A body and ``Stripe-Signature`` header, computed as Stripe does (v1 = HMAC-SHA256)."""
    event = {"id": event_id, "object": "event", "type": event_type, "created": int(time.time()),
             "data": {"object": obj}}
    body = json.dumps(event).encode()
    timestamp = int(time.time())
    signature = hmac.new(WEBHOOK_SECRET.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    return body, f"t={timestamp},v1={signature.hexdigest()}"


def post_raw(port: int, path: str, body: bytes, headers: dict[str, str]) -> int:
    import http.client

    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        conn.request("POST", path, body=body, headers={"Content-Type": "application/json", **headers})
        response = conn.getresponse()
        response.read()
        return response.status
    except OSError:
        return 0
    finally:
        conn.close()


def app_server(port: int, *, redis_url: str | None = harness.REDIS_URL, name: str, **env: str):
    """The app under gunicorn for a scenario: limits relaxed, the scenario's webhook secret."""
    settings = {"SIGNUP_RATE_LIMIT": "100000 per hour", "LOGIN_RATE_LIMIT": "100000 per hour",
                "STRIPE_WEBHOOK_SECRET": WEBHOOK_SECRET, **env}
    server_env = harness.app_env(database_url(), redis_url=redis_url, **settings)
    return harness.Gunicorn("wsgi:app", port, server_env, name=name)


def has_route(rule: str) -> bool:
    """Whether the app (as merged in this tree) serves ``rule``."""
    from shop.app import create_app

    app = create_app({"SQLALCHEMY_DATABASE_URI": "sqlite://", "REDIS_URL": None, "LOG_LEVEL": "WARNING",
                      "RATELIMIT_STORAGE_URI": "memory://", **harness.BENCH_SECRETS})
    return any(r.rule == rule for r in app.url_map.iter_rules())


def require_routes(*rules: str) -> None:
    missing = [rule for rule in rules if not has_route(rule)]
    if missing:
        raise ScenarioSkipped(f"not merged yet: {', '.join(missing)}")


def scalar(conn, sql: str, **params):
    return conn.execute(text(sql), params).scalar_one()


QUEUE_REDIS_URL = "redis://127.0.0.1:6379/11"  # this suite's own Redis database


def flask_command(args: list[str], *, redis_url: str | None, timeout: float, log_name: str,
                  **env: str) -> tuple[int, str]:
    """Run ``flask --app wsgi ARGS`` against the scenario database; (exit code, output)."""
    import subprocess
    import sys

    environment = harness.app_env(database_url(), redis_url=redis_url,
                                  STRIPE_WEBHOOK_SECRET=WEBHOOK_SECRET, **env)
    log_path = harness.LOG_DIR / f"{log_name}.log"
    harness.LOG_DIR.mkdir(parents=True, exist_ok=True)
    with open(log_path, "wb") as log:
        try:
            code = subprocess.run([sys.executable, "-m", "flask", "--app", "wsgi", *args], cwd=harness.ROOT,
                                  env=environment, stdout=log, stderr=subprocess.STDOUT,
                                  timeout=timeout).returncode
        except subprocess.TimeoutExpired:
            code = -1
    return code, log_path.read_text(errors="replace")


def drain_outbox(redis_url: str, *, log_name: str, timeout: float = 120) -> str:
    """Relay the outbox to RQ, then one burst worker until the queues are empty; the output."""
    code, relayed = flask_command(["relay-outbox", "--batch", "5000"], redis_url=redis_url, timeout=timeout,
                                  log_name=f"{log_name}-relay")
    if code != 0:
        raise ScenarioFailed(f"relay-outbox exited {code}: {relayed[-500:]}")
    code, worked = flask_command(["worker", "--burst"], redis_url=redis_url, timeout=timeout,
                                 log_name=f"{log_name}-worker")
    if code != 0:
        raise ScenarioFailed(f"the burst worker exited {code}: {worked[-500:]}")
    return relayed + worked


def emails_logged(log_text: str, subject_prefix: str) -> dict:
    """Console-backend emails in JSON log lines, by (recipient, subject), for one kind of subject."""
    import re
    from collections import Counter

    found: Counter = Counter()
    for match in re.finditer(r'"message": "email to=(\S+) subject=([^\\"]*)', log_text):
        recipient, subject = match.groups()
        if subject.lower().startswith(subject_prefix.lower()):
            found[(recipient, subject)] += 1
    return found
