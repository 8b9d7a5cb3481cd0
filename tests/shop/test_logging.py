"""Request logs: one JSON object per line, with the request id, and no secrets."""

import io
import json
import logging

from shop.logging import JsonFormatter


def _capture(app):
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    logger = logging.getLogger("ecom")
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    return stream, lambda: logger.removeHandler(handler)


def test_each_request_is_one_json_line_with_request_id(app, client):
    stream, detach = _capture(app)
    try:
        client.get("/?token=secret-token-value", headers={"X-Request-ID": "req-42",
                                                          "Authorization": "Bearer abc.def.ghi"})
    finally:
        detach()

    lines = [json.loads(line) for line in stream.getvalue().splitlines()]
    entry = next(e for e in lines if e["message"] == "request")
    assert entry["request_id"] == "req-42"
    assert (entry["method"], entry["path"], entry["status"]) == ("GET", "/", 200)
    assert isinstance(entry["duration_ms"], float)
    assert "timestamp" in entry and entry["level"] == "INFO"
    raw = stream.getvalue()
    assert "secret-token-value" not in raw
    assert "abc.def.ghi" not in raw
