"""Links to a back-office list with its filters set, so a figure can lead to the rows behind it.

Flask-Admin names a filter in the URL by its position in the view's filter list
(``flt0_7=...``); these helpers find that position from the column and the kind of filter,
so the links keep working when a view's filters change.
"""

from __future__ import annotations

from datetime import datetime

from flask import current_app, url_for


def _view(endpoint: str):
    admin = current_app.extensions["backoffice"]
    return next(view for view in admin._views if view.endpoint == endpoint)


def filter_key(endpoint: str, column: str, kind: str) -> str | None:
    """The URL key of ``endpoint``'s filter on ``column`` whose class is named ``kind``."""
    view = _view(endpoint)
    for key, (_, flt) in (view._filter_args or {}).items():
        flt_column = getattr(flt, "column", None)
        if getattr(flt_column, "key", None) == column and type(flt).__name__ == kind:
            return key
    return None


def list_url(endpoint: str, filters: list[tuple[str, str, str]] = (), **args) -> str:
    """``endpoint``'s list with ``filters`` [(column, filter class name, value)] applied."""
    params = dict(args)
    for position, (column, kind, value) in enumerate(filters):
        key = filter_key(endpoint, column, kind)
        if key is not None:
            params[f"flt{position}_{key}"] = value
    return url_for(f"{endpoint}.index_view", **params)


def between(start: datetime, end: datetime) -> str:
    """A datetime-between filter's value (UTC, as the columns store it)."""
    fmt = "%Y-%m-%d %H:%M:%S"
    return f"{start.strftime(fmt)} to {end.strftime(fmt)}"
