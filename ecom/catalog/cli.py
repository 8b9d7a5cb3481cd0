"""Flask CLI commands of this area."""

from flask import Flask


def register(app: Flask) -> None:
    """Add this area's commands to ``app.cli``."""
