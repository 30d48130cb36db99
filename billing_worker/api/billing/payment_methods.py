"""Payment methods: an account's provider tokens. No card data is ever accepted."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from aiohttp import web
from msgspec import Meta, Struct
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from billing_worker.api.http.appkeys import CLOCK, OUTBOX_WAKE, PROVIDERS, SESSIONS
from billing_worker.api.http.auth import tenant_of
from billing_worker.api.http.routes import router
from billing_worker.api.http.routing import Role, decode, respond
from billing_worker.api.http.schemas import Body
from billing_worker.db.locking import lock_account
from billing_worker.db.models import Account, PaymentMethod, Tenant
from billing_worker.ids import new_id
from billing_worker.services.errors import Conflict, InvalidRequest, NotFound
from billing_worker.standing.entitlements import refresh_account


class PaymentMethodCreate(Body):
    token: Annotated[
        str, Meta(min_length=1, max_length=200, description="the payment provider's token")
    ]
    label: Annotated[str, Meta(max_length=100, description="e.g. 'Visa ending 4242'")] | None = None
    default: bool = True


class PaymentMethodOut(Struct, kw_only=True):
    id: str
    account_id: str
    provider: str
    token: str
    label: str | None
    default: bool
    created_at: datetime


class PaymentMethodList(Struct, kw_only=True):
    data: list[PaymentMethodOut]


METHODS = "/v1/accounts/{account_id}/payment-methods"


def method_view(method: PaymentMethod) -> PaymentMethodOut:
    return PaymentMethodOut(
        id=method.id,
        account_id=method.account_id,
        provider=method.provider,
        token=method.token,
        label=method.label,
        default=method.is_default,
        created_at=method.created_at,
    )


@router.route(
    "POST",
    METHODS,
    summary="Store a payment provider's token for the account (card data is refused)",
    role=Role.TENANT,
    request=PaymentMethodCreate,
    response=PaymentMethodOut,
    status=201,
    errors=(404, 409),
)
async def add_method(request: web.Request) -> web.Response:
    body = await decode(request, PaymentMethodCreate, refuse_card_data=True)
    tenant_id = tenant_of(request)
    now = request.app[CLOCK].now()
    async with request.app[SESSIONS]() as session, session.begin():
        providers = await request.app[PROVIDERS].of(session, tenant_id)
        provider = next((p for p in providers if p.accepts(body.token)), None)
        if provider is None:
            names = ", ".join(p.name for p in providers)
            raise InvalidRequest.field(
                "token", f"not a token of a configured payment provider ({names})"
            )
        account = await lock_account(session, tenant_id, request.match_info["account_id"])
        if account is None:
            raise NotFound(f"no account {request.match_info['account_id']!r}")
        method = await session.scalar(
            select(PaymentMethod).where(
                PaymentMethod.tenant_id == tenant_id,
                PaymentMethod.account_id == account.id,
                PaymentMethod.token == body.token,
            )
        )
        if method is not None and method.removed_at is None:
            raise Conflict(f"the account already has this token as {method.id}")
        if method is None:
            method = PaymentMethod(
                id=new_id("pm"),
                tenant_id=tenant_id,
                account_id=account.id,
                provider=provider.name,
                token=body.token,
                is_default=False,
                created_at=now,
            )
            session.add(method)
        method.label, method.removed_at = body.label, None  # a removed token comes back
        has_default = await session.scalar(
            select(PaymentMethod.id).where(
                PaymentMethod.tenant_id == tenant_id,
                PaymentMethod.account_id == account.id,
                PaymentMethod.is_default,
            )
        )
        await session.flush()
        if body.default or has_default is None:
            await _make_default(session, account, method, now)
        out = method_view(method)
    request.app[OUTBOX_WAKE].set()
    return respond(out, 201)


async def _make_default(
    session: AsyncSession, account: Account, method: PaymentMethod, now: datetime
) -> None:
    """Make ``method`` the account's default: what is owed is charged to it at once, even
    after a hard decline of the previous card."""
    await session.execute(
        update(PaymentMethod)
        .where(PaymentMethod.tenant_id == account.tenant_id, PaymentMethod.account_id == account.id)
        .values(is_default=False)
    )
    method.is_default = True
    account.hard_declined, account.collect_at = False, now
    tenant = await session.get(Tenant, account.tenant_id)
    assert tenant is not None
    await session.flush()
    await refresh_account(session, tenant, account, now)


async def _locked_method(
    session: AsyncSession, request: web.Request
) -> tuple[Account, PaymentMethod]:
    tenant_id, method_id = tenant_of(request), request.match_info["method_id"]
    found = await session.scalar(
        select(PaymentMethod).where(
            PaymentMethod.tenant_id == tenant_id,
            PaymentMethod.id == method_id,
            PaymentMethod.removed_at.is_(None),
        )
    )
    account = await lock_account(session, tenant_id, found.account_id) if found else None
    if found is None or account is None:
        raise NotFound(f"no payment method {method_id!r}")
    await session.refresh(found, with_for_update=True)
    return account, found


@router.route(
    "POST",
    "/v1/payment-methods/{method_id}/default",
    summary="Make a payment method the account's default (what is owed is charged to it)",
    role=Role.TENANT,
    response=PaymentMethodOut,
    errors=(404,),
)
async def make_default(request: web.Request) -> web.Response:
    async with request.app[SESSIONS]() as session, session.begin():
        account, method = await _locked_method(session, request)
        await _make_default(session, account, method, request.app[CLOCK].now())
        out = method_view(method)
    request.app[OUTBOX_WAKE].set()
    return respond(out)


@router.route(
    "GET",
    METHODS,
    summary="The account's payment methods, the default first",
    role=Role.TENANT,
    response=PaymentMethodList,
    errors=(404,),
)
async def list_methods(request: web.Request) -> web.Response:
    tenant_id = tenant_of(request)
    async with request.app[SESSIONS]() as session:
        account = await session.scalar(
            select(Account.id).where(
                Account.tenant_id == tenant_id, Account.id == request.match_info["account_id"]
            )
        )
        if account is None:
            raise NotFound(f"no account {request.match_info['account_id']!r}")
        methods = (
            await session.scalars(
                select(PaymentMethod)
                .where(
                    PaymentMethod.tenant_id == tenant_id,
                    PaymentMethod.account_id == account,
                    PaymentMethod.removed_at.is_(None),
                )
                .order_by(PaymentMethod.is_default.desc(), PaymentMethod.created_at)
            )
        ).all()
    return respond(PaymentMethodList(data=[method_view(m) for m in methods]))


@router.route(
    "DELETE",
    "/v1/payment-methods/{method_id}",
    summary="Remove a payment method (no longer charged; a removed default leaves none)",
    role=Role.TENANT,
    status=204,
    errors=(404,),
)
async def remove_method(request: web.Request) -> web.Response:
    """Removed, not deleted: the charges made with it keep naming it."""
    async with request.app[SESSIONS]() as session, session.begin():
        _account, method = await _locked_method(session, request)
        method.removed_at, method.is_default = request.app[CLOCK].now(), False
    return web.Response(status=204)
