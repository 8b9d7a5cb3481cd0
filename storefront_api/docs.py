"""``GET /api/v1/openapi.json`` and the Swagger UI at ``/api/v1/docs``, served locally (no CDN).

The UI is Swagger UI 5 (it reads OpenAPI 3.1; Swagger UI 4 answers "Unable to render
this definition"), from the pinned ``flask-openapi3-swagger`` package: only its static
files are used, nothing of flask-openapi3 is imported. The page carries no inline
script, so the docs' Content-Security-Policy (``shop.security_headers.DOCS_CSP``,
``script-src 'self'``) needs neither a nonce nor a hash.
"""

from __future__ import annotations

from pathlib import Path

import flask_openapi3_swagger
from flask import Response, abort, jsonify, send_from_directory, url_for

from storefront_api import api
from storefront_api.openapi import openapi_document

SWAGGER_ROOT = Path(flask_openapi3_swagger.__file__).parent / "templates" / "swagger"
# The files the page loads, by the flat name it loads them under; nothing else is served.
SWAGGER_ASSETS = {
    "swagger-ui.css": "css/swagger-ui.css",
    "swagger-ui-bundle.js": "js/swagger-ui-bundle.js",
    "swagger-ui-standalone-preset.js": "js/swagger-ui-standalone-preset.js",
    "swagger.svg": "images/swagger.svg",
}

SWAGGER_PAGE = """<!doctype html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <title>Storefront API</title>
  <link rel="icon" href="{icon}">
  <link rel="stylesheet" href="{css}">
</head>
<body>
  <div id="swagger-ui"></div>
  <script src="{bundle}"></script>
  <script src="{preset}"></script>
  <script src="{init}"></script>
</body>
</html>
"""

SWAGGER_INIT = """window.onload = function () {
  window.ui = SwaggerUIBundle({
    url: "%s",
    dom_id: "#swagger-ui",
    deepLinking: true,
    showExtensions: true,
    showCommonExtensions: true,
    presets: [SwaggerUIBundle.presets.apis, SwaggerUIStandalonePreset],
    plugins: [SwaggerUIBundle.plugins.DownloadUrl],
    layout: "StandaloneLayout"
  });
};
"""


@api.get("/openapi.json")
def openapi_json():
    return jsonify(openapi_document())


@api.get("/docs")
def swagger_ui():
    def asset(name: str) -> str:
        return url_for("api.swagger_asset", filename=name)

    page = SWAGGER_PAGE.format(
        icon=asset("swagger.svg"),
        css=asset("swagger-ui.css"),
        bundle=asset("swagger-ui-bundle.js"),
        preset=asset("swagger-ui-standalone-preset.js"),
        init=url_for("api.swagger_init"),
    )
    return Response(page, mimetype="text/html")


@api.get("/docs/swagger-initializer.js")
def swagger_init():
    return Response(SWAGGER_INIT % url_for("api.openapi_json"), mimetype="application/javascript")


@api.get("/docs/static/<path:filename>")
def swagger_asset(filename: str):
    if filename not in SWAGGER_ASSETS:
        abort(404)
    return send_from_directory(SWAGGER_ROOT, SWAGGER_ASSETS[filename], max_age=86400)
