"""Shared fixtures: the app, a rollback-per-test database, clients, servers.

Tests run on PostgreSQL when ``TEST_DATABASE_URL`` is set, else on a SQLite
file. Tests whose behaviour depends on PostgreSQL or Redis use the
``postgres`` / ``redis_url`` fixtures, which skip with a plain reason when
there is no server - or fail, when ``REQUIRE_SERVICES=1`` (CI) says the
servers must be there.
"""

from __future__ import annotations

import os
import re
import tempfile

import pytest
from flask_sqlalchemy.session import Session as FlaskSQLAlchemySession
from sqlalchemy import create_engine, make_url, text

from ecom.config import _normalise_db_url
from ecom.extensions import db as _db
from ecom.extensions import limiter
from shop.app import create_app

# The checkout fixtures serve both the domain tests (tests/ecom/commerce) and the API's.
pytest_plugins = ["tests.browser_support", "tests.commerce_support"]

REQUIRE_SERVICES = os.environ.get("REQUIRE_SERVICES") == "1"


def _missing(what: str):
    message = f"{what} not available - set it to run this test"
    if REQUIRE_SERVICES:
        pytest.fail(f"{message} (REQUIRE_SERVICES=1)")
    pytest.skip(message)


def _worker_suffix() -> str:
    return os.environ.get("PYTEST_XDIST_WORKER", "main")


def _postgres_test_url() -> str | None:
    base = os.environ.get("TEST_DATABASE_URL")
    if not base:
        return None
    url = make_url(_normalise_db_url(base))
    name = f"{url.database}_{_worker_suffix()}"
    admin = create_engine(url.set(database="postgres"), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        exists = conn.scalar(text("SELECT 1 FROM pg_database WHERE datname = :n"), {"n": name})
        if not exists:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
    admin.dispose()
    return url.set(database=name).render_as_string(hide_password=False)


def _fresh_schema(app) -> None:
    """Drop everything and build the schema by running the migrations."""
    from flask_migrate import upgrade

    with app.app_context():
        engine = _db.engine
        if engine.dialect.name == "postgresql":
            with engine.begin() as conn:
                conn.execute(text("DROP SCHEMA public CASCADE; CREATE SCHEMA public"))
        else:
            _db.drop_all()
            with engine.begin() as conn:
                conn.execute(text("DROP TABLE IF EXISTS alembic_version"))
        upgrade()


TEST_CONFIG = {
    "TESTING": True,
    "SECRET_KEY": "test-secret-key-0123456789abcdefghij",
    "JWT_SECRET": "test-jwt-secret-0123456789abcdefghij",
    "WTF_CSRF_ENABLED": False,
    "REDIS_URL": None,
    "RATELIMIT_STORAGE_URI": "memory://",
    "STRIPE_SECRET_KEY": None,
    "STRIPE_WEBHOOK_SECRET": "whsec_test_secret",
    "MAIL_BACKEND": "console",
    "EXPIRY_INTERVAL_SECONDS": 0,
}


def make_test_app(database_url: str, **overrides):
    config = dict(TEST_CONFIG, SQLALCHEMY_DATABASE_URI=database_url, **overrides)
    if database_url.startswith("sqlite"):
        config["SQLALCHEMY_ENGINE_OPTIONS"] = {}
    else:
        # Few idle connections kept, many allowed at once: the race tests open ~50 together.
        config["SQLALCHEMY_ENGINE_OPTIONS"] = {"pool_size": 5, "max_overflow": 60}
    return create_app(config)


@pytest.fixture(scope="session")
def database_url(tmp_path_factory) -> str:
    url = _postgres_test_url()
    if url:
        return url
    path = tmp_path_factory.mktemp("db") / "test.sqlite3"
    return f"sqlite:///{path}"


@pytest.fixture(scope="session")
def app(database_url):
    app = make_test_app(database_url)
    _fresh_schema(app)
    _LIMITER_STATE.update(_limiter_state())
    return app


# Flask-Limiter keeps one storage per Limiter, set by the latest init_app: a test that builds
# a second app (say with Redis, or a dead Redis) would leave the shared limiter pointing there.
# Production has one app per process; tests put the session app's storage back before each test.
_LIMITER_FIELDS = ("_storage", "_limiter", "_storage_dead", "enabled")
_LIMITER_STATE: dict = {}


def _limiter_state() -> dict:
    return {name: getattr(limiter, name) for name in _LIMITER_FIELDS if hasattr(limiter, name)}


class _ConnectionBoundSession(FlaskSQLAlchemySession):
    """Flask-SQLAlchemy's session picks the app's engine per model and would
    ignore ``bind=connection``, committing outside the test's transaction."""

    def get_bind(self, *args, **kwargs):
        return self.bind if self.bind is not None else super().get_bind(*args, **kwargs)


@pytest.fixture
def db(app):
    """A session whose every commit is a savepoint inside a transaction rolled back after the test."""
    with app.app_context():
        connection = _db.engine.connect()
        outer = connection.begin()
        if connection.dialect.name == "sqlite":
            # pysqlite emits no BEGIN before a SAVEPOINT, so releasing the first
            # savepoint (a test's "commit") would commit for real and leak rows.
            connection.exec_driver_sql("BEGIN")
        original = _db.session
        _db.session = _db._make_scoped_session(
            {
                "bind": connection,
                "join_transaction_mode": "create_savepoint",
                "class_": _ConnectionBoundSession,
            }
        )
        try:
            yield _db
        finally:
            _db.session.remove()
            _db.session = original
            outer.rollback()
            connection.close()


@pytest.fixture
def committed_db(app):
    """Real commits (for tests across threads and connections); every table emptied after."""
    with app.app_context():
        yield _db
        _db.session.remove()
        _truncate_all(app)


def _truncate_all(app) -> None:
    with app.app_context():
        tables = [t.name for t in reversed(_db.metadata.sorted_tables)]
        with _db.engine.begin() as conn:
            if _db.engine.dialect.name == "postgresql":
                conn.execute(text(f"TRUNCATE {', '.join(tables)} RESTART IDENTITY CASCADE"))
            else:
                for name in tables:
                    conn.execute(text(f"DELETE FROM {name}"))


@pytest.fixture(autouse=True, scope="session")
def _cheap_bcrypt():
    """Hash with bcrypt's minimum cost in tests: the production cost (12) is there to slow
    attackers and would make every sign-in here cost a quarter of a second."""
    import bcrypt

    real_gensalt = bcrypt.gensalt
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(bcrypt, "gensalt", lambda rounds=4, prefix=b"2b": real_gensalt(rounds, prefix))
        yield


@pytest.fixture(autouse=True)
def _reset_rate_limits(app):
    for name, value in _LIMITER_STATE.items():
        setattr(limiter, name, value)
    with app.app_context():
        limiter.reset()
    yield


@pytest.fixture
def client(app, db):
    return app.test_client()


@pytest.fixture
def postgres(app):
    """The app, when it runs on PostgreSQL; skip (or fail in CI) otherwise."""
    if not os.environ.get("TEST_DATABASE_URL"):
        _missing("TEST_DATABASE_URL (PostgreSQL)")
    return app


@pytest.fixture
def redis_url():
    url = os.environ.get("REDIS_URL")
    if not url:
        _missing("REDIS_URL (Redis)")
    import redis

    # REDIS_URL's database number plus the xdist worker index: parallel runs never share one.
    worker = _worker_suffix()
    offset = int(worker[2:]) if worker.startswith("gw") else 0
    match = re.search(r"/(\d+)$", url)
    base_index = int(match.group(1)) if match else 0
    base = url[: match.start()] if match else url.rstrip("/")
    test_url = f"{base}/{base_index + offset}"
    connection = redis.Redis.from_url(test_url)
    try:
        connection.flushdb()
    except redis.RedisError as exc:
        _missing(f"Redis at {url} ({exc})")
    yield test_url
    connection.flushdb()


@pytest.fixture
def tmp_dir():
    with tempfile.TemporaryDirectory() as path:
        yield path


def pytest_collection_modifyitems(config, items):
    # Tests with real commits run many threads, each holding a connection: keep them on one
    # xdist worker (with --dist loadgroup) so two races never exhaust PostgreSQL's connections.
    for item in items:
        if "committed_db" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.xdist_group("committed_db"))


@pytest.fixture
def media_root(app, tmp_path, monkeypatch):
    """Uploaded files go to a directory of this test's own (the local storage backend)."""
    root = tmp_path / "media"
    monkeypatch.setitem(app.config, "MEDIA_ROOT", str(root))
    monkeypatch.setitem(app.config, "MEDIA_S3_BUCKET", None)
    return root
