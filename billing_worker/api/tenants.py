"""Tenants (operator) and their plans (tenant admin)."""

from __future__ import annotations

import msgspec
from aiohttp import web
from sqlalchemy import select, update

from billing_worker.api import schemas
from billing_worker.api.appkeys import CLOCK, OUTBOX_WAKE, SESSIONS
from billing_worker.api.auth import tenant_of
from billing_worker.api.errors import Conflict, InvalidRequest, NotFound
from billing_worker.api.routes import router
from billing_worker.api.routing import Role, decode, respond
from billing_worker.api.views import plan_view, tenant_view
from billing_worker.db.models import Account, ApiKey, Plan, Tenant
from billing_worker.ids import new_id
from billing_worker.outbox import stage_api_key
from shared.credentials import KeyKind, issue_key
from shared.money import Money, MoneyError, is_currency


@router.route(
    "POST",
    "/v1/tenants",
    summary="Create a tenant with its admin and gateway keys (operator key)",
    role=Role.OPERATOR,
    request=schemas.TenantCreate,
    response=schemas.TenantCreated,
    status=201,
)
async def create_tenant(request: web.Request) -> web.Response:
    body = await decode(request, schemas.TenantCreate)
    now = request.app[CLOCK].now()
    tenant = Tenant(
        id=new_id("ten"),
        name=body.name,
        grace_days=body.grace_days,
        net_terms_days=body.net_terms_days,
        session_idle_seconds=body.session_idle_seconds,
        fail_open_seconds=body.fail_open_seconds,
        degraded_read_only=body.degraded_read_only,
        created_at=now,
    )
    admin, gateway = issue_key(), issue_key()
    async with request.app[SESSIONS]() as session, session.begin():
        session.add(tenant)
        await session.flush()
        for kind, issued in ((KeyKind.ADMIN, admin), (KeyKind.GATEWAY, gateway)):
            key = ApiKey(
                id=issued.key_id,
                tenant_id=tenant.id,
                kind=kind.value,
                secret_hash=issued.secret_hash,
                version=1,
                created_at=now,
            )
            session.add(key)
            stage_api_key(session, key, now)
    request.app[OUTBOX_WAKE].set()
    created = schemas.TenantCreated(
        **msgspec.structs.asdict(tenant_view(tenant)),
        admin_key=admin.token,
        gateway_key=gateway.token,
    )
    return respond(created, 201)


@router.route(
    "GET",
    "/v1/tenant",
    summary="Read the calling tenant's settings",
    role=Role.TENANT,
    response=schemas.TenantOut,
)
async def get_tenant(request: web.Request) -> web.Response:
    async with request.app[SESSIONS]() as session:
        tenant = await session.get(Tenant, tenant_of(request))
        if tenant is None:
            raise NotFound("the key's tenant no longer exists")
        return respond(tenant_view(tenant))


@router.route(
    "PATCH",
    "/v1/tenant",
    summary="Change the tenant's settings; every account's entitlement is re-published",
    role=Role.TENANT,
    request=schemas.TenantUpdate,
    response=schemas.TenantOut,
)
async def update_tenant(request: web.Request) -> web.Response:
    body = await decode(request, schemas.TenantUpdate)
    now = request.app[CLOCK].now()
    async with request.app[SESSIONS]() as session, session.begin():
        tenant = await session.get(Tenant, tenant_of(request), with_for_update=True)
        if tenant is None:
            raise NotFound("the key's tenant no longer exists")
        for name, value in msgspec.structs.asdict(body).items():
            if value is not msgspec.UNSET:
                setattr(tenant, name, value)
        # The scheduler re-evaluates (and re-publishes) every account that is due.
        await session.execute(
            update(Account).where(Account.tenant_id == tenant.id).values(next_evaluation_at=now)
        )
        out = tenant_view(tenant)
    return respond(out)


@router.route(
    "POST",
    "/v1/plans",
    summary="Create a monthly plan with a price, features and an optional seat limit",
    role=Role.TENANT,
    request=schemas.PlanCreate,
    response=schemas.PlanOut,
    status=201,
    errors=(409,),
)
async def create_plan(request: web.Request) -> web.Response:
    tenant_id = tenant_of(request)
    body = await decode(request, schemas.PlanCreate)
    if not is_currency(body.currency):
        raise InvalidRequest.field("currency", f"{body.currency!r} is not an ISO 4217 currency")
    try:
        price = Money.parse(body.amount, body.currency)
    except MoneyError as exc:
        raise InvalidRequest.field("amount", str(exc)) from exc
    async with request.app[SESSIONS]() as session, session.begin():
        taken = await session.scalar(
            select(Plan.id).where(Plan.tenant_id == tenant_id, Plan.code == body.code)
        )
        if taken:
            raise Conflict.field("code", f"plan {body.code!r} already exists")
        plan = Plan(
            id=new_id("plan"),
            tenant_id=tenant_id,
            code=body.code,
            name=body.name,
            currency=body.currency,
            amount_minor=price.minor,
            features=list(body.features),
            seat_limit=body.seat_limit,
            session_policy=body.session_policy,
            created_at=request.app[CLOCK].now(),
        )
        session.add(plan)
    return respond(plan_view(plan), 201)
