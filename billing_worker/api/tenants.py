"""Tenants (operator key) and their settings (tenant admin key)."""

from __future__ import annotations

import msgspec
from aiohttp import web

from billing_worker.api import schemas
from billing_worker.api.appkeys import CLOCK, OUTBOX_WAKE, SESSIONS
from billing_worker.api.auth import tenant_of
from billing_worker.api.errors import NotFound
from billing_worker.api.keys import add_key
from billing_worker.api.routes import router
from billing_worker.api.routing import Role, decode, respond
from billing_worker.api.views import tenant_view
from billing_worker.db.models import WITH_SECRETS, Tenant
from billing_worker.ids import new_id
from billing_worker.notifications.signing import new_secret
from billing_worker.standing.entitlements import reevaluate_tenant
from shared.credentials import KeyKind


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
        draft_invoices=body.draft_invoices,
        zero_amount_invoices=body.zero_amount_invoices,
        summary_commit_time=body.summary_commit_time,
        channel_overdue=body.channel_overdue,
        notify_webhook_url=body.notify_webhook_url,
        notify_emails=body.notify_emails,
        notify_customer=body.notify_customer,
        webhook_secret=new_secret(),
        provider_webhook_secret=new_secret(),
        created_at=now,
    )
    async with request.app[SESSIONS]() as session, session.begin():
        session.add(tenant)
        await session.flush()
        _, admin = add_key(session, tenant.id, KeyKind.ADMIN, now)
        _, gateway = add_key(session, tenant.id, KeyKind.GATEWAY, now)
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
        tenant = await session.get(Tenant, tenant_of(request), options=[WITH_SECRETS])
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
        tenant = await session.get(
            Tenant, tenant_of(request), with_for_update=True, options=[WITH_SECRETS]
        )
        if tenant is None:
            raise NotFound("the key's tenant no longer exists")
        for name, value in msgspec.structs.asdict(body).items():
            if value is not msgspec.UNSET:
                setattr(tenant, name, value)
        await reevaluate_tenant(session, tenant.id, now)
        out = tenant_view(tenant)
    return respond(out)
