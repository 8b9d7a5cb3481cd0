"""Security headers on every response: what a browser may load, frame, sniff, send and keep.

Flask-Talisman is not among the installed packages, so this is the small part of it we
need, in one after-request hook:

* ``X-Content-Type-Options: nosniff``, ``X-Frame-Options: DENY`` (and CSP
  ``frame-ancestors 'none'``), ``Referrer-Policy``; HSTS in production only (development
  and tests run on plain HTTP).
* A Content-Security-Policy per kind of page. The JSON API, /health and /metrics load
  nothing: ``default-src 'none'``. The simulated gateway's 3-D Secure page runs no script
  and has its inline style by nonce. The Swagger UI (/api/v1/docs) loads its own scripts and
  styles from this origin. The back office is strict: scripts only from this origin, inline
  ``<script>`` only with this response's nonce (Flask-Admin puts it on its own), and inline
  event handlers (Flask-Admin's ``onclick="return modelActions.execute('ship');"``, our
  confirm buttons) only if their exact text is one we know, by hash - an injected
  handler runs nowhere. Styles allow ``'unsafe-inline'``: Flask-Admin and our templates
  set ``style`` attributes, and a style cannot run code.
* ``Cache-Control: no-store`` on what is one person's: the back office, token responses,
  anything answered to a request carrying credentials, /me, orders, cart, checkout, /metrics.
  A view that sets its own Cache-Control keeps it.
"""

from __future__ import annotations

import base64
import hashlib
import secrets

from flask import Flask, Response, g, request
from flask_admin.model.fields import InlineFieldList
from wtforms.fields.core import UnboundField

PRODUCTION = "production"
HSTS = "max-age=31536000; includeSubDomains"
REFERRER_POLICY = "strict-origin-when-cross-origin"
NO_STORE = "no-store"

# Nothing to load: JSON, plain text.
API_CSP = "default-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"
# The Swagger UI: its bundle, stylesheet and initializer from this origin; it styles
# elements inline and draws icons from data: URLs.
DOCS_CSP = ("default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
            "img-src 'self' data:; object-src 'none'; base-uri 'none'; form-action 'self'; "
            "frame-ancestors 'none'")
# The simulated gateway's 3-D Secure page: no script at all, its inline style by nonce, its
# two forms posting to itself.
SIMULATOR_CSP = ("default-src 'none'; style-src 'nonce-{nonce}'; form-action 'self'; base-uri 'none'; "
                 "frame-ancestors 'none'")
# Product images may live on any HTTPS host (the catalog stores their URLs).
ADMIN_CSP = ("default-src 'self'; script-src 'self' 'nonce-{nonce}' 'unsafe-hashes' {handlers}; "
             "style-src 'self' 'unsafe-inline'; img-src 'self' data: https:; font-src 'self' data:; "
             "object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'")

# Inline event handlers the back office's pages carry, exactly as rendered (see
# admin_event_handlers for the ones that depend on the views).
STATIC_ADMIN_HANDLERS = (
    # Flask-Admin: the row's delete button, the filter menu's entries.
    "return faHelpers.safeConfirm('Are you sure you want to delete this record?');",
    "return false;",
    # admin/templates/admin: order_details.html, picklist.html and packing_slip.html.
    "return confirm('Cancel this order?')",
    "return confirm('Refund this payment?')",
    # order_details.html's goodwill refund, return_details.html's refund.
    "return confirm('Refund these lines?')",
    "return confirm('Refund this return?')",
    "return confirm('Close this return without a refund?')",
    "window.print()",
    # Flask-Admin's placeholder links (href="javascript:void(0)"), which browsers that
    # hash javascript: URLs under 'unsafe-hashes' then follow without a complaint.
    "javascript:void(0)",
)
PRIVATE_API_PATHS = ("/api/v1/auth/", "/api/v1/me", "/api/v1/orders", "/api/v1/cart", "/api/v1/checkout")
DOCS_PATH = "/api/v1/docs"
SIMULATOR_PATH = "/simulated-gateway/"
ADMIN_PATH = "/admin"


def admin_event_handlers(admin) -> list[str]:
    """Every inline handler Flask-Admin renders for ``admin``'s views: one per bulk action
    (``modelActions.execute``) and one per inline list's Add button, plus the fixed ones."""
    handlers = list(STATIC_ADMIN_HANDLERS)
    for view in admin._views:
        handlers += [f"return modelActions.execute('{name}');" for name, _ in getattr(view, "_actions", [])]
        forms = (getattr(view, "_create_form_class", None), getattr(view, "_edit_form_class", None))
        for form_class in forms:
            for name in dir(form_class) if form_class is not None else ():
                field = getattr(form_class, name, None)
                if isinstance(field, UnboundField) and issubclass(field.field_class, InlineFieldList):
                    handlers.append(f"faForm.addInlineField(this, '{name}');")
    return sorted(set(handlers))


def csp_hash(source: str) -> str:
    return "'sha256-" + base64.b64encode(hashlib.sha256(source.encode()).digest()).decode() + "'"


def csp_nonce() -> str:
    """This request's nonce (Flask-Admin asks for it per script tag)."""
    if "csp_nonce" not in g:
        new_nonce()
    return g.csp_nonce


def new_nonce() -> None:
    # Per request, not per app context: one app context may serve several requests (tests).
    g.csp_nonce = secrets.token_urlsafe(18)


def init_security_headers(app: Flask) -> None:
    """Install the header hook; call after the back office is registered."""
    admin = app.extensions["backoffice"]
    admin.csp_nonce_generator = csp_nonce
    handlers = " ".join(csp_hash(handler) for handler in admin_event_handlers(admin))
    app.before_request(new_nonce)

    @app.after_request
    def secure_headers(response: Response) -> Response:
        headers = response.headers
        headers.setdefault("X-Content-Type-Options", "nosniff")
        headers.setdefault("X-Frame-Options", "DENY")
        headers.setdefault("Referrer-Policy", REFERRER_POLICY)
        if app.config["ENV_NAME"] == PRODUCTION:
            headers.setdefault("Strict-Transport-Security", HSTS)
        path = request.path
        if path == ADMIN_PATH or path.startswith(ADMIN_PATH + "/"):
            csp = ADMIN_CSP.format(nonce=csp_nonce(), handlers=handlers)
            headers.setdefault("Content-Security-Policy", csp)
            private = request.endpoint != "admin.static"
        elif path.startswith(SIMULATOR_PATH):
            headers.setdefault("Content-Security-Policy", SIMULATOR_CSP.format(nonce=csp_nonce()))
            private = True
        elif path.startswith(DOCS_PATH):
            headers.setdefault("Content-Security-Policy", DOCS_CSP)
            private = False
        else:
            headers.setdefault("Content-Security-Policy", API_CSP)
            private = ("Authorization" in request.headers or path.startswith(PRIVATE_API_PATHS)
                       or path == "/metrics")
        if private and "Cache-Control" not in headers:
            headers["Cache-Control"] = NO_STORE
        return response
