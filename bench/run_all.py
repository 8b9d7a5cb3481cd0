"""``make bench``: every bench in turn against the machine's PostgreSQL and Redis.

    python -m bench.run_all [catalog checkout admin workers]

Each bench creates (or reuses) its own ``ecom_bench*`` database and prints a
table and one JSON line; this runner adds a summary. The exit code is
non-zero when a bench broke (server errors, oversold units, deadlocks, a page
that failed) - a missed speed target is reported, not an error.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

from bench import harness

WORKERS_DATABASE = "ecom_bench_workers"
TIME_LIMIT = 1500  # seconds per bench, generation of 1M orders included


def commands() -> dict[str, tuple[list[str], dict[str, str]]]:
    python = sys.executable
    found = {
        "catalog": ([python, "-m", "bench.catalog_bench"], {}),
        "checkout": ([python, "-m", "bench.checkout_bench"], {}),
        "admin": ([python, "-m", "bench.admin_bench"], {}),
    }
    if (harness.ROOT / "bench" / "workers_bench.py").exists():
        found["workers"] = ([python, "bench/workers_bench.py", "--events", "2000"], {
            "DATABASE_URL": harness.database_url(WORKERS_DATABASE), "REDIS_URL": harness.REDIS_URL,
            "MAIL_BACKEND": "console", "LOG_LEVEL": "WARNING", **harness.BENCH_SECRETS})
    return found


def main(argv: list[str]) -> int:
    available = commands()
    chosen = argv or list(available)
    missing = [name for name in chosen if name not in available]
    if missing:
        print(f"no such bench here: {', '.join(missing)} (have {', '.join(available)})")
        return 2
    summary = {}
    for name in chosen:
        command, extra_env = available[name]
        if name == "workers":
            harness.ensure_database(WORKERS_DATABASE)
            harness.flush_redis()
        print(f"\n##### {name}: {' '.join(command)}", flush=True)
        started = time.monotonic()
        env = {**os.environ, **extra_env}
        try:
            result = subprocess.run(command, cwd=harness.ROOT, env=env, text=True, timeout=TIME_LIMIT,
                                    stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
            output, code = result.stdout, result.returncode
        except subprocess.TimeoutExpired as exc:
            partial = exc.stdout or ""
            output = partial.decode(errors="replace") if isinstance(partial, bytes) else partial
            code = -1
        print(output, flush=True)
        figures = _json_line(output)
        summary[name] = {"exit": code, "seconds": round(time.monotonic() - started, 1),
                         "targets_met": _targets_met(name, figures)}
    print("\nbench summary")
    for name, row in summary.items():
        state = "ok" if row["exit"] == 0 else f"BROKEN (exit {row['exit']})"
        print(f"  {name:10} {state:18} targets met: {row['targets_met']!s:6} {row['seconds']:>7}s")
    print(json.dumps({"bench": "summary", "machine": harness.machine(), "load": os.getloadavg(),
                      "results": summary}))
    return 0 if all(row["exit"] == 0 for row in summary.values()) else 1


def _json_line(output: str) -> dict:
    for line in reversed(output.splitlines()):
        line = line.strip()
        if line.startswith("{") and '"bench"' in line:
            try:
                return json.loads(line)
            except ValueError:
                continue
    return {}


def _targets_met(name: str, figures: dict) -> bool | None:
    if not figures:
        return None
    if name == "workers":
        return figures.get("notifications_per_s", 0) >= 500  # issue 17, end to end per worker
    if name == "checkout":
        return figures.get("target_met")
    return figures.get("targets_met")


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

