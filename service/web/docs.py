"""Swagger UI at ``/docs`` without the internet: its assets come from the ``fastapi-offline``
wheel and are served by Herald (``/docs/assets/``); a small script of ours starts it (the page's
CSP forbids inline scripts). ReDoc is not served."""

from __future__ import annotations

from html import escape
from pathlib import Path

import fastapi_offline
from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles

ASSETS_DIR = Path(fastapi_offline.__file__).with_name("static")
ASSETS_URL = "/docs/assets"
STATIC_URL = "/ui/static"

_PAGE = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title}</title>
<link rel="stylesheet" href="{assets}/swagger-ui.css">
<link rel="icon" href="{static}/favicon.svg">
</head>
<body>
<div id="swagger-ui" data-openapi-url="{openapi}"></div>
<script src="{assets}/swagger-ui-bundle.js"></script>
<script src="{static}/swagger-init.js"></script>
</body>
</html>
"""


def install_docs(app: FastAPI) -> None:
    """Serve ``/docs`` and its assets from this machine."""
    app.mount(ASSETS_URL, StaticFiles(directory=ASSETS_DIR), name="docs-assets")

    @app.get("/docs", include_in_schema=False)
    async def swagger_ui(request: Request) -> HTMLResponse:
        root = request.scope.get("root_path", "")
        html = _PAGE.format(
            title=escape(f"{app.title} API reference"),
            assets=escape(root + ASSETS_URL),
            static=escape(root + STATIC_URL),
            openapi=escape(root + (app.openapi_url or "/openapi.json")),
        )
        return HTMLResponse(html)
