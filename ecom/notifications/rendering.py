"""Rendering notifications from the Jinja2 templates in ``templates/``.

Each event type has ``email/<type>.txt`` (which also sets ``subject``),
``email/<type>.html`` and ``sms/<type>.txt``. Payloads come from several
writers, so templates treat every field as optional rather than failing.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from pathlib import Path

from jinja2 import Environment, FileSystemLoader, select_autoescape

from ecom.notifications.models import EventType

TEMPLATES = Path(__file__).resolve().parent / "templates"


@dataclass(frozen=True)
class EmailContent:
    subject: str
    text: str
    html: str


@cache
def _environment() -> Environment:
    return Environment(
        loader=FileSystemLoader(str(TEMPLATES)),
        autoescape=select_autoescape(enabled_extensions=("html",), default_for_string=False),
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
        # The templates ship with the code: no stat() of the file on every lookup.
        auto_reload=False,
    )


def template_context(data: dict, *, shop_name: str) -> dict:
    """The payload's fields, plus the few derived values every template uses."""
    context = dict(data)
    context["data"] = data
    context["currency"] = str(data.get("currency") or "usd").upper()
    context["items"] = data.get("items") or []
    context["shop_name"] = shop_name
    context.setdefault("customer_name", data.get("customer_name") or data.get("full_name") or "")
    context.setdefault("threshold", data.get("low_stock_threshold"))
    return context


def render_email(event_type: EventType | str, data: dict, *, shop_name: str) -> EmailContent:
    """Subject, plain text and HTML of the email for one event, signed ``shop_name`` (the SHOP_NAME
    setting). Raises ValueError for an unknown type."""
    name = EventType(event_type).value.lower()
    env = _environment()
    context = template_context(data, shop_name=shop_name)
    # One rendering of the text template gives both its body and the subject it sets.
    text_module = env.get_template(f"email/{name}.txt").make_module(context)
    subject = " ".join(str(text_module.subject).split())
    text = str(text_module).strip() + "\n"
    html = env.get_template(f"email/{name}.html").render(context, subject=subject)
    return EmailContent(subject=subject, text=text, html=html)


def render_sms(event_type: EventType | str, data: dict, *, shop_name: str) -> str:
    """The one-line SMS for one event. Raises ValueError for an unknown type."""
    name = EventType(event_type).value.lower()
    context = template_context(data, shop_name=shop_name)
    return " ".join(_environment().get_template(f"sms/{name}.txt").render(context).split())
