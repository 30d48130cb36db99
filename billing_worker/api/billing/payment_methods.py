"""Payment methods: an account's provider tokens. No card data is ever accepted."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from aiohttp import web
from msgspec import Meta, Struct

from billing_worker.api.http.appkeys import CLOCK, OUTBOX_WAKE, PROVIDERS, SESSIONS
from billing_worker.api.http.auth import tenant_of
from billing_worker.api.http.routes import router
from billing_worker.api.http.routing import Role, decode, respond
from billing_worker.api.http.schemas import Body
from billing_worker.db.models import PaymentMethod
from billing_worker.services import payment_methods


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
    async with request.app[SESSIONS]() as session, session.begin():
        method = await payment_methods.add_method(
            session, request.app[PROVIDERS], tenant_of(request),
            request.match_info["account_id"], request.app[CLOCK].now(), token=body.token,
            label=body.label, default=body.default,
        )  # fmt: skip
        out = method_view(method)
    request.app[OUTBOX_WAKE].set()
    return respond(out, 201)


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
        method = await payment_methods.make_default(
            session, tenant_of(request), request.match_info["method_id"], request.app[CLOCK].now()
        )
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
    async with request.app[SESSIONS]() as session:
        methods = await payment_methods.methods_of(
            session, tenant_of(request), request.match_info["account_id"]
        )
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
        await payment_methods.remove_method(
            session, tenant_of(request), request.match_info["method_id"], request.app[CLOCK].now()
        )
    return web.Response(status=204)
