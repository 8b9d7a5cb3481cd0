"""Delivery backends: email through ``console`` or ``smtp``, SMS through ``console``.

Backends take a plain settings mapping (the Flask config, or the environment
read by ``ecom.config.load_config``) so they work inside and outside Flask. Every
key is read as it is: the defaults live in ``load_config`` only.
"""

from __future__ import annotations

import logging
import smtplib
from collections.abc import Mapping
from email.message import EmailMessage
from email.utils import make_msgid

from ecom.notifications.rendering import EmailContent

log = logging.getLogger("ecom.notifications")


class DeliveryFailed(Exception):
    """A backend could not hand the message over; the caller records it and retries."""


def build_email(settings: Mapping, to: str, content: EmailContent) -> EmailMessage:
    message = EmailMessage()
    message["From"] = settings["MAIL_FROM"]
    message["To"] = to
    message["Subject"] = content.subject
    message["Message-ID"] = make_msgid(domain="ecom.local")
    message.set_content(content.text)
    message.add_alternative(content.html, subtype="html")
    return message


def send_email(settings: Mapping, to: str, content: EmailContent) -> None:
    """Deliver one email through MAIL_BACKEND. Raises DeliveryFailed, or ValueError for an unknown backend."""
    backend = settings["MAIL_BACKEND"].lower()
    if backend == "console":
        log.info("email to=%s subject=%s\n%s", to, content.subject, content.text)
    elif backend == "smtp":
        _send_smtp(settings, build_email(settings, to, content))
    else:
        raise ValueError(f"Unknown MAIL_BACKEND {backend!r} (expected 'console' or 'smtp').")


def send_sms(settings: Mapping, to: str, text: str) -> None:
    """Deliver one SMS through SMS_BACKEND. Raises ValueError for an unknown backend."""
    backend = settings["SMS_BACKEND"].lower()
    if backend != "console":
        raise ValueError(f"Unknown SMS_BACKEND {backend!r} (expected 'console').")
    log.info("sms to=%s text=%s", to, text)


def _send_smtp(settings: Mapping, message: EmailMessage) -> None:
    host, port = settings["SMTP_HOST"], int(settings["SMTP_PORT"])
    try:
        with smtplib.SMTP(host, port, timeout=float(settings["SMTP_TIMEOUT_SECONDS"])) as smtp:
            if settings["SMTP_USE_TLS"]:
                smtp.starttls()
            if settings["SMTP_USER"]:
                smtp.login(settings["SMTP_USER"], settings["SMTP_PASSWORD"] or "")
            smtp.send_message(message)
    except (smtplib.SMTPException, OSError) as exc:
        # OSError covers refused connections and timeouts; both are worth a retry.
        raise DeliveryFailed(f"SMTP {host}:{port}: {type(exc).__name__}: {exc}") from exc
