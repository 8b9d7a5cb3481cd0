"""Wiring of the outbox to its consumers (relay to RQ, or in-process handling)."""

from flask import Flask


def init_app(app: Flask) -> None:
    """Hook event dispatch into the app. Filled in by the workers work."""
