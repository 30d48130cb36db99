"""The console's catalog page: the newest version as plans, phases and prices; the versions
before it; and an upload, sent to ``PUT /v1/catalog`` so a refused document shows the
API's errors by path."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import aiohttp_jinja2
from aiohttp import web

from billing_worker.api.console.signin import signed_in
from billing_worker.api.http.appkeys import SESSIONS
from billing_worker.db.models import Tenant
from billing_worker.domain.catalog import (
    CatalogError,
    DurationUnit,
    Phase,
    Plan,
    Prices,
    parse_catalog,
)
from billing_worker.invoicing.catalogs import catalog_history

routes = web.RouteTableDef()
_PER = {"daily": "day", "weekly": "week", "monthly": "month", "quarterly": "quarter",
        "annual": "year"}  # fmt: skip


@dataclass(frozen=True, slots=True)
class PhaseRow:
    type: str
    duration: str
    prices: str


@dataclass(frozen=True, slots=True)
class PlanRow:
    name: str
    product: str
    period: str
    per_seat: bool
    features: list[str]
    seat_limit: int | None
    phases: list[PhaseRow]


def _prices(prices: Prices | None, what: str) -> list[str]:
    return [f"{currency} {amount} {what}" for currency, amount in sorted((prices or {}).items())]


def _phase(phase: Phase, period: str) -> PhaseRow:
    unit, number = phase.duration.unit, phase.duration.number
    if unit is DurationUnit.UNLIMITED:
        duration = "for good"
    else:
        duration = f"{number} {unit.value if number != 1 else unit.value.rstrip('s')}"
    usages = [f"usage: {u.name} ({u.kind.value})" for u in phase.usages]
    prices = _prices(phase.fixed, "once") + _prices(phase.recurring, f"per {period}") + usages
    return PhaseRow(phase.type.value, duration, ", ".join(prices) or "free")


def _plan(plan: Plan) -> PlanRow:
    period = _PER.get(plan.billing_period.value, plan.billing_period.value)
    return PlanRow(
        name=plan.name,
        product=plan.product,
        period=plan.billing_period.value,
        per_seat=plan.per_seat,
        features=list(plan.entitlement.features),
        seat_limit=plan.entitlement.seat_limit,
        phases=[_phase(phase, period) for phase in plan.phases],
    )


@routes.get("/console/catalog")
async def catalog_page(request: web.Request) -> web.StreamResponse:
    found = await signed_in(request)
    async with request.app[SESSIONS]() as session:
        tenant = await session.get(Tenant, found.tenant_id)
        history = await catalog_history(session, str(found.tenant_id))
    versions, count, newest = history.versions, history.count, history.newest
    context: dict[str, Any] = {
        "session": found, "tenant": tenant, "path": request.path, "versions": versions,
        "count": count, "plans": [], "newest": newest,
    }  # fmt: skip
    if newest is not None:
        try:
            catalog = parse_catalog(newest.document)
        except CatalogError:  # stored before a rule it breaks existed: shown as a document
            catalog = None
        if catalog is not None:
            context["plans"] = [_plan(catalog.plans[name]) for name in sorted(catalog.plans)]
            context["currencies"] = list(catalog.currencies)
    return aiohttp_jinja2.render_template("catalog.html", request, context)
