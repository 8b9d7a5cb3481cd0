"""``GET /api/v1/openapi.json`` and the Swagger UI at ``/api/v1/docs``, served locally (no CDN)."""

from __future__ import annotations

from flask import Response, jsonify, send_from_directory, url_for
from swagger_ui_bundle import swagger_ui_path

from storefront_api import api
from storefront_api.openapi import openapi_document

SWAGGER_PAGE = """<!doctype html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <title>Storefront API</title>
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
    presets: [SwaggerUIBundle.presets.apis, SwaggerUIStandalonePreset],
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
    return send_from_directory(swagger_ui_path, filename, max_age=86400)
