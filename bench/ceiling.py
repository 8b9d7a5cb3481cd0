"""The ceiling: a bare Flask app returning a JSON payload of a requested size.

Served by the same gunicorn settings as the real app, it is what Flask itself
allows on this machine; a bench reports the app's figures as a ratio of it.
"""

from __future__ import annotations

import json
from functools import lru_cache

from flask import Flask, Response

app = Flask(__name__)


@lru_cache(maxsize=64)
def payload(size: int) -> bytes:
    """A JSON document of exactly ``size`` bytes (at least the minimal one)."""
    skeleton = json.dumps({"items": [], "pad": ""}).encode()
    filler = max(0, size - len(skeleton))
    return json.dumps({"items": [], "pad": "x" * filler}).encode()


@app.get("/health")
def health():
    return {"status": "ok"}


@app.get("/payload/<int:size>")
def sized(size: int):
    return Response(payload(min(size, 5_000_000)), mimetype="application/json")
