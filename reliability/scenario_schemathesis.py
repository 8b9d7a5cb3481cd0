"""Schemathesis with all checks against the whole OpenAPI document: 0 failures.

The app runs under gunicorn on a seeded database (catalog, a shopper with an
address; rate limits relaxed so that generated sign-in attempts are judged on
their answers rather than throttled). ``schemathesis run`` reads
/api/v1/openapi.json and exercises every operation with ``--checks all``,
authenticated as the shopper, bounded by ``--max-examples`` and a time limit.
Its hooks (reliability/schemathesis_hooks.py) only keep it from sending as
valid what the document cannot describe: the two signup inputs and the
lat/lng pairing the API's own schemathesis test also exempts, and an
Idempotency-Key already used with another body; and they sign the positive
webhook events with the app's webhook secret, as Stripe would, so that they
reach the handler.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

from sqlalchemy import text

from bench import harness
from reliability import common

PORT = 8835
MAX_EXAMPLES = 25
TIME_LIMIT = 600


def _schemathesis() -> list[str]:
    found = Path(sys.executable).with_name("schemathesis")
    if found.exists():
        return [str(found)]
    binary = shutil.which("schemathesis")
    if not binary:
        raise common.ScenarioSkipped("schemathesis is not installed (pip install -r requirements-dev.txt)")
    return [binary]


def run(report: common.Report) -> None:
    common.require_routes("/api/v1/openapi.json")
    common.fresh_database()
    engine = common.engine()
    with engine.begin() as conn:
        common.seed_stock(conn, 50, products=20)
        user_id = common.seed_shoppers(conn, 1)[0]
        conn.execute(text("""
            INSERT INTO addresses (user_id, address_type, full_name, street, city, state, postal_code,
                                   country, is_default, created_at, updated_at)
            VALUES (:u, 'shipping', 'Shopper', '1 Loopback Lane', 'Localhost', 'CA', '94000', 'US', true,
                    now(), now())"""), {"u": user_id})
    engine.dispose()
    report_dir = harness.LOG_DIR / "schemathesis"
    with common.app_server(PORT, name="reliability-schemathesis") as server:
        command = [*_schemathesis(), "run", f"{server.base_url()}/api/v1/openapi.json",
                   "--checks", "all", "--max-examples", str(MAX_EXAMPLES), "--seed", "7",
                   "--header", f"Authorization: Bearer {common.mint_token(user_id, lifetime=7200)}",
                   # One worker: with two threads, hypothesis's ast.parse of its lambdas can hit
                   # CPython 3.11's "AST constructor recursion depth mismatch" (a runtime error
                   # of the tool, not a finding).
                   "--request-timeout", "30", "--workers", "1",
                   "--report", "junit", "--report-dir", str(report_dir)]
        report.did(f"schemathesis run --checks all --max-examples {MAX_EXAMPLES} against "
                   f"{server.base_url()}/api/v1/openapi.json")
        try:
            env = {**harness.app_env(common.database_url()), "NO_COLOR": "1",
                   "PYTHONPATH": str(harness.ROOT), "SCHEMATHESIS_HOOKS": "reliability.schemathesis_hooks",
                   "STRIPE_WEBHOOK_SECRET": common.WEBHOOK_SECRET}  # the app_server's
            result = subprocess.run(command, cwd=harness.LOG_DIR, capture_output=True, text=True,
                                    timeout=TIME_LIMIT, env=env)
        except subprocess.TimeoutExpired:
            report.check(False, f"schemathesis finished within {TIME_LIMIT}s")
            return
    output = result.stdout + result.stderr
    (harness.LOG_DIR / "schemathesis.log").write_text(output)
    tail = "\n".join(output.strip().splitlines()[-45:])
    print(tail)
    summary = re.findall(r"(\d+) (passed|failed|errored|skipped)", output)
    counts = ", ".join(f"{n} {w}" for n, w in summary) or "no summary"
    report.found(f"exit code {result.returncode}; {counts}; "
                 f"full output in {harness.LOG_DIR / 'schemathesis.log'}", exit_code=result.returncode)
    report.check(result.returncode == 0, "schemathesis reported 0 failures")
