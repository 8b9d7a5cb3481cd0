"""How the back office writes money and time: with the currency's sign, and to the minute in
the signed-in user's time zone (UTC when they set none). Used by every list and detail page
(type formatters) and by the templates (the ``money`` and ``when`` filters)."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from flask import Flask
from flask_admin.model import typefmt
from flask_login import current_user
from markupsafe import Markup

from ecom.db import as_utc, money
from ecom.runtime import settings

SYMBOLS = {"usd": "$", "eur": "€", "gbp": "£", "jpy": "¥", "cad": "CA$", "aud": "A$", "nzd": "NZ$",
           "chf": "CHF ", "sek": "SEK ", "nok": "NOK ", "dkk": "DKK ", "inr": "₹", "brl": "R$"}
# A money column is NUMERIC(12, 2) (ecom.db.MONEY); weights and ratings have other scales.
MONEY_SHAPE = (12, 2)


def format_money(amount, currency: str | None = None) -> str:
    """``$1,234.50``; a negative amount ``-$5.00``; None as an empty string."""
    if amount is None or amount == "":
        return ""
    code = (currency or settings()["CURRENCY"] or "").lower()
    value = money(Decimal(str(amount)))
    sign = "-" if value < 0 else ""
    symbol = SYMBOLS.get(code)
    text = f"{abs(value):,.2f}"
    return f"{sign}{symbol}{text}" if symbol else f"{sign}{text} {code.upper()}"


def user_zone() -> ZoneInfo:
    name = getattr(current_user, "time_zone", None) if current_user else None
    if name:
        try:
            return ZoneInfo(name)
        except (ZoneInfoNotFoundError, ValueError):
            pass
    return ZoneInfo("UTC")


def format_when(value) -> str:
    """``2026-12-02 09:41 CET``: to the minute, in the user's zone; a date as it is."""
    if value is None or value == "":
        return ""
    if isinstance(value, datetime):
        local = as_utc(value).astimezone(user_zone())
        return local.strftime("%Y-%m-%d %H:%M %Z")
    if isinstance(value, date):
        return value.isoformat()
    return str(value)


def _money_column(view, name: str) -> bool:
    column = getattr(getattr(view, "model", None), name, None)
    column_type = getattr(column, "type", None)
    return (getattr(column_type, "precision", None), getattr(column_type, "scale", None)) == MONEY_SHAPE


def _decimal_formatter(view, value, name):
    if _money_column(view, name):
        return Markup(f'<span class="money">{format_money(value)}</span>')
    return str(value)


def _datetime_formatter(view, value, name):
    return format_when(value)


def type_formatters(base: dict) -> dict:
    return {**base, Decimal: _decimal_formatter, datetime: _datetime_formatter}


LIST_FORMATTERS = type_formatters(typefmt.BASE_FORMATTERS)
DETAIL_FORMATTERS = type_formatters(typefmt.DETAIL_FORMATTERS)


def init_formatting(app: Flask) -> None:
    app.jinja_env.filters["money"] = format_money
    app.jinja_env.filters["when"] = format_when


