"""Invoice runs through the API: start one for the caller's tenant, watch its progress."""

from __future__ import annotations

from datetime import date, datetime

from aiohttp import web
from msgspec import Struct

from billing_worker.api.http.appkeys import CLOCK, INVOICE_RUNS_WAKE, SESSIONS
from billing_worker.api.http.auth import tenant_of
from billing_worker.api.http.bounds import TargetDate
from billing_worker.api.http.routes import router
from billing_worker.api.http.routing import Role, decode, respond
from billing_worker.api.http.schemas import Body
from billing_worker.db.models import InvoiceRun
from billing_worker.services import invoice_runs


class InvoiceRunCreate(Body):
    target_date: TargetDate | None = None


class InvoiceRunOut(Struct, kw_only=True):
    id: str
    status: str
    target_date: date | None
    total: int
    done: int
    invoices: int
    #: Accounts whose invoicing failed: parked (see ``GET /v1/parked``), the run went on.
    parked: int
    started_at: datetime
    finished_at: datetime | None


class InvoiceRunList(Struct, kw_only=True):
    data: list[InvoiceRunOut]


def run_view(run: InvoiceRun) -> InvoiceRunOut:
    return InvoiceRunOut(
        id=run.id,
        status=run.status,
        target_date=run.target_date,
        total=run.total,
        done=run.done,
        invoices=run.invoices,
        parked=run.parked,
        started_at=run.started_at,
        finished_at=run.finished_at,
    )


@router.route(
    "POST",
    "/v1/invoice-runs",
    summary="Invoice every due account of the tenant; the worker runs it in the background",
    role=Role.TENANT,
    request=InvoiceRunCreate,
    response=InvoiceRunOut,
    status=202,
)
async def create_run(request: web.Request) -> web.Response:
    body = await decode(request, InvoiceRunCreate)
    run = await invoice_runs.start(
        request.app[SESSIONS], request.app[CLOCK].now(), tenant_of(request), body.target_date
    )
    request.app[INVOICE_RUNS_WAKE].set()
    return respond(run_view(run), 202)


@router.route(
    "GET",
    "/v1/invoice-runs",
    summary="The tenant's invoice runs, newest first",
    role=Role.TENANT,
    response=InvoiceRunList,
)
async def list_runs(request: web.Request) -> web.Response:
    async with request.app[SESSIONS]() as session:
        runs = await invoice_runs.runs_of(session, tenant_of(request))
    return respond(InvoiceRunList(data=[run_view(r) for r in runs]))


@router.route(
    "GET",
    "/v1/invoice-runs/{run_id}",
    summary="One invoice run's progress: accounts done of total, invoices issued",
    role=Role.TENANT,
    response=InvoiceRunOut,
    errors=(404,),
)
async def read_run(request: web.Request) -> web.Response:
    async with request.app[SESSIONS]() as session:
        run = await invoice_runs.tenant_run(
            session, tenant_of(request), request.match_info["run_id"]
        )
    return respond(run_view(run))
