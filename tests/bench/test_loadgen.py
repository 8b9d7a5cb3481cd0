"""Smoke tests of the bench load generator (figures are measured in bench/, never here)."""

from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from bench.ceiling import payload
from bench.loadgen import LoadResult, Session, percentile, run_load

pytestmark = pytest.mark.slow


def test_percentile_uses_nearest_rank():
    values = list(range(1, 101))  # 1..100

    assert percentile(values, 50) == 50
    assert percentile(values, 95) == 95
    assert percentile(values, 99) == 99
    assert percentile(values, 100) == 100


def test_percentile_of_few_values_picks_an_observed_value():
    assert percentile([3.0], 99) == 3.0
    assert percentile([1.0, 2.0, 10.0], 50) == 2.0
    assert percentile([1.0, 2.0, 10.0], 95) == 10.0


def test_percentile_of_nothing_is_zero_and_bad_pct_is_refused():
    assert percentile([], 50) == 0.0
    with pytest.raises(ValueError):
        percentile([1.0], 0)


def test_summary_counts_server_errors_and_rate():
    result = LoadResult(requests=4, seconds=2.0, latencies_ms=[1.0, 2.0, 3.0, 4.0])
    result.statuses.update({200: 2, 503: 1, 500: 1})

    summary = result.summary()

    assert result.server_errors == 2
    assert summary["rps"] == 2.0
    assert summary["p50_ms"] == 2.0
    assert summary["max_ms"] == 4.0


def test_ceiling_payload_has_the_requested_size():
    for size in (100, 1234, 9000):
        assert len(payload(size)) == size


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_GET(self):  # noqa: N802 - the stdlib's name
        body = b"missing" if self.path == "/missing" else b"hello"
        self.send_response(404 if self.path == "/missing" else 200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


def test_run_load_stops_at_the_request_cap_and_counts_statuses():
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        result = run_load("127.0.0.1", server.server_port, ["/ok", "/missing"], concurrency=2,
                          duration=20, warmup=0.0, max_requests=40, processes=1)
    finally:
        server.shutdown()
        server.server_close()

    assert result.requests == 40
    assert result.errors == 0
    assert set(result.statuses) == {200, 404}
    assert sum(result.statuses.values()) == 40
    assert result.latencies_ms == sorted(result.latencies_ms)


class _SessionHandler(BaseHTTPRequestHandler):
    """Hands out a token (header or cookie) to a request that brought none; records each request."""

    protocol_version = "HTTP/1.1"
    seen: list = []
    issued = 0

    def do_POST(self):  # noqa: N802 - the stdlib's name
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        brought = self.headers.get("X-Token") or self.headers.get("Cookie")
        type(self).seen.append((self.command, self.path, body, brought))
        self.send_response(201)
        if brought is None:
            type(self).issued += 1
            self.send_header("X-Token", f"t{self.issued}")
            self.send_header("Set-Cookie", f"sid=s{self.issued}; Path=/; HttpOnly")
            self.send_header("Set-Cookie", "basket=b; Path=/")
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"ok")

    def log_message(self, *args):
        pass


def _run_session_load(session: Session) -> list:
    _SessionHandler.seen, _SessionHandler.issued = [], 0
    server = ThreadingHTTPServer(("127.0.0.1", 0), _SessionHandler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        result = run_load("127.0.0.1", server.server_port, ["/cart/items"] * 3, concurrency=1,
                          duration=20, warmup=0.0, max_requests=7, processes=1, method="POST",
                          bodies=[b'{"sku": "A"}', b'{"sku": "B"}', b'{"sku": "C"}'], session=session)
    finally:
        server.shutdown()
        server.server_close()
    assert result.requests == 7
    assert result.statuses == {201: 7}
    return _SessionHandler.seen


def test_a_session_load_sends_back_the_token_and_starts_a_new_one_every_few_requests():
    seen = _run_session_load(Session("X-Token", "X-Token", renew_every=3))

    assert [brought for _, _, _, brought in seen] == [None, "t1", "t1", None, "t2", "t2", None]
    assert {(method, path) for method, path, _, _ in seen} == {("POST", "/cart/items")}
    assert {body for _, _, body, _ in seen} == {b'{"sku": "A"}', b'{"sku": "B"}', b'{"sku": "C"}'}


def test_a_cookie_session_sends_back_every_cookie_it_was_given():
    seen = _run_session_load(Session("Set-Cookie", "Cookie", renew_every=4, cookies=True))

    assert [brought for _, _, _, brought in seen] == [
        None, "sid=s1; basket=b", "sid=s1; basket=b", "sid=s1; basket=b", None, "sid=s2; basket=b",
        "sid=s2; basket=b"]


def test_bodies_must_match_the_paths():
    with pytest.raises(ValueError):
        run_load("127.0.0.1", 1, ["/a", "/b"], bodies=[b"x"])
