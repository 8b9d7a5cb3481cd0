"""Page through a SQLAlchemy select: ``{"items", "page", "per_page", "total", "pages"}``."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

from sqlalchemy import Select, func, select

from ecom.extensions import db

MAX_PER_PAGE = 100


def page_of(
    items: Sequence[Any], *, page: int, per_page: int, total: int, render: Callable[[Any], Any] | None = None
) -> dict:
    """The page envelope around items already fetched."""
    rendered = [render(item) for item in items] if render else list(items)
    return {
        "items": rendered,
        "page": page,
        "per_page": per_page,
        "total": total,
        "pages": math.ceil(total / per_page) if total else 0,
    }


def paginate(
    statement: Select, *, page: int, per_page: int, render: Callable[[Any], Any] | None = None
) -> dict:
    """Run ``statement`` for one page (scalars) and count all its rows."""
    per_page = min(max(per_page, 1), MAX_PER_PAGE)
    page = max(page, 1)
    total = db.session.scalar(select(func.count()).select_from(statement.order_by(None).subquery()))
    rows = db.session.scalars(statement.limit(per_page).offset((page - 1) * per_page)).all()
    return page_of(rows, page=page, per_page=per_page, total=total or 0, render=render)
