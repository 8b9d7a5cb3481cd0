"""One JSON object per line, with the request id; never secrets."""

from __future__ import annotations

import json
import logging
import re
import secrets
import sys
import time
import uuid
from datetime import UTC, datetime

from flask import Flask, g, has_request_context, request

REQUEST_ID_PATTERN = re.compile(r"^[A-Za-z0-9._\-]{1,128}$")
log = logging.getLogger("ecom")


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "timestamp": datetime.fromtimestamp(record.created, UTC).isoformat(),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        if has_request_context():
            entry["request_id"] = getattr(g, "request_id", None)
        for key in ("request_id", "method", "path", "status", "duration_ms", "user_id"):
            if hasattr(record, key):
                entry[key] = getattr(record, key)
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str)


def configure_logging(app: Flask) -> None:
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(app.config["LOG_LEVEL"])
    logging.getLogger("werkzeug").setLevel(logging.WARNING)


def request_id_for(incoming: str) -> str:
    """This request's id: a well-formed incoming X-Request-ID, else a new one (32 hex digits,
    as uuid4().hex was, in a quarter of its time)."""
    return incoming if REQUEST_ID_PATTERN.match(incoming) else secrets.token_hex(16)


def log_request_line(request_id: str, method: str, path: str, status: int, duration_ms: float | None,
                     user_id: int | None) -> None:
    """The access log's line for one answered request (Flask's hook and the page layer in
    front of Flask both write it). Only the path: query strings may carry tokens.

    The record is made directly rather than by ``log.info``, which would walk the stack to
    find the caller: always this function, and ~10 us of a cached page's ~0.5 ms."""
    if not log.isEnabledFor(logging.INFO):
        return
    extra = {"request_id": request_id, "method": method, "path": path, "status": status,
             "duration_ms": duration_ms, "user_id": user_id}
    log.handle(log.makeRecord(log.name, logging.INFO, __file__, _LOG_LINE, "request", (), None,
                              "log_request_line", extra))


_LOG_LINE = log_request_line.__code__.co_firstlineno


def init_request_logging(app: Flask) -> None:
    @app.before_request
    def assign_request_id():
        g.request_id = request_id_for(request.headers.get("X-Request-ID", ""))
        g.request_started = time.perf_counter()

    @app.after_request
    def log_request(response):
        request_id = getattr(g, "request_id", None) or uuid.uuid4().hex
        response.headers["X-Request-ID"] = request_id
        started = getattr(g, "request_started", None)
        duration_ms = round((time.perf_counter() - started) * 1000, 2) if started else None
        log_request_line(request_id, request.method, request.path, response.status_code, duration_ms,
                         getattr(g, "current_user_id", None))
        return response
