"""The console's pages: the overview, the accounts list and an account's page.

Pages read through the services the API uses (tenant-scoped; the overview's aggregates are
``services.reports``); every action on them
posts to the management API itself with the session cookie and its CSRF token (see
``static/console.js``), so a change from the console is validated, applied and audited
exactly as the same API call would be.
"""

from __future__ import annotations

from typing import Any

import aiohttp_jinja2
from aiohttp import web
from sqlalchemy.ext.asyncio import AsyncSession

from billing_worker.api.console.signin import signed_in
from billing_worker.api.http.appkeys import CLOCK, REDIS, SESSIONS
from billing_worker.api.http.invoice_documents import invoice_document
from billing_worker.api.http.views import (
    account_view,
    dunning_view,
    payment_row,
    subscription_view,
    user_view,
)
from billing_worker.db.models import Account, ConsoleSession, Invoice, Tenant
from billing_worker.domain.invoicing.numbers import display_number
from billing_worker.domain.statuses import InvoiceStatus
from billing_worker.invoicing.invoicer import local_today
from billing_worker.services import accounts, reports
from billing_worker.services.errors import NotFound
from billing_worker.services.invoices import tenant_invoice
from billing_worker.services.live_sessions import live_sessions
from shared.money import Money

routes = web.RouteTableDef()
_KINDS = ("consumer", "enterprise", "reseller")


async def _context(
    request: web.Request, session: AsyncSession, found: ConsoleSession, **more: Any
) -> dict[str, Any]:
    tenant = await session.get(Tenant, found.tenant_id)
    if tenant is None:
        raise web.HTTPSeeOther("/console/tenants")
    return {"session": found, "tenant": tenant, "path": request.path, **more}


@routes.get("/console/overview")
async def overview_page(request: web.Request) -> web.StreamResponse:
    found = await signed_in(request)
    assert found.tenant_id is not None
    async with request.app[SESSIONS]() as session:
        now = request.app[CLOCK].now()
        summary = await reports.overview(session, found.tenant_id, now)
        context = await _context(
            request, session, found, overview=summary,
            revenue=await reports.revenue(session, found.tenant_id),
            pipeline=await reports.pipeline(session, found.tenant_id, now),
            decisions=await reports.decisions(request.app[REDIS], found.tenant_id, now),
        )  # fmt: skip
    return aiohttp_jinja2.render_template("overview.html", request, context)


def _filter(request: web.Request) -> reports.AccountFilter:
    query = request.query
    page = query.get("page", "1")
    return reports.AccountFilter(
        q=query.get("q", "").strip()[:200],
        standing=query.get("standing", "") if query.get("standing") in reports.STANDINGS else "",
        kind=query.get("kind", "") if query.get("kind") in _KINDS else "",
        plan=query.get("plan", "").strip()[:100],
        page=int(page) if page.isdigit() and 0 < int(page) < 100_000 else 1,
    )  # fmt: skip


@routes.get("/console/accounts")
async def accounts_page(request: web.Request) -> web.StreamResponse:
    found = await signed_in(request)
    assert found.tenant_id is not None
    wanted = _filter(request)
    async with request.app[SESSIONS]() as session:
        rows, more = await reports.accounts(session, found.tenant_id, wanted)
        plans = await reports.plans_in_use(session, found.tenant_id)
        context = await _context(
            request, session, found, accounts=rows, more=more, filter=wanted, plans=plans,
            standings=reports.STANDINGS,
        )  # fmt: skip
    # htmx asks for the table alone as the search box changes
    template = "accounts_table.html" if request.headers.get("HX-Request") else "accounts.html"
    return aiohttp_jinja2.render_template(template, request, context)


@routes.get("/console/accounts/{account_id}")
async def account_page(request: web.Request) -> web.StreamResponse:
    found = await signed_in(request)
    now = request.app[CLOCK].now()
    async with request.app[SESSIONS]() as session:
        try:
            account = await accounts.tenant_account(
                session, str(found.tenant_id), request.match_info["account_id"]
            )
        except NotFound:
            raise web.HTTPNotFound(text="No such account.") from None
        context = await _context(request, session, found, **await _account(session, account, now))
    context["live_sessions"] = await live_sessions(request.app[REDIS], account)
    return aiohttp_jinja2.render_template("account.html", request, context)


@routes.get("/console/invoices/{invoice_id}")
async def invoice_page(request: web.Request) -> web.StreamResponse:
    """The invoice as the customer reads it, and its PDF (from the API) to download."""
    found = await signed_in(request)
    assert found.tenant_id is not None
    async with request.app[SESSIONS]() as session:
        try:
            parts = await tenant_invoice(session, found.tenant_id, request.match_info["invoice_id"])
        except NotFound:
            raise web.HTTPNotFound(text="No such invoice.") from None
        context = await _context(request, session, found, invoice=invoice_document(parts),
                                 account_id=parts.invoice.account_id, standalone=False)  # fmt: skip
    return aiohttp_jinja2.render_template("invoice.html", request, context)


async def _account(session: AsyncSession, account: Account, now: Any) -> dict[str, Any]:
    seen = await accounts.activity(session, account, now)
    today = local_today(now, account.timezone)
    return {
        "account": account_view(account, seen.balance_due),
        "dunning": dunning_view(account, seen.evaluation),
        "subscriptions": [subscription_view(s, today, s.phase) for s in seen.subscriptions],
        "invoices": [_invoice_row(i) for i in seen.invoices],
        "payments": [payment_row(p) for p in seen.payments],
        "users": [user_view(u) for u in seen.users],
        "history": seen.history,
        "messages": seen.messages,
        "today": today,
    }


def _invoice_row(invoice: Invoice) -> dict[str, Any]:
    def amount(minor: int) -> str:
        return Money.from_minor(minor, invoice.currency).format()

    return {
        "id": invoice.id,
        "number": display_number(invoice.number),
        "date": invoice.invoice_date,
        "status": invoice.status,
        "currency": invoice.currency,
        "total": amount(invoice.total_minor),
        # only an open invoice is owed (a draft is not yet, a void one no longer)
        "balance": amount(
            invoice.total_minor - invoice.paid_minor if invoice.status == InvoiceStatus.OPEN else 0
        ),
    }
