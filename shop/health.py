"""Liveness of the parts the app depends on."""

from __future__ import annotations

from flask import Flask
from sqlalchemy import text

from ecom.extensions import db


def check_database() -> str:
    try:
        db.session.execute(text("SELECT 1"))
        return "ok"
    except Exception as exc:  # any driver error means the database is unusable
        db.session.rollback()
        return f"error: {type(exc).__name__}"


def check_redis(app: Flask) -> str:
    url = app.config.get("REDIS_URL")
    if not url:
        return "disabled"
    import redis

    try:
        redis.Redis.from_url(url, socket_connect_timeout=1, socket_timeout=1).ping()
        return "ok"
    except redis.RedisError as exc:
        return f"error: {type(exc).__name__}"


def check_health(app: Flask) -> tuple[dict, bool]:
    """The /health body and whether the app can serve (the database is up).

    Redis being down degrades the app (events wait in the outbox) but does not
    stop it serving, so it is reported without failing the check.
    """
    database = check_database()
    body = {"status": "ok" if database == "ok" else "error", "database": database,
            "redis": check_redis(app)}
    return body, database == "ok"
