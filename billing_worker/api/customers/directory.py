"""Finding and managing what the API created: accounts listed and filtered, an account's
users, a user disabled or removed (published to the gateways at once), one invoice."""

from __future__ import annotations

from typing import Annotated, Literal

from aiohttp import web
from msgspec import UNSET, Meta, Struct, UnsetType

from billing_worker.api.customers.accounts import tenant_account
from billing_worker.api.http import schemas
from billing_worker.api.http.appkeys import CLOCK, OUTBOX_WAKE, SESSIONS
from billing_worker.api.http.auth import tenant_of
from billing_worker.api.http.invoice_documents import invoice_document, render_pdf
from billing_worker.api.http.routes import router
from billing_worker.api.http.routing import Role, decode, respond
from billing_worker.api.http.views import account_view, invoice_view, subscription_view, user_view
from billing_worker.services import accounts, subscriptions, users
from billing_worker.services.errors import FieldError, InvalidRequest
from billing_worker.services.invoices import tenant_invoice
from billing_worker.services.users import users_of
from shared.states import Standing

PAGE_MAX = 100
KINDS = ("consumer", "enterprise", "reseller")


class AccountPage(Struct, kw_only=True):
    data: list[schemas.AccountOut]
    #: Pass as ``after`` for the next page; null on the last one.
    next: str | None


class UserList(Struct, kw_only=True):
    data: list[schemas.UserOut]


class SubscriptionList(Struct, kw_only=True):
    data: list[schemas.SubscriptionOut]


class UserUpdate(schemas.Body):
    status: Literal["active", "disabled"] | UnsetType = UNSET
    email: Annotated[str, Meta(max_length=320)] | UnsetType | None = UNSET


def page_size(request: web.Request) -> int:
    raw = request.query.get("limit", "50")
    if not raw.isdigit() or not 1 <= int(raw) <= PAGE_MAX:
        raise InvalidRequest.field("limit", f"must be a whole number from 1 to {PAGE_MAX}")
    return int(raw)


@router.route(
    "GET",
    "/v1/accounts",
    summary="The tenant's accounts in id order, a page at a time (?limit=1..100, ?after=<id>), "
    "filtered by ?standing= and ?kind=",
    role=Role.TENANT,
    response=AccountPage,
    errors=(422,),
)
async def list_accounts(request: web.Request) -> web.Response:
    limit, query = page_size(request), request.query
    problems = []
    if "standing" in query:
        if query["standing"] not in {s.value for s in Standing}:
            problems.append(
                FieldError("standing", f"one of {', '.join(s.value for s in Standing)}")
            )
    if "kind" in query:
        if query["kind"] not in KINDS:
            problems.append(FieldError("kind", f"one of {', '.join(KINDS)}"))
    if problems:
        raise InvalidRequest.fields(problems)
    async with request.app[SESSIONS]() as session:
        found = await accounts.accounts_page(
            session, tenant_of(request), after=query.get("after", ""), limit=limit,
            standing=query.get("standing"), kind=query.get("kind"),
        )  # fmt: skip
    page, more = found.accounts, found.more
    data = [account_view(a, found.owed.get(a.id, 0)) for a in page]
    return respond(AccountPage(data=data, next=page[-1].id if more else None))


@router.route(
    "GET",
    "/v1/accounts/{account_id}/users",
    summary="An account's end users (a removed one is not listed)",
    role=Role.TENANT,
    response=UserList,
    errors=(404,),
)
async def list_users(request: web.Request) -> web.Response:
    async with request.app[SESSIONS]() as session:
        users = await users_of(session, await tenant_account(session, request))
    return respond(UserList(data=[user_view(u) for u in users]))


@router.route(
    "PATCH",
    "/v1/users/{user_id}",
    summary="Disable or re-enable an end user (status), or change their email; the gateways "
    "deny a disabled user (user_disabled) as soon as it is published",
    role=Role.TENANT,
    request=UserUpdate,
    response=schemas.UserOut,
    errors=(404,),
)
async def update_user(request: web.Request) -> web.Response:
    body = await decode(request, UserUpdate)
    now = request.app[CLOCK].now()
    async with request.app[SESSIONS]() as session, session.begin():
        user = await users.update_user(
            session, tenant_of(request), request.match_info["user_id"], now,
            status=None if body.status is UNSET else body.status,
            email=users.KEEP if body.email is UNSET else body.email,
        )  # fmt: skip
        out = user_view(user)
    request.app[OUTBOX_WAKE].set()
    return respond(out)


@router.route(
    "DELETE",
    "/v1/users/{user_id}",
    summary="Remove an end user: from then on the gateways answer for them exactly as for a "
    "user that never existed (unknown_user)",
    role=Role.TENANT,
    status=204,
    errors=(404,),
)
async def delete_user(request: web.Request) -> web.Response:
    now = request.app[CLOCK].now()
    async with request.app[SESSIONS]() as session, session.begin():
        await users.remove_user(session, tenant_of(request), request.match_info["user_id"], now)
    request.app[OUTBOX_WAKE].set()
    return web.Response(status=204)


@router.route(
    "GET",
    "/v1/accounts/{account_id}/subscriptions",
    summary="An account's subscriptions (ended ones too), oldest first, each with its phase today",
    role=Role.TENANT,
    response=SubscriptionList,
    errors=(404,),
)
async def list_subscriptions(request: web.Request) -> web.Response:
    now = request.app[CLOCK].now()
    async with request.app[SESSIONS]() as session:
        account = await tenant_account(session, request)
        listed = await subscriptions.subscriptions_of(session, account, now)
        data = [subscription_view(sub, today, phase) for sub, today, phase in listed]
    return respond(SubscriptionList(data=data))


@router.route(
    "GET",
    "/v1/invoices/{invoice_id}",
    summary="One invoice with its items",
    role=Role.TENANT,
    response=schemas.InvoiceOut,
    errors=(404,),
)
async def get_invoice(request: web.Request) -> web.StreamResponse:
    invoice_id = request.match_info["invoice_id"]
    if invoice_id.endswith(".pdf") or "application/pdf" in request.headers.get("Accept", ""):
        return await invoice_pdf(request)
    async with request.app[SESSIONS]() as session:
        parts = await tenant_invoice(session, tenant_of(request), invoice_id)
    return respond(invoice_view(parts.invoice, parts.items))


@router.route(
    "GET",
    "/v1/invoices/{invoice_id}.pdf",
    summary="One invoice as a printable PDF (also GET /v1/invoices/{id} with "
    "Accept: application/pdf)",
    role=Role.TENANT,
    raw_response={"application/pdf": {"schema": {"type": "string", "format": "binary"}}},
    errors=(404, 503),
)
async def invoice_pdf(request: web.Request) -> web.StreamResponse:
    invoice_id = request.match_info["invoice_id"].removesuffix(".pdf")
    async with request.app[SESSIONS]() as session:
        document = invoice_document(await tenant_invoice(session, tenant_of(request), invoice_id))
    pdf = await render_pdf(request.app, document)
    name = document.number or document.invoice_id
    return web.Response(
        body=pdf,
        content_type="application/pdf",
        headers={"Content-Disposition": f'inline; filename="{name}.pdf"'},
    )
