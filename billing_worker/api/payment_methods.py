"""Payment methods: an account's provider tokens. No card data is ever accepted."""

from __future__ import annotations

from aiohttp import web
from sqlalchemy import select, update

from billing_worker.api import schemas
from billing_worker.api.appkeys import CLOCK, PROVIDERS, SESSIONS
from billing_worker.api.auth import tenant_of
from billing_worker.api.errors import Conflict, InvalidRequest, NotFound
from billing_worker.api.routes import router
from billing_worker.api.routing import Role, decode, respond
from billing_worker.db.models import Account, PaymentMethod
from billing_worker.entitlements import lock_account
from billing_worker.ids import new_id

METHODS = "/v1/accounts/{account_id}/payment-methods"


def method_view(method: PaymentMethod) -> schemas.PaymentMethodOut:
    return schemas.PaymentMethodOut(
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
    request=schemas.PaymentMethodCreate,
    response=schemas.PaymentMethodOut,
    status=201,
    errors=(404, 409),
)
async def add_method(request: web.Request) -> web.Response:
    body = await decode(request, schemas.PaymentMethodCreate, refuse_card_data=True)
    provider = next((p for p in request.app[PROVIDERS] if p.accepts(body.token)), None)
    if provider is None:
        names = ", ".join(p.name for p in request.app[PROVIDERS])
        raise InvalidRequest.field(
            "token", f"not a token of a configured payment provider ({names})"
        )
    tenant_id = tenant_of(request)
    async with request.app[SESSIONS]() as session, session.begin():
        account = await lock_account(session, tenant_id, request.match_info["account_id"])
        if account is None:
            raise NotFound(f"no account {request.match_info['account_id']!r}")
        duplicate = await session.scalar(
            select(PaymentMethod.id).where(
                PaymentMethod.tenant_id == tenant_id,
                PaymentMethod.account_id == account.id,
                PaymentMethod.token == body.token,
            )
        )
        if duplicate is not None:
            raise Conflict(f"the account already has this token as {duplicate}")
        has_default = await session.scalar(
            select(PaymentMethod.id).where(
                PaymentMethod.tenant_id == tenant_id,
                PaymentMethod.account_id == account.id,
                PaymentMethod.is_default,
            )
        )
        make_default = body.default or has_default is None
        if make_default:
            await session.execute(
                update(PaymentMethod)
                .where(PaymentMethod.tenant_id == tenant_id, PaymentMethod.account_id == account.id)
                .values(is_default=False)
            )
        method = PaymentMethod(
            id=new_id("pm"),
            tenant_id=tenant_id,
            account_id=account.id,
            provider=provider.name,
            token=body.token,
            label=body.label,
            is_default=make_default,
            created_at=request.app[CLOCK].now(),
        )
        session.add(method)
        out = method_view(method)
    return respond(out, 201)


@router.route(
    "GET",
    METHODS,
    summary="The account's payment methods, the default first",
    role=Role.TENANT,
    response=schemas.PaymentMethodList,
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
                .where(PaymentMethod.tenant_id == tenant_id, PaymentMethod.account_id == account)
                .order_by(PaymentMethod.is_default.desc(), PaymentMethod.created_at)
            )
        ).all()
    return respond(schemas.PaymentMethodList(data=[method_view(m) for m in methods]))


@router.route(
    "DELETE",
    "/v1/payment-methods/{method_id}",
    summary="Remove a payment method",
    role=Role.TENANT,
    status=204,
    errors=(404,),
)
async def remove_method(request: web.Request) -> web.Response:
    tenant_id = tenant_of(request)
    async with request.app[SESSIONS]() as session, session.begin():
        method = await session.scalar(
            select(PaymentMethod).where(
                PaymentMethod.tenant_id == tenant_id,
                PaymentMethod.id == request.match_info["method_id"],
            )
        )
        if method is None:
            raise NotFound(f"no payment method {request.match_info['method_id']!r}")
        await session.delete(method)
    return web.Response(status=204)
