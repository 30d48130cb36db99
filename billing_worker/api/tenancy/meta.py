"""Health and the OpenAPI document."""

from __future__ import annotations

from aiohttp import web

from billing_worker.api.http.openapi import build_openapi
from billing_worker.api.http.routes import router
from billing_worker.api.http.routing import Role, respond
from shared.runtime import package_version


@router.route("GET", "/healthz", summary="Liveness", role=Role.PUBLIC)
async def healthz(request: web.Request) -> web.Response:
    return respond({"status": "ok"})


@router.route("GET", "/openapi.json", summary="This API's OpenAPI 3.1 document", role=Role.PUBLIC)
async def openapi(request: web.Request) -> web.Response:
    server = str(request.url.origin())
    return respond(build_openapi(router.specs, version=package_version(), server=server))
