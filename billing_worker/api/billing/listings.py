"""The tenant's ledgers across accounts: invoices filtered by status, account and date, and
payments, newest first, a page at a time; one payment; the plans on sale today."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date
from decimal import Decimal
from typing import Any

from aiohttp import web
from msgspec import Struct
from sqlalchemy import and_, or_, select

from billing_worker.api.customers.directory import page_size
from billing_worker.api.http import schemas
from billing_worker.api.http.appkeys import CLOCK, SESSIONS
from billing_worker.api.http.auth import tenant_of
from billing_worker.api.http.routes import router
from billing_worker.api.http.routing import Role, respond
from billing_worker.api.http.views import invoice_view, payment_row
from billing_worker.db.models import Invoice, Payment
from billing_worker.domain.catalog import DurationUnit, Phase, Plan
from billing_worker.invoicing.catalogs import NoCatalog, load_book
from billing_worker.services.errors import FieldError, InvalidRequest, NotFound
from billing_worker.services.invoices import items_of
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
    where: list[Any] = [Invoice.tenant_id == tenant_id]
    problems: list[FieldError] = []
    if "status" in query:
        if query["status"] not in INVOICE_STATUSES:
            problems.append(FieldError("status", f"one of {', '.join(INVOICE_STATUSES)}"))
        where.append(Invoice.status == query["status"])
    if "account_id" in query:
        where.append(Invoice.account_id == query["account_id"])
    since, until = _day(query, "from", problems), _day(query, "to", problems)
    if since and until and since > until:
        problems.append(FieldError("to", "must not be before from"))
    where += [Invoice.invoice_date >= since] if since else []
    where += [Invoice.invoice_date <= until] if until else []
    async with request.app[SESSIONS]() as session:
        if "after" in query:
            last = await session.get(Invoice, query["after"])
            if last is None or last.tenant_id != tenant_id:
                problems.append(FieldError("after", "is not an invoice of this tenant"))
            else:
                where.append(_before(Invoice.invoice_date, Invoice.id, last.invoice_date, last.id))
        if problems:
            raise InvalidRequest.fields(problems)
        invoices = (
            await session.scalars(
                select(Invoice)
                .where(*where)
                .order_by(Invoice.invoice_date.desc(), Invoice.id.desc())
                .limit(limit + 1)
            )
        ).all()
        page = list(invoices[:limit])
        items = await items_of(session, tenant_id, page)
    data = [invoice_view(i, items.get(i.id, [])) for i in page]
    more = len(invoices) > limit
    return respond(InvoicePage(data=data, next=page[-1].id if more else None))


def _before(date_column: Any, id_column: Any, day: Any, last_id: str) -> Any:
    """Rows after (``day``, ``last_id``) in newest-first order."""
    return or_(date_column < day, and_(date_column == day, id_column < last_id))


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
    limit, query, tenant_id = page_size(request), request.query, tenant_of(request)
    where: list[Any] = [Payment.tenant_id == tenant_id]
    if "account_id" in query:
        where.append(Payment.account_id == query["account_id"])
    async with request.app[SESSIONS]() as session:
        if "after" in query:
            last = await session.get(Payment, query["after"])
            if last is None or last.tenant_id != tenant_id:
                raise InvalidRequest.field("after", "is not a payment of this tenant")
            where.append(_before(Payment.received_at, Payment.id, last.received_at, last.id))
        payments = (
            await session.scalars(
                select(Payment)
                .where(*where)
                .order_by(Payment.received_at.desc(), Payment.id.desc())
                .limit(limit + 1)
            )
        ).all()
    page = list(payments[:limit])
    more = len(payments) > limit
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
        payment = await session.scalar(
            select(Payment).where(
                Payment.tenant_id == tenant_of(request),
                Payment.id == request.match_info["payment_id"],
            )
        )
    if payment is None:
        raise NotFound(f"no payment {request.match_info['payment_id']!r}")
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
