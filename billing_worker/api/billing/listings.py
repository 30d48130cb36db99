"""The tenant's ledgers across accounts: invoices filtered by status, account and date, and
payments, newest first, a page at a time; one payment; the plans on sale today."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date
from decimal import Decimal
from typing import Any

from aiohttp import web
from msgspec import Struct

from billing_worker.api.customers.directory import page_size
from billing_worker.api.http import schemas
from billing_worker.api.http.appkeys import CLOCK, SESSIONS
from billing_worker.api.http.auth import tenant_of
from billing_worker.api.http.routes import router
from billing_worker.api.http.routing import Role, respond
from billing_worker.api.http.views import invoice_view, payment_row
from billing_worker.domain.catalog import DurationUnit, Phase, Plan
from billing_worker.invoicing.catalogs import NoCatalog, load_book
from billing_worker.services import invoices, payments
from billing_worker.services.errors import FieldError, InvalidRequest, NotFound
from shared.money import Money

INVOICE_STATUSES = ("draft", "open", "paid", "void", "written_off")


class InvoicePage(Struct, kw_only=True):
    data: list[schemas.InvoiceOut]
    #: Pass as ``after`` for the next page; null on the last one.
    next: str | None


class PaymentPage(Struct, kw_only=True):
    data: list[schemas.PaymentRow]
    next: str | None


class PlanPhase(Struct, kw_only=True):
    type: str
    #: ``{"unit": "days", "number": 14}``; ``{"unit": "unlimited"}`` for the last phase.
    duration: dict[str, Any]
    fixed: dict[str, str] | None
    recurring: dict[str, str] | None
    usages: list[str]


class PlanOnSale(Struct, kw_only=True):
    code: str
    product: str
    billing_period: str
    billing_mode: str
    per_seat: bool
    features: list[str]
    seat_limit: int | None
    phases: list[PlanPhase]


class PlanList(Struct, kw_only=True):
    #: The catalog version these plans come from (the one in force today).
    effective_date: date
    data: list[PlanOnSale]


def _day(query: Mapping[str, str], name: str, problems: list[FieldError]) -> date | None:
    if name not in query:
        return None
    try:
        return date.fromisoformat(query[name])
    except ValueError:
        problems.append(FieldError(name, "must be a date such as 2027-01-31"))
        return None


@router.route(
    "GET",
    "/v1/invoices",
    summary="The tenant's invoices, newest first, a page at a time (?limit=1..100, "
    "?after=<invoice id>), filtered by ?status=, ?account_id=, ?from= and ?to= (invoice "
    "dates, inclusive)",
    role=Role.TENANT,
    response=InvoicePage,
    errors=(422,),
)
async def list_invoices(request: web.Request) -> web.Response:
    limit, query, tenant_id = page_size(request), request.query, tenant_of(request)
    problems: list[FieldError] = []
    status = query.get("status")
    if status is not None and status not in INVOICE_STATUSES:
        problems.append(FieldError("status", f"one of {', '.join(INVOICE_STATUSES)}"))
    since, until = _day(query, "from", problems), _day(query, "to", problems)
    if since and until and since > until:
        problems.append(FieldError("to", "must not be before from"))
    wanted = invoices.InvoiceFilter(status, query.get("account_id"), since, until)
    async with request.app[SESSIONS]() as session:
        cursor = None
        if "after" in query:
            cursor = await invoices.tenant_invoice_row(session, tenant_id, query["after"])
            if cursor is None:
                problems.append(FieldError("after", "is not an invoice of this tenant"))
        if problems:
            raise InvalidRequest.fields(problems)
        page, more = await invoices.invoices_page(
            session, tenant_id, wanted, after=cursor, limit=limit
        )
    data = [invoice_view(i, items) for i, items in page]
    return respond(InvoicePage(data=data, next=data[-1].id if more else None))


@router.route(
    "GET",
    "/v1/payments",
    summary="The tenant's payments received, newest first, a page at a time (?limit=1..100, "
    "?after=<payment id>), filtered by ?account_id=",
    role=Role.TENANT,
    response=PaymentPage,
    errors=(422,),
)
async def list_payments(request: web.Request) -> web.Response:
    limit, query = page_size(request), request.query
    async with request.app[SESSIONS]() as session:
        page, more = await payments.payments_page(
            session, tenant_of(request), account_id=query.get("account_id"),
            after=query.get("after"), limit=limit,
        )  # fmt: skip
    return respond(
        PaymentPage(data=[payment_row(p) for p in page], next=page[-1].id if more else None)
    )


@router.route(
    "GET",
    "/v1/payments/{payment_id}",
    summary="One payment received",
    role=Role.TENANT,
    response=schemas.PaymentRow,
    errors=(404,),
)
async def get_payment(request: web.Request) -> web.Response:
    async with request.app[SESSIONS]() as session:
        payment = await payments.tenant_payment(
            session, tenant_of(request), request.match_info["payment_id"]
        )
    return respond(payment_row(payment))


def _prices(prices: Mapping[str, Decimal] | None) -> dict[str, str] | None:
    if prices is None:
        return None
    return {currency: Money(amount, currency).quantize().format() for currency, amount in
            prices.items()}  # fmt: skip


def _phase_out(phase: Phase) -> PlanPhase:
    duration: dict[str, Any] = {"unit": phase.duration.unit.value}
    if phase.duration.unit is not DurationUnit.UNLIMITED:
        duration["number"] = phase.duration.number
    return PlanPhase(
        type=phase.type.value,
        duration=duration,
        fixed=_prices(phase.fixed),
        recurring=_prices(phase.recurring),
        usages=[u.name for u in phase.usages],
    )


def _plan_out(plan: Plan) -> PlanOnSale:
    return PlanOnSale(
        code=plan.name,
        product=plan.product,
        billing_period=plan.billing_period.value,
        billing_mode=plan.billing_mode.value,
        per_seat=plan.per_seat,
        features=list(plan.entitlement.features),
        seat_limit=plan.entitlement.seat_limit,
        phases=[_phase_out(p) for p in plan.phases],
    )


@router.route(
    "GET",
    "/v1/plans",
    summary="The plans on sale today (the catalog version in force), each with its phases and "
    "default prices; the whole document is GET /v1/catalog",
    role=Role.TENANT,
    response=PlanList,
    errors=(404,),
)
async def list_plans(request: web.Request) -> web.Response:
    async with request.app[SESSIONS]() as session:
        book = await load_book(session, tenant_of(request))
    try:
        catalog = book.at(request.app[CLOCK].now().date())
    except NoCatalog as exc:
        raise NotFound(str(exc)) from exc
    plans = sorted(catalog.plans.values(), key=lambda p: p.name)
    return respond(PlanList(effective_date=catalog.effective_date,
                            data=[_plan_out(p) for p in plans]))  # fmt: skip
