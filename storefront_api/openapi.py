"""Endpoint declaration, request validation and the OpenAPI 3.1 document.

How to add an endpoint
----------------------
Put the route in a module of ``storefront_api`` (imported by ``init_api``) and
stack ``@endpoint`` under the blueprint's route decorator::

    from storefront_api import api
    from storefront_api.openapi import endpoint
    from storefront_api.security import current_user

    class WidgetIn(RequestBody):          # storefront_api.schemas: strict, extra="forbid"
        name: str = Field(min_length=1, max_length=100)

    class WidgetOut(ApiModel):            # from_attributes: ORM objects work
        id: int
        name: str
        price: Money                      # -> "29.99"

    @api.post("/widgets")
    @endpoint(body=WidgetIn, response=WidgetOut, status=201, auth="required",
              tags=["widgets"], errors=[409], summary="Create a widget")
    def create_widget(body: WidgetIn):
        return make_widget(current_user(), name=body.name)   # a service in ecom/

What ``@endpoint`` does, so handlers stay thin:

- ``auth="required"`` resolves the bearer token (401 otherwise) and
  ``current_user()`` returns the user; ``auth="optional"`` accepts anonymous
  callers but still refuses a bad token.
- ``query=Model`` validates ``request.args`` into ``query=`` (400 with
  ``errors`` when malformed); ``body=Model`` validates the JSON body into
  ``body=`` (400 when it is not JSON, 422 with ``errors`` per field).
  ``raw_body=True`` only documents ``body``: the handler reads
  ``request.get_data()`` itself (to verify a signature over the exact bytes,
  say) and must refuse what the model does not describe.
- ``headers=[HeaderParam(...)]`` documents request headers; a longer value, or a
  missing ``required=True`` one, is 400 before the handler runs. A ``pattern``
  is documented only: the handler (or the service it calls) enforces it.
- The handler returns a pydantic instance, a dict or an ORM object (validated
  against ``response``), ``None`` (204), a ``(result, status)`` or
  ``(result, status, headers)`` tuple, or a ready ``flask.Response``.
  ``responses={202: OtherOut}`` documents other successful answers, which the
  handler returns ready-made as ``(OtherOut(...), 202)``.
- After the handler it renders, then commits the session once (rolled back by
  the error handlers on any exception). ``commit=False`` skips the commit.
- Paginated lists: ``query=PageQuery`` (or a subclass), ``response=Page[ItemOut]``
  and return ``paginate(select(...), page=query.page, per_page=query.per_page,
  render=item_out)`` from ``storefront_api.pagination``.
- Raise ``ecom.errors`` exceptions; ``storefront_api.errors`` maps them to
  status codes. List the non-obvious codes in ``errors=[...]`` so the OpenAPI
  document (``GET /api/v1/openapi.json``) declares them; 400/401/404/413/422 are
  added automatically where they can happen.
- Before the handler, every path segment and query value goes through one guard
  (``refuse_unusable_path_and_query``): an id beyond 32 bits or text with a NUL
  byte in the path is 404, such text in any query value 400. JSON bodies refuse
  NaN/Infinity and nesting deeper than ``shop.input_guard.MAX_JSON_DEPTH``.
"""

from __future__ import annotations

import inspect
import json
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from functools import wraps
from http import HTTPStatus
from typing import Any

from flask import Flask, Response, current_app, jsonify, request
from pydantic import BaseModel, ValidationError
from pydantic.json_schema import GenerateJsonSchema, models_json_schema

from ecom import __version__, unit_of_work
from ecom.db import storable_text
from ecom.errors import NotFound, ValidationFailed
from shop.input_guard import MAX_DB_INTEGER, all_storable, json_depth_exceeds
from storefront_api.errors import BadRequest
from storefront_api.openapi_guide import OVERVIEW, TAGS
from storefront_api.schemas import ErrorOut
from storefront_api.security import authenticate_request

NO_NUL = r"^[^\x00]*$"
REF_TEMPLATE = "#/components/schemas/{model}"


@dataclass(frozen=True)
class HeaderParam:
    name: str
    description: str = ""
    max_length: int = 128
    pattern: str | None = None  # JSON Schema regex (unanchored) the value must match
    required: bool = False
    answered: str = ""  # set when the success response carries the header too: what it holds there


@dataclass
class Operation:
    summary: str
    response: type[BaseModel] | None
    status: int
    body: type[BaseModel] | None
    query: type[BaseModel] | None
    auth: str
    tags: tuple[str, ...]
    errors: tuple[int, ...]
    headers: tuple[HeaderParam, ...]
    raw_body: bool = False
    description: str = ""
    operation_id: str = ""
    extra_responses: dict[int, type[BaseModel] | None] = field(default_factory=dict)


def endpoint(
    *,
    response: type[BaseModel] | None = None,
    status: int = 200,
    body: type[BaseModel] | None = None,
    raw_body: bool = False,
    query: type[BaseModel] | None = None,
    auth: str = "none",
    tags: Iterable[str] = (),
    errors: Iterable[int] = (),
    headers: Iterable[HeaderParam] = (),
    summary: str | None = None,
    commit: bool = True,
    responses: dict[int, type[BaseModel] | None] | None = None,
) -> Callable:
    """Declare, validate and render an API endpoint (see the module docstring)."""
    if auth not in {"none", "required", "optional"}:
        raise ValueError(f"auth must be none, required or optional, not {auth!r}")

    def decorate(view: Callable) -> Callable:
        # Dedented: the document's descriptions are Markdown, where an indented line is code.
        doc = inspect.cleandoc(view.__doc__ or "")
        operation = Operation(
            summary=summary or (doc.splitlines()[0] if doc else view.__name__.replace("_", " ")),
            description=doc,
            response=response,
            status=status,
            body=body,
            query=query,
            auth=auth,
            tags=tuple(tags),
            errors=tuple(errors),
            headers=tuple(headers),
            raw_body=raw_body,
            operation_id=view.__name__,
            extra_responses=dict(responses or {}),
        )

        @wraps(view)
        def wrapper(*args, **kwargs):
            refuse_unusable_path_and_query(kwargs)
            _check_headers(operation.headers)
            if auth != "none":
                authenticate_request(required=auth == "required")
            if query is not None:
                kwargs["query"] = parse_query(query)
            if body is not None and not raw_body:
                kwargs["body"] = parse_body(body)
            rendered = render(view(*args, **kwargs), operation)
            if commit:
                unit_of_work.commit()
            return rendered

        wrapper.api_operation = operation
        return wrapper

    return decorate


def _check_headers(headers: tuple[HeaderParam, ...]) -> None:
    errors = {}
    for header in headers:
        value = request.headers.get(header.name)
        if value is None and header.required:
            errors[header.name] = ["Required."]
        elif value is not None and len(value) > header.max_length:
            errors[header.name] = [f"At most {header.max_length} characters."]
    if errors:
        raise BadRequest("Malformed request headers.", errors)


def refuse_unusable_path_and_query(path_args: dict) -> None:
    """The one guard of every endpoint's path and query, before anything reads the database.

    A path segment naming nothing storable (an id no integer column holds, text with a NUL
    byte or a lone surrogate) is 404; a query value or name with such text is 400, whether
    or not the endpoint declares the parameter. Raises NotFound, BadRequest.
    """
    for value in path_args.values():
        if isinstance(value, int) and not 0 <= value <= MAX_DB_INTEGER:
            raise NotFound("Not found.")
        if isinstance(value, str) and not storable_text(value):
            raise NotFound("Not found.")
    bad = sorted(name for name, values in request.args.lists()
                 if not storable_text(name) or not all_storable(values))
    if bad:
        raise BadRequest("Malformed query parameters.",
                         {repr(name)[1:-1]: ["Contains characters that are not allowed."] for name in bad})


# --- request parsing -------------------------------------------------------


def _nul_errors(value: Any, path: str = "") -> dict[str, list[str]]:
    """Strings PostgreSQL cannot store (NUL bytes, lone surrogates), by field path."""
    found: dict[str, list[str]] = {}
    if isinstance(value, str):
        if not storable_text(value):
            found[path or "body"] = ["Contains characters that are not allowed."]
    elif isinstance(value, dict):
        for key, item in value.items():
            found.update(_nul_errors(key, path or "body"))
            found.update(_nul_errors(item, f"{path}.{key}" if path else str(key)))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            found.update(_nul_errors(item, f"{path}.{index}" if path else str(index)))
    return found


def _refuse_constant(name: str):
    # NaN and Infinity are not JSON (RFC 8259), though Python's parser accepts them.
    raise ValueError(f"{name} is not a JSON number")


def _finite_float(text: str) -> float:
    number = float(text)
    if number in (float("inf"), float("-inf")):
        raise ValueError(f"{text} is out of range")  # 1e400 parses as infinity
    return number


def validation_errors(error: ValidationError, root: str = "body") -> dict[str, list[str]]:
    errors: dict[str, list[str]] = {}
    for item in error.errors():
        location = ".".join(str(part) for part in item["loc"]) or root
        errors.setdefault(location, []).append(item["msg"])
    return errors


def parse_query(model: type[BaseModel], args=None) -> BaseModel:
    """``args`` (``request.args`` unless given: the catalog's page layer parses before Flask
    runs) as ``model``. Raises BadRequest (400) with per-parameter errors."""
    raw = (request.args if args is None else args).to_dict(flat=True)
    bad = _nul_errors(raw)
    if bad:
        raise BadRequest("Malformed query parameters.", bad)
    try:
        return model.model_validate(raw)
    except ValidationError as exc:
        raise BadRequest("Malformed query parameters.", validation_errors(exc, "query")) from exc


def parse_body(model: type[BaseModel]) -> BaseModel:
    """The JSON body as ``model``.

    Raises BadRequest (400) when the body is not JSON, ValidationFailed (422)
    when it is JSON that breaks the model.
    """
    if not request.is_json:
        raise BadRequest("The request body must be JSON (Content-Type: application/json).")
    try:
        data = json.loads(request.get_data(as_text=True) or "", parse_constant=_refuse_constant,
                          parse_float=_finite_float)
    except RecursionError as exc:
        raise BadRequest("The request body is nested too deeply.") from exc
    except (ValueError, UnicodeDecodeError) as exc:
        raise BadRequest("The request body is not valid JSON.") from exc
    if json_depth_exceeds(data):
        raise BadRequest("The request body is nested too deeply.")
    bad = _nul_errors(data)
    if bad:
        raise ValidationFailed("Validation failed.", bad)
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise ValidationFailed("Validation failed.", validation_errors(exc)) from exc


# --- response rendering ----------------------------------------------------


def render(result: Any, operation: Operation) -> Response:
    if isinstance(result, Response):
        return result
    status, headers = operation.status, {}
    if isinstance(result, tuple):
        result, *rest = result
        for part in rest:
            if isinstance(part, int):
                status = part
            elif isinstance(part, dict):
                headers = part
    if result is None:
        response = Response(status=204)
    else:
        if not isinstance(result, BaseModel):
            result = operation.response.model_validate(result)
        response = jsonify(result.model_dump(mode="json", exclude_none=False))
        response.status_code = status
    for name, value in headers.items():
        response.headers[name] = value
    return response


# --- the OpenAPI document --------------------------------------------------

_CONVERTER = re.compile(r"<(?:(?P<converter>[a-z]+)(?:\([^)]*\))?:)?(?P<name>\w+)>")


def openapi_path(rule: str) -> tuple[str, list[dict]]:
    parameters = []
    for match in _CONVERTER.finditer(rule):
        kind = match.group("converter") or "string"
        schema = {"type": "integer", "minimum": 0} if kind == "int" else {"type": "string"}
        parameters.append({"name": match.group("name"), "in": "path", "required": True, "schema": schema})
    return _CONVERTER.sub(lambda m: "{" + m.group("name") + "}", rule), parameters


def _without_null(schema: dict) -> dict:
    options = schema.get("anyOf")
    if not options:
        return schema
    rest = [option for option in options if option.get("type") != "null"]
    if len(rest) == 1:
        merged = {k: v for k, v in schema.items() if k != "anyOf"}
        merged.update(rest[0])
        merged.pop("default", None) if merged.get("default") is None else None
        return merged
    return dict(schema, anyOf=rest)


class RequestAwareJsonSchema(GenerateJsonSchema):
    """Declares what ``parse_body``/``parse_query`` refuse: NUL characters in request strings."""

    def str_schema(self, schema):
        result = super().str_schema(schema)
        if self.mode == "validation" and "pattern" not in result:
            result["pattern"] = NO_NUL
        return result


def _operations(app: Flask):
    for rule in app.url_map.iter_rules():
        view = app.view_functions.get(rule.endpoint)
        operation = getattr(view, "api_operation", None)
        if operation is not None:
            yield rule, operation


def build_openapi(app: Flask) -> dict:
    """The OpenAPI 3.1 document of every ``@endpoint`` the app serves."""
    operations = list(_operations(app))
    models: set[tuple[type[BaseModel], str]] = {(ErrorOut, "serialization")}
    for _, op in operations:
        if op.response is not None:
            models.add((op.response, "serialization"))
        models.update((model, "serialization") for model in op.extra_responses.values() if model is not None)
        for model in (op.body, op.query):
            if model is not None:
                models.add((model, "validation"))
    key_map, definitions = models_json_schema(
        sorted(models, key=lambda pair: (pair[0].__name__, pair[1])),
        ref_template=REF_TEMPLATE,
        schema_generator=RequestAwareJsonSchema,
    )
    components = definitions.get("$defs", {})

    def component(model, mode) -> dict:
        reference = key_map[(model, mode)]
        return components[reference["$ref"].rsplit("/", 1)[-1]]

    paths: dict[str, dict] = {}
    for rule, op in sorted(operations, key=lambda pair: pair[0].rule):
        path, path_params = openapi_path(rule.rule)
        for method in sorted((rule.methods or set()) - {"HEAD", "OPTIONS"}):
            operation = _operation_object(op, path_params, key_map, component)
            operation["operationId"] = rule.endpoint.replace(".", "_") + (
                "" if len(rule.methods - {"HEAD", "OPTIONS"}) == 1 else f"_{method.lower()}"
            )
            paths.setdefault(path, {})[method.lower()] = operation
    return {
        "openapi": "3.1.0",
        "info": {"title": "Storefront API", "version": __version__, "description": OVERVIEW},
        "servers": [{"url": "/"}],
        "tags": TAGS,
        "paths": paths,
        "components": {
            "schemas": components,
            "headers": RESPONSE_HEADERS,
            "securitySchemes": {"bearerAuth": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"}},
        },
    }


RESPONSE_HEADERS = {
    "X-Request-ID": {
        "description": "This request's id (a well-formed incoming X-Request-ID is echoed).",
        "schema": {"type": "string", "maxLength": 128},
    },
    "Retry-After": {"description": "Seconds to wait before trying again.",
                    "schema": {"type": "string", "pattern": "^[0-9]+$"}},
}


def _headers(*names: str) -> dict:
    return {name: {"$ref": f"#/components/headers/{name}"} for name in names}


def _operation_object(op: Operation, path_params, key_map, component) -> dict:
    error_ref = key_map[(ErrorOut, "serialization")]
    parameters = list(path_params)
    if op.query is not None:
        schema = component(op.query, "validation")
        required = set(schema.get("required", []))
        for name, prop in schema.get("properties", {}).items():
            parameters.append(
                {"name": name, "in": "query", "required": name in required, "schema": _without_null(prop)}
            )
    for header in op.headers:
        parameters.append(
            {
                "name": header.name,
                "in": "header",
                "required": header.required,
                "description": header.description,
                "schema": {"type": "string", "maxLength": header.max_length,
                           **({"pattern": header.pattern} if header.pattern else {})},
            }
        )
    responses: dict[str, dict] = {}
    success: dict[str, Any] = {"description": HTTPStatus(op.status).phrase,
                               "headers": _headers("X-Request-ID")}
    for header in op.headers:
        if header.answered:
            success["headers"][header.name] = {"description": header.answered,
                                               "schema": {"type": "string", "maxLength": header.max_length}}
    if op.status != 204 and op.response is not None:
        success["content"] = {"application/json": {"schema": key_map[(op.response, "serialization")]}}
    responses[str(op.status)] = success
    # Other successful answers (``responses=`` of ``@endpoint``): 202 for a payment in progress.
    for code, model in sorted(op.extra_responses.items()):
        responses[str(code)] = {"description": HTTPStatus(code).phrase, "headers": _headers("X-Request-ID")}
        if model is not None:
            responses[str(code)]["content"] = {
                "application/json": {"schema": key_map[(model, "serialization")]}}
    error_codes = set(op.errors)
    if op.query is not None or op.body is not None or op.headers:
        error_codes.add(400)
    if op.body is not None and not op.raw_body:
        error_codes.add(422)
    if op.body is not None:
        error_codes.add(413)  # a body over MAX_REQUEST_BYTES
    if op.auth != "none":
        error_codes.add(401)
    if path_params or op.headers:
        error_codes.add(404)
    for code in sorted(error_codes):
        responses[str(code)] = {
            "description": HTTPStatus(code).phrase,
            "headers": _headers("X-Request-ID", "Retry-After") if code == 429 else _headers("X-Request-ID"),
            "content": {"application/json": {"schema": error_ref}},
        }
    result: dict[str, Any] = {
        "summary": op.summary,
        "tags": list(op.tags),
        "parameters": parameters,
        "responses": responses,
    }
    if op.description and op.description != op.summary:
        result["description"] = op.description
    if op.body is not None:
        result["requestBody"] = {
            "required": True,
            "content": {"application/json": {"schema": key_map[(op.body, "validation")]}},
        }
    if op.auth == "required":
        result["security"] = [{"bearerAuth": []}]
    elif op.auth == "optional":
        result["security"] = [{}, {"bearerAuth": []}]
    return result


def openapi_document() -> dict:
    cache = current_app.extensions.setdefault("storefront_openapi", {})
    if "document" not in cache:
        cache["document"] = build_openapi(current_app)
    return cache["document"]
