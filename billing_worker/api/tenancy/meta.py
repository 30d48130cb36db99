"""Health, metrics and the OpenAPI document."""

from __future__ import annotations

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Gauge, generate_latest

from billing_worker.api.http.appkeys import SESSIONS
from billing_worker.api.http.openapi import build_openapi
from billing_worker.api.http.routes import router
from billing_worker.api.http.routing import Role, respond
from billing_worker.services import reports
from shared.runtime import package_version


@router.route("GET", "/healthz", summary="Liveness", role=Role.PUBLIC)
async def healthz(request: web.Request) -> web.Response:
    return respond({"status": "ok"})


@router.route("GET", "/openapi.json", summary="This API's OpenAPI 3.1 document", role=Role.PUBLIC)
async def openapi(request: web.Request) -> web.Response:
    server = str(request.url.origin())
    return respond(build_openapi(router.specs, version=package_version(), server=server))


@router.route(
    "GET",
    "/metrics",
    summary="Prometheus metrics: what waits for a person (parked accounts and payment "
    "events, charges whose outcome is unknown)",
    role=Role.PUBLIC,
    raw_response={"text/plain": {"schema": {"type": "string"}}},
)
async def metrics(request: web.Request) -> web.Response:
    registry = CollectorRegistry()
    async with request.app[SESSIONS]() as session:
        for name, text, count in await reports.waiting_for_a_person(session):
            Gauge(name, text, registry=registry).set(count)
    body = generate_latest(registry)
    return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})
