"""Behind a load balancer: client addresses come from X-Forwarded-For only through
TRUSTED_PROXY_COUNT trusted proxies (werkzeug's ProxyFix); with 0 the header is ignored."""

from __future__ import annotations

import pytest
from flask import request

from tests.conftest import make_test_app

BALANCER, SECOND_PROXY = "10.0.0.2", "10.0.0.3"
SHOPPER, OTHER_SHOPPER, SPOOFED = "198.51.100.7", "198.51.100.8", "6.6.6.6"


def echo_app(count: int):
    app = make_test_app("sqlite://", TRUSTED_PROXY_COUNT=count)

    @app.get("/_test/client")
    def client_address():
        return {"remote_addr": request.remote_addr, "scheme": request.scheme, "host": request.host}

    return app


def seen(app, forwarded: str | None, peer: str, **headers) -> dict:
    if forwarded is not None:
        headers["X-Forwarded-For"] = forwarded
    return app.test_client().get("/_test/client", headers=headers,
                                 environ_base={"REMOTE_ADDR": peer}).get_json()


def test_with_no_trusted_proxy_x_forwarded_for_is_ignored():
    app = echo_app(0)
    assert seen(app, SPOOFED, SHOPPER)["remote_addr"] == SHOPPER
    assert seen(app, f"{SPOOFED}, {SHOPPER}", BALANCER,
                **{"X-Forwarded-Proto": "https", "X-Forwarded-Host": "evil.example"}) == {
        "remote_addr": BALANCER, "scheme": "http", "host": "localhost"}


def test_with_one_trusted_proxy_the_last_hop_it_added_is_the_client():
    app = echo_app(1)
    # the balancer appended the shopper's address to what the shopper sent
    assert seen(app, SHOPPER, BALANCER)["remote_addr"] == SHOPPER
    assert seen(app, f"{SPOOFED}, {SHOPPER}", BALANCER)["remote_addr"] == SHOPPER
    answer = seen(app, SHOPPER, BALANCER,
                  **{"X-Forwarded-Proto": "https", "X-Forwarded-Host": "shop.example"})
    assert (answer["scheme"], answer["host"]) == ("https", "shop.example")
    # no header at all: the peer itself
    assert seen(app, None, BALANCER)["remote_addr"] == BALANCER


def test_with_two_trusted_proxies_the_client_is_two_hops_back():
    app = echo_app(2)
    # shopper -> balancer -> second proxy -> app: "shopper, balancer" arrives from the second proxy
    assert seen(app, f"{SHOPPER}, {BALANCER}", SECOND_PROXY)["remote_addr"] == SHOPPER
    # a shopper's own entries in front are never believed
    assert seen(app, f"{SPOOFED}, {SHOPPER}, {BALANCER}", SECOND_PROXY)["remote_addr"] == SHOPPER
    # one trusted hop too few in the header: ProxyFix believes nothing
    assert seen(app, BALANCER, SECOND_PROXY)["remote_addr"] == SECOND_PROXY


def test_a_negative_count_is_refused_at_start():
    with pytest.raises(ValueError, match="TRUSTED_PROXY_COUNT"):
        make_test_app("sqlite://", TRUSTED_PROXY_COUNT=-1)


@pytest.mark.parametrize("count, forwarded, other_shopper_throttled", [
    (0, lambda ip: ip, True),  # every shopper behind the balancer shares one limit
    (1, lambda ip: ip, False),
    (2, lambda ip: f"{ip}, {BALANCER}", False),
])
def test_sign_in_limits_count_each_client_behind_the_proxies(db, database_url, count, forwarded,
                                                             other_shopper_throttled):
    # given an app behind ``count`` proxies, allowing 2 failed sign-ins per client address
    app = make_test_app(database_url, TRUSTED_PROXY_COUNT=count, LOGIN_IP_RATE_LIMIT="2 per 5 minutes")
    client = app.test_client()
    peer = BALANCER if count < 2 else SECOND_PROXY

    def sign_in(ip: str):
        return client.post("/api/v1/auth/login",
                           json={"email": f"nobody-{ip}@example.com", "password": "x" * 9},
                           headers={"X-Forwarded-For": forwarded(ip)}, environ_base={"REMOTE_ADDR": peer})

    # when one shopper fails twice
    assert [sign_in(SHOPPER).status_code for _ in range(2)] == [401, 401]
    assert sign_in(SHOPPER).status_code == 429
    # then another shopper behind the same balancer is held back only when the proxies are not trusted
    assert sign_in(OTHER_SHOPPER).status_code == (429 if other_shopper_throttled else 401)
