"""Health, metrics and the OpenAPI document."""

from __future__ import annotations

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Gauge, generate_latest
from sqlalchemy import func, select

from billing_worker.api.http.appkeys import SESSIONS
from billing_worker.api.http.openapi import build_openapi
from billing_worker.api.http.routes import router
from billing_worker.api.http.routing import Role, respond
from billing_worker.db.models import Account, PaymentAttempt, PaymentEvent
from billing_worker.domain.statuses import UNSETTLED
from shared.runtime import package_version

#: What needs a person, counted at each scrape (platform-wide: no tenant is named).
_GAUGES = {
    "tollgate_worker_parked_accounts": (
        "Accounts set aside until released (processing failed, or a charge's outcome "
        "could not be learned).",
        select(func.count()).select_from(Account).where(Account.parked_at.is_not(None)),
    ),
    "tollgate_worker_parked_payment_events": (
        "Payment events set aside until released.",
        select(func.count()).select_from(PaymentEvent).where(PaymentEvent.parked_at.is_not(None)),
    ),
    "tollgate_worker_unsettled_charges": (
        "Charges made whose outcome is not known yet (pending or unknown).",
        select(func.count())
        .select_from(PaymentAttempt)
        .where(PaymentAttempt.status.in_(UNSETTLED)),
    ),
}


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
        for name, (text, query) in _GAUGES.items():
            Gauge(name, text, registry=registry).set(int(await session.scalar(query) or 0))
    body = generate_latest(registry)
    return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})
