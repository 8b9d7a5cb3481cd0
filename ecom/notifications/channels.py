"""Delivery backends: email through ``console`` or ``smtp``, SMS through ``console``.

Backends take a plain settings mapping (the Flask config, or the environment
read by ``ecom.config.load_config``) so they work inside and outside Flask. Every
key is read as it is: the defaults live in ``load_config`` only.
"""

from __future__ import annotations

import contextlib
import logging
import smtplib
import threading
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


# One SMTP session per thread and server, kept open between messages: a worker
# delivering a batch says EHLO (and STARTTLS, AUTH) once, not once per email.
_smtp_sessions = threading.local()


def _send_smtp(settings: Mapping, message: EmailMessage) -> None:
    host, port = settings["SMTP_HOST"], int(settings["SMTP_PORT"])
    key = (host, port, bool(settings["SMTP_USE_TLS"]), settings["SMTP_USER"])
    try:
        smtp, reused = _smtp_session(settings, key)
        try:
            smtp.send_message(message)
        except smtplib.SMTPServerDisconnected:
            _drop_smtp_session(key)
            if not reused:
                raise
            # The server closed the idle session; nothing was accepted, so send on a new one.
            smtp, _ = _smtp_session(settings, key)
            smtp.send_message(message)
    except (smtplib.SMTPException, OSError) as exc:
        # OSError covers refused connections and timeouts; both are worth a retry.
        _drop_smtp_session(key)
        raise DeliveryFailed(f"SMTP {host}:{port}: {type(exc).__name__}: {exc}") from exc


def _smtp_session(settings: Mapping, key: tuple) -> tuple[smtplib.SMTP, bool]:
    """This thread's open session with the server (and whether it was open before), else a new one."""
    sessions = _smtp_sessions.__dict__.setdefault("by_key", {})
    if key in sessions:
        return sessions[key], True
    host, port, use_tls, user = key
    smtp = smtplib.SMTP(host, port, timeout=float(settings["SMTP_TIMEOUT_SECONDS"]))
    try:
        if use_tls:
            smtp.starttls()
        if user:
            smtp.login(user, settings["SMTP_PASSWORD"] or "")
    except BaseException:
        smtp.close()
        raise
    sessions[key] = smtp
    return smtp, False


def _drop_smtp_session(key: tuple) -> None:
    smtp = _smtp_sessions.__dict__.get("by_key", {}).pop(key, None)
    if smtp is not None:
        smtp.close()


def close_smtp_sessions() -> None:
    """Say QUIT on this thread's open SMTP sessions (a worker shutting down, tests)."""
    for key, smtp in list(_smtp_sessions.__dict__.get("by_key", {}).items()):
        with contextlib.suppress(smtplib.SMTPException, OSError):
            smtp.quit()
        _drop_smtp_session(key)
