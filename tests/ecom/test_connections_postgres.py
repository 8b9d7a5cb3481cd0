"""ecom.connections.ping_after_idle on a real PostgreSQL: no ping for a connection back from
a request a moment ago, a ping (and a fresh connection) for one that rested, and what happens
to a connection whose server process died within the window."""

from __future__ import annotations

import time

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.exc import OperationalError
from sqlalchemy.pool import NullPool

from ecom.connections import engine_options, ping_after_idle


@pytest.fixture
def engine(postgres, database_url):
    made = create_engine(database_url, **engine_options({"pool_size": 1, "max_overflow": 0}, database_url, 1))
    ping_after_idle(made, 0.3)
    pings = []
    do_ping = made.dialect.do_ping

    def counted(dbapi_connection):
        pings.append(1)
        return do_ping(dbapi_connection)

    made.dialect.do_ping = counted
    made.pings = pings
    yield made
    made.dispose()


def _backend_pid(engine) -> int:
    with engine.connect() as conn:
        return conn.execute(text("SELECT pg_backend_pid()")).scalar_one()


def _terminate(database_url, pid: int) -> None:
    killer = create_engine(database_url, poolclass=NullPool)
    with killer.connect() as conn:
        conn.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
        conn.commit()
    killer.dispose()
    time.sleep(0.05)


def test_pre_ping_is_off_for_postgresql_only(postgres, database_url):
    assert engine_options({"pool_pre_ping": True}, database_url, 5) == {"pool_pre_ping": False}
    assert engine_options({"pool_pre_ping": True}, "sqlite:///x.db", 5) == {"pool_pre_ping": True}
    assert engine_options({"pool_pre_ping": True}, database_url, 0) == {"pool_pre_ping": True}


def test_a_connection_back_a_moment_ago_goes_out_without_a_ping(engine):
    first = _backend_pid(engine)
    second = _backend_pid(engine)
    assert (second, engine.pings) == (first, [])


def test_a_rested_connection_is_pinged_and_replaced_when_its_process_died(engine, database_url):
    dead = _backend_pid(engine)
    _terminate(database_url, dead)
    time.sleep(0.35)
    # The ping finds it dead: the pool opens another, and the query succeeds.
    assert _backend_pid(engine) != dead
    assert engine.pings == [1]


def test_a_connection_that_died_within_the_window_fails_once_then_the_pool_recovers(engine, database_url):
    _terminate(database_url, _backend_pid(engine))
    with pytest.raises(OperationalError), engine.connect() as conn:
        conn.execute(text("SELECT 1"))
    assert _backend_pid(engine) > 0
