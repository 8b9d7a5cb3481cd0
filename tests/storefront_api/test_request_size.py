"""Request bodies are bounded (MAX_REQUEST_BYTES). Sign-in throttling keys on nothing in the body
before it is parsed: the throttle runs inside the login view, after the body passed its checks."""

from __future__ import annotations

import json


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
