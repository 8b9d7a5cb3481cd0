"""The Flask-Admin back office at /admin/."""

from flask import Flask


def init_admin(app: Flask) -> None:
    """Register the back office. Filled in by the back-office work."""
