"""What every bench shares: databases, the app under gunicorn, the ceiling, output.

Every figure is taken with the same gunicorn settings (``GUNICORN_WORKERS``
processes x ``GUNICORN_THREADS`` threads, gthread worker, loopback only), the
app against PostgreSQL (``BENCH_PG``) and Redis (``BENCH_REDIS_URL``).
"""

from __future__ import annotations

import json
import os
import platform
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PG_BASE = os.environ.get("BENCH_PG", "postgresql://postgres@127.0.0.1:5432")
REDIS_URL = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/10")
GUNICORN_WORKERS = int(os.environ.get("BENCH_WORKERS", "2"))
GUNICORN_THREADS = int(os.environ.get("BENCH_THREADS", "4"))
LOG_DIR = ROOT / "instance" / "bench-logs"

BENCH_SECRETS = {
    "SECRET_KEY": "bench-secret-key-0123456789abcdef",
    "JWT_SECRET": "bench-jwt-secret-0123456789abcdef",
}


def database_url(name: str) -> str:
    return f"{PG_BASE.rstrip('/')}/{name}"


def _admin_engine():
    from sqlalchemy import create_engine

    from ecom.config import _normalise_db_url

    return create_engine(_normalise_db_url(database_url("postgres")), isolation_level="AUTOCOMMIT")


def ensure_database(name: str, *, fresh: bool = False) -> str:
    """Create database ``name`` (dropped first when ``fresh``) and return its URL."""
    from sqlalchemy import text

    if not name.startswith("ecom_bench"):
        raise ValueError("bench databases are named ecom_bench*")
    engine = _admin_engine()
    with engine.connect() as conn:
        if fresh:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        exists = conn.scalar(text("SELECT 1 FROM pg_database WHERE datname = :n"), {"n": name})
        if not exists:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
    engine.dispose()
    return database_url(name)


def migrate(url: str) -> None:
    """``flask --app wsgi db upgrade`` against ``url``."""
    env = app_env(url)
    subprocess.run([sys.executable, "-m", "flask", "--app", "wsgi", "db", "upgrade"],
                   cwd=ROOT, env=env, check=True, capture_output=True, timeout=300)


def engine_for(url: str):
    from sqlalchemy import create_engine

    from ecom.config import _normalise_db_url

    return create_engine(_normalise_db_url(url), pool_size=4, max_overflow=4)


def app_env(url: str, redis_url: str | None = REDIS_URL, **extra: str) -> dict[str, str]:
    """The environment the app runs with in a bench: not production, real servers."""
    env = dict(os.environ)
    for name in ("FLASK_ENV", "STRIPE_SECRET_KEY", "STRIPE_API_BASE"):
        env.pop(name, None)
    env.update(BENCH_SECRETS)
    env.update(
        APP_ENV="bench",
        DATABASE_URL=url,
        # Each worker's threads need a connection at most; stay well inside
        # PostgreSQL's max_connections, which other users of the machine share.
        DB_POOL_SIZE=str(GUNICORN_THREADS + 1),
        DB_MAX_OVERFLOW="2",
        MAIL_BACKEND="console",
        LOG_LEVEL=os.environ.get("BENCH_LOG_LEVEL", "INFO"),
        PYTHONUNBUFFERED="1",
    )
    if redis_url:
        env["REDIS_URL"] = redis_url
    else:
        env.pop("REDIS_URL", None)
    env.update(extra)
    return env


class Gunicorn:
    """One gunicorn master on 127.0.0.1:``port``; a context manager that always stops it."""

    def __init__(self, app_spec: str, port: int, env: dict[str, str], *, name: str,
                 health_path: str = "/health", workers: int = GUNICORN_WORKERS,
                 threads: int = GUNICORN_THREADS, python: str = sys.executable, cwd: Path = ROOT):
        # ``python``/``cwd``: another virtualenv's gunicorn and app (the peer bench's Oscar).
        self.python = python
        self.cwd = cwd
        self.app_spec = app_spec
        self.port = port
        self.env = env
        self.name = name
        self.health_path = health_path
        self.workers = workers
        self.threads = threads
        self.process: subprocess.Popen | None = None
        LOG_DIR.mkdir(parents=True, exist_ok=True)
        self.log_path = LOG_DIR / f"{name}.log"

    @property
    def settings(self) -> str:
        return f"gunicorn gthread {self.workers} workers x {self.threads} threads"

    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 60.0) -> Gunicorn:
        log = open(self.log_path, "wb")  # noqa: SIM115 - closed with the process
        self.process = subprocess.Popen(
            [self.python, "-m", "gunicorn", self.app_spec,
             "--bind", f"127.0.0.1:{self.port}",
             "--workers", str(self.workers), "--threads", str(self.threads),
             "--worker-class", "gthread", "--keep-alive", "30",
             "--graceful-timeout", "10", "--timeout", "60",
             # gunicorn 27 otherwise opens one shared ~/.gunicorn/gunicorn.ctl for every instance.
             "--no-control-socket"],
            cwd=self.cwd, env=self.env, stdout=log, stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        log.close()
        self.wait_healthy(timeout)
        return self

    def wait_healthy(self, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process and self.process.poll() is not None:
                raise RuntimeError(f"{self.name} exited; see {self.log_path}")
            try:
                with urllib.request.urlopen(self.base_url() + self.health_path, timeout=2) as r:
                    if r.status == 200:
                        return
            except (OSError, urllib.error.URLError):
                pass
            time.sleep(0.2)
        self.stop()
        raise RuntimeError(f"{self.name} not healthy within {timeout}s; see {self.log_path}")

    def stop(self) -> None:
        if not self.process or self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=5)

    def cpu_seconds(self) -> float:
        """CPU time used so far by the master and all its workers."""
        return tree_cpu_seconds(self.process.pid) if self.process else 0.0

    def __enter__(self) -> Gunicorn:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


def _cpu_of(pid: int) -> tuple[int, float]:
    """(parent pid, user + system CPU seconds) of a process, from /proc."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return int(fields[1]), (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def tree_cpu_seconds(root: int) -> float:
    """CPU seconds of ``root`` and every descendant still alive."""
    parents, cpu = {}, {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                parents[int(entry)], cpu[int(entry)] = _cpu_of(int(entry))
            except (OSError, ValueError, IndexError):
                continue
    total, stack = 0.0, [root]
    while stack:
        pid = stack.pop()
        total += cpu.get(pid, 0.0)
        stack.extend(child for child, parent in parents.items() if parent == pid)
    return total


def backend_cpu_seconds(url: str, database: str) -> dict[int, float]:
    """CPU seconds of each PostgreSQL backend connected to ``database`` (same machine only)."""
    from sqlalchemy import text

    engine = engine_for(url)
    with engine.connect() as conn:
        pids = conn.execute(text("SELECT pid FROM pg_stat_activity WHERE datname = :d AND pid <> "
                                 "pg_backend_pid()"), {"d": database}).scalars().all()
    engine.dispose()
    found = {}
    for pid in pids:
        try:
            found[pid] = _cpu_of(pid)[1]
        except (OSError, ValueError, IndexError):
            continue
    return found


def app_server(url: str, port: int, *, name: str = "app", **extra_env: str) -> Gunicorn:
    return Gunicorn("wsgi:app", port, app_env(url, **extra_env), name=name)


def ceiling_server(port: int) -> Gunicorn:
    return Gunicorn("bench.ceiling:app", port, app_env("postgresql://unused"), name="ceiling")


def machine() -> dict:
    memory_gib = None
    try:
        with open("/proc/meminfo") as f:
            kib = int(f.readline().split()[1])
        memory_gib = round(kib / 1024 / 1024, 1)
    except (OSError, ValueError, IndexError):
        pass
    # Other work on the machine moves every figure; the load average says how much there was.
    return {"nproc": os.cpu_count(), "memory_gib": memory_gib, "python": platform.python_version(),
            "load_avg_1m": round(os.getloadavg()[0], 2)}


def print_table(title: str, headers: list[str], rows: list[list]) -> None:
    cells = [[str(c) for c in row] for row in rows]
    widths = [max(len(h), *(len(r[i]) for r in cells)) for i, h in enumerate(headers)]
    print(f"\n{title}")
    print("  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True)))
    print("  ".join("-" * w for w in widths))
    for row in cells:
        print("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)))


def emit_json(bench: str, figures: dict) -> None:
    """The one machine-readable line of a bench."""
    print(json.dumps({"bench": bench, "machine": machine(), **figures}, default=str), flush=True)


class JsonClient:
    """One keep-alive HTTP connection speaking JSON; reconnects after a transport error."""

    def __init__(self, port: int, host: str = "127.0.0.1", timeout: float = 30.0):
        import http.client

        self._http = http.client
        self.host, self.port, self.timeout = host, port, timeout
        self.token: str | None = None
        self.conn = http.client.HTTPConnection(host, port, timeout=timeout)

    def request(self, method: str, path: str, body: dict | None = None,
                headers: dict[str, str] | None = None) -> tuple[int, dict | None, float]:
        """(status, parsed JSON or None, milliseconds); status 0 for a transport error."""
        sent = {"Accept": "application/json", **(headers or {})}
        if self.token:
            sent["Authorization"] = f"Bearer {self.token}"
        payload = None
        if body is not None:
            payload = json.dumps(body).encode()
            sent["Content-Type"] = "application/json"
        started = time.perf_counter()
        try:
            self.conn.request(method, path, body=payload, headers=sent)
            response = self.conn.getresponse()
            raw = response.read()
            status = response.status
        except (OSError, self._http.HTTPException):
            self.conn.close()
            self.conn = self._http.HTTPConnection(self.host, self.port, timeout=self.timeout)
            return 0, None, (time.perf_counter() - started) * 1000
        elapsed = (time.perf_counter() - started) * 1000
        try:
            data = json.loads(raw) if raw else None
        except ValueError:
            data = None
        return status, data, elapsed

    def close(self) -> None:
        self.conn.close()


def flush_redis(url: str = REDIS_URL) -> None:
    """Empty this bench's own Redis database: 10 or 11 on the shared server, or a private server."""
    import redis

    shared = ":6379/" in url
    if shared and url.rsplit("/", 1)[-1] not in {"10", "11"}:
        raise ValueError("on the shared Redis, bench databases are 10 and 11")
    redis.Redis.from_url(url).flushdb()


def deadlocks(url: str, name: str) -> int:
    from sqlalchemy import text

    engine = engine_for(url)
    with engine.connect() as conn:
        value = conn.execute(text("SELECT deadlocks FROM pg_stat_database WHERE datname = :n"),
                             {"n": name}).scalar_one()
    engine.dispose()
    return int(value)


SHIPPING_ADDRESS = {
    "full_name": "Bench Shopper", "street": "1 Loopback Lane", "city": "Localhost",
    "state": "CA", "postal_code": "94000", "country": "US", "phone": "+15550100",
}


def mint_token(user_id: int, lifetime: int = 3600) -> str:
    """An access token like the API issues (HS256, ``sub`` = id, ``ver`` = the session version
    of a user nobody signed out: 0), signed with the bench secret."""
    now = datetime.now(UTC)
    claims = {"sub": str(user_id), "ver": 0, "iat": now, "exp": now + timedelta(seconds=lifetime)}
    import jwt

    return jwt.encode(claims, BENCH_SECRETS["JWT_SECRET"], algorithm="HS256")
