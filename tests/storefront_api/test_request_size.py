"""Request bodies are bounded (MAX_REQUEST_BYTES), and the rate limiter never parses a large one."""

from __future__ import annotations

import json

from flask import Request

from storefront_api.auth import _login_email_key


def test_a_body_over_the_limit_is_a_413_in_the_error_shape(app, client):
    # Given a sign-in body larger than the configured limit
    limit = app.config["MAX_CONTENT_LENGTH"]
    body = json.dumps({"email": "a@example.com", "password": "x" * (limit + 1)})
    # When it is posted
    response = client.post("/api/v1/auth/login", data=body, content_type="application/json")
    # Then it is refused before anything reads it, in the API's usual shape
    assert response.status_code == 413
    assert response.get_json() == {"detail": f"The request body is too large (at most {limit} bytes)."}


def test_the_default_limit_is_one_mebibyte():
    from ecom.config import load_config

    assert load_config({})["MAX_CONTENT_LENGTH"] == 1024 * 1024
    assert load_config({"MAX_REQUEST_BYTES": "2048"})["MAX_CONTENT_LENGTH"] == 2048


def test_the_login_limit_key_does_not_read_a_large_body(app, monkeypatch):
    # Given a sign-in body of 10 kB (padding around an email), and a body that must not be read
    body = json.dumps({"email": "victim@example.com", "password": "x"}) + " " * 10_000
    with app.test_request_context("/api/v1/auth/login", method="POST", json={}):
        no_email = _login_email_key()

    def no_reading(self, *args, **kwargs):
        raise AssertionError("the rate limiter's key read the body")

    with app.test_request_context("/api/v1/auth/login", method="POST", data=body,
                                  content_type="application/json"):
        monkeypatch.setattr(Request, "get_data", no_reading)
        monkeypatch.setattr(Request, "get_json", no_reading)
        # When the per-email key is computed
        key = _login_email_key()
    # Then it is the shared key of "no email", computed without parsing the body
    assert key == no_email


def test_the_login_limit_key_still_reads_a_small_body(app):
    # Given two sign-ins for the same email, spelt differently
    with app.test_request_context("/api/v1/auth/login", method="POST",
                                  json={"email": " Casey@Example.com ", "password": "x"}):
        first = _login_email_key()
    with app.test_request_context("/api/v1/auth/login", method="POST",
                                  json={"email": "casey@example.com", "password": "y"}):
        second = _login_email_key()
    with app.test_request_context("/api/v1/auth/login", method="POST", json={"email": "other@example.com"}):
        other = _login_email_key()
    # Then they share one key, and another email has its own
    assert first == second != other
