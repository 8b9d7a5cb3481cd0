"""JSON error responses for the API: ``{"detail": ...}`` and never an HTML page.

Domain errors (``ecom.errors``) map to the contract's status codes here, in one
table, so handlers simply let them propagate. ``GatewayUnavailable(...,
status=502)`` answers 502 (the gateway answered with an error) instead of 503;
``OutOfStock`` adds ``shortages: {sku: available}`` next to ``detail``.
"""

from __future__ import annotations

import logging

from flask import Flask, jsonify, request
from sqlalchemy.exc import IntegrityError, OperationalError
from werkzeug.exceptions import HTTPException

from ecom.errors import (
    AuthenticationFailed,
    Conflict,
    EcomError,
    GatewayUnavailable,
    NotFound,
    OutOfStock,
    PaymentDeclined,
    PermissionDenied,
    ValidationFailed,
)
from ecom.extensions import db

log = logging.getLogger(__name__)

API_PREFIX = "/api/v1"

# Most specific first: the first isinstance match wins.
STATUS_FOR_ERROR: list[tuple[type[EcomError], int]] = [
    (NotFound, 404),
    (ValidationFailed, 422),
    (AuthenticationFailed, 401),
    (PermissionDenied, 403),
    (Conflict, 409),
    (PaymentDeclined, 402),
    (GatewayUnavailable, 503),
]


class BadRequest(EcomError):
    """The request itself is malformed: a body that is not JSON, a bad query parameter."""

    def __init__(self, message: str, errors: dict[str, list[str]] | None = None):
        super().__init__(message)
        self.errors = errors or {}


def error_response(status: int, detail: str, errors: dict | None = None, headers: dict | None = None):
    body: dict = {"detail": detail}
    if errors:
        body["errors"] = errors
    response = jsonify(body)
    response.status_code = status
    for name, value in (headers or {}).items():
        response.headers[name] = value
    return response


def status_for(error: EcomError) -> int:
    if isinstance(error, BadRequest):
        return 400
    for kind, status in STATUS_FOR_ERROR:
        if isinstance(error, kind):
            return status
    return 400


def handle_ecom_error(error: EcomError):
    db.session.rollback()
    status = status_for(error)
    if isinstance(error, GatewayUnavailable) and error.extra.get("status") == 502:
        status = 502  # the gateway answered with an error, rather than not at all
    headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
    response = error_response(status, error.message, getattr(error, "errors", None), headers)
    if isinstance(error, OutOfStock):
        response.set_data(jsonify(dict(response.get_json(), shortages=error.shortages)).get_data())
    return response


def handle_http_exception(error: HTTPException):
    db.session.rollback()
    response = error_response(error.code or 500, _http_detail(error))
    if error.code == 405 and error.valid_methods:
        response.headers["Allow"] = ", ".join(error.valid_methods)
    if error.response is not None:  # e.g. Flask-Limiter's prepared 429 carries headers
        for name in ("Retry-After",):
            if name in error.response.headers:
                response.headers[name] = error.response.headers[name]
    return response


def _http_detail(error: HTTPException) -> str:
    if error.code == 404:
        return "Not found."
    if error.code == 405:
        return f"Method {request.method} is not allowed here."
    if error.code == 429:
        return f"Too many requests ({error.description}); try again later."
    if error.code == 400:
        return "Malformed request."
    if error.code == 413:
        limit = request.max_content_length
        return f"The request body is too large (at most {limit} bytes)." if limit else "Too large."
    return error.description or error.name


def handle_integrity_error(error: IntegrityError):
    # A race the Python checks could not see (two requests creating the same
    # unique thing at once): the database refused, so the client gets a 409.
    db.session.rollback()
    log.warning("integrity error mapped to 409: %s", error.orig)
    return error_response(409, "The request conflicts with existing data.")


def handle_operational_error(error: OperationalError):
    db.session.rollback()
    log.exception("database unavailable")
    return error_response(503, "The service is temporarily unavailable.")


def handle_unexpected(error: Exception):
    db.session.rollback()
    log.exception("unhandled error in the API")
    return error_response(500, "Internal server error.")


def register_blueprint_handlers(blueprint) -> None:
    """JSON errors for everything the blueprint's views raise (called once, at import)."""
    blueprint.register_error_handler(EcomError, handle_ecom_error)
    blueprint.register_error_handler(HTTPException, handle_http_exception)
    blueprint.register_error_handler(IntegrityError, handle_integrity_error)
    blueprint.register_error_handler(OperationalError, handle_operational_error)
    blueprint.register_error_handler(Exception, handle_unexpected)


def register_app_handlers(app: Flask) -> None:
    """404/405 as JSON for /api/v1 paths no route matches."""

    def unmatched_api_path(error: HTTPException):
        # Routing errors have no blueprint, so the blueprint's handlers never see them.
        if request.path == API_PREFIX or request.path.startswith(API_PREFIX + "/"):
            return handle_http_exception(error)
        return error

    app.register_error_handler(404, unmatched_api_path)
    app.register_error_handler(405, unmatched_api_path)
