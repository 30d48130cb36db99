"""Tenants (operator key) and their settings (tenant admin key)."""

from __future__ import annotations

from typing import Annotated, Literal

import msgspec
from aiohttp import web
from msgspec import UNSET, Meta, Struct, UnsetType, field

from billing_worker.api.http import schemas
from billing_worker.api.http.appkeys import CLOCK, OUTBOX_WAKE, PROVIDERS, SESSIONS, SETTINGS
from billing_worker.api.http.auth import tenant_of
from billing_worker.api.http.routes import router
from billing_worker.api.http.routing import Role, decode, respond
from billing_worker.api.http.schemas import (
    Body,
    CommitTime,
    Email,
    FailOpen,
    GraceDays,
    IdleSeconds,
    Name,
    NetTerms,
    StripeKey,
    StripeWebhookSecret,
    TenantOut,
    WebhookUrl,
)
from billing_worker.api.http.views import tenant_view
from billing_worker.payments.book import ENV_PREFIX
from billing_worker.services import tenants
from billing_worker.services.errors import FieldError, InvalidRequest


class TenantCreate(Body):
    name: Name
    grace_days: GraceDays = 30
    net_terms_days: NetTerms = 0
    session_idle_seconds: IdleSeconds = 1800
    fail_open_seconds: FailOpen = 0
    degraded_read_only: bool = True
    draft_invoices: bool = False
    #: A subscription starting in a free trial (or at a $0 fixed price) gets a $0 invoice.
    zero_amount_invoices: bool = True
    #: Local time a parent's summary draft of a day commits itself; null: the end of the day.
    summary_commit_time: CommitTime | None = None
    channel_overdue: Literal["follow", "ignore"] = "follow"
    notify_webhook_url: WebhookUrl | None = None
    notify_emails: Annotated[list[Email], Meta(max_length=20)] = field(default_factory=list)
    notify_customer: bool = False


class TenantUpdate(Body):
    name: Name | UnsetType = UNSET
    grace_days: GraceDays | UnsetType = UNSET
    net_terms_days: NetTerms | UnsetType = UNSET
    session_idle_seconds: IdleSeconds | UnsetType = UNSET
    fail_open_seconds: FailOpen | UnsetType = UNSET
    degraded_read_only: bool | UnsetType = UNSET
    draft_invoices: bool | UnsetType = UNSET
    zero_amount_invoices: bool | UnsetType = UNSET
    summary_commit_time: CommitTime | UnsetType | None = UNSET
    channel_overdue: Literal["follow", "ignore"] | UnsetType = UNSET
    notify_webhook_url: WebhookUrl | UnsetType | None = UNSET
    notify_emails: Annotated[list[Email], Meta(max_length=20)] | UnsetType = UNSET
    notify_customer: bool | UnsetType = UNSET
    #: Charges the tenant's Stripe customers (``cus_…/pm_…`` tokens); null removes it.
    stripe_secret_key: StripeKey | UnsetType | None = UNSET
    #: The signing secret of the endpoint the tenant added in Stripe for
    #: ``/v1/stripe/webhooks/{tenant_id}``; null removes it.
    stripe_webhook_secret: StripeWebhookSecret | UnsetType | None = UNSET


class TenantCreated(TenantOut, kw_only=True):
    """A new tenant's keys and secrets: shown in this answer only."""

    admin_key: str
    gateway_key: str
    #: Verifies the messages Tollgate's webhooks send (header Tollgate-Signature).
    webhook_secret: str | None
    #: Signs the events payment providers send to /v1/providers/{name}/webhooks/{tenant}.
    provider_webhook_secret: str | None


class RotatedSecret(Struct, kw_only=True):
    name: str
    #: The new secret, shown in this answer only; the old one stops verifying at once.
    secret: str


@router.route(
    "POST",
    "/v1/tenants",
    summary="Create a tenant with its admin and gateway keys (operator key)",
    role=Role.OPERATOR,
    request=TenantCreate,
    response=TenantCreated,
    status=201,
)
async def create_tenant(request: web.Request) -> web.Response:
    body = await decode(request, TenantCreate)
    async with request.app[SESSIONS]() as session, session.begin():
        tenant, admin, gateway = await tenants.create_tenant(
            session, msgspec.structs.asdict(body), request.app[CLOCK].now()
        )
    request.app[OUTBOX_WAKE].set()
    created = TenantCreated(
        **msgspec.structs.asdict(tenant_view(tenant)),
        admin_key=admin.token,
        gateway_key=gateway.token,
        webhook_secret=tenant.webhook_secret,
        provider_webhook_secret=tenant.provider_webhook_secret,
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
        tenant = await tenants.own_tenant(session, tenant_of(request))
        return respond(tenant_view(tenant))


@router.route(
    "PATCH",
    "/v1/tenant",
    summary="Change the tenant's settings; every account's entitlement is re-published",
    role=Role.TENANT,
    request=TenantUpdate,
    response=schemas.TenantOut,
)
async def update_tenant(request: web.Request) -> web.Response:
    body = await decode(request, TenantUpdate)
    problems = _provider_secret_problems(request, body)
    if problems:
        raise InvalidRequest.fields(problems)
    changes = {k: v for k, v in msgspec.structs.asdict(body).items() if v is not msgspec.UNSET}
    async with request.app[SESSIONS]() as session, session.begin():
        tenant = await tenants.update_tenant(
            session, tenant_of(request), changes, request.app[CLOCK].now()
        )
        out = tenant_view(tenant)
    return respond(out)


@router.route(
    "POST",
    "/v1/tenant/secrets/{name}/rotate",
    summary="Give the tenant a new webhook_secret or provider_webhook_secret, shown in this "
    "answer only (secrets are shown once: when the tenant is created, and when rotated)",
    role=Role.TENANT,
    response=RotatedSecret,
    errors=(404,),
)
async def rotate_tenant_secret(request: web.Request) -> web.Response:
    name = request.match_info["name"]
    async with request.app[SESSIONS]() as session, session.begin():
        secret = await tenants.rotate_secret(session, tenant_of(request), name)
    return respond(RotatedSecret(name=name, secret=secret))


def _provider_secret_problems(request: web.Request, body: TenantUpdate) -> list[FieldError]:
    """A provider secret is given as ``env:NAME`` naming a variable the worker has, or, only
    when the worker seals secrets at rest (``TOLLGATE_SECRETS_KEY``), as the secret itself:
    never stored in plain text, never a reference to nothing."""
    sealing = request.app[SETTINGS].secrets_key is not None
    providers = request.app[PROVIDERS]
    found = []
    for name in ("stripe_secret_key", "stripe_webhook_secret"):
        value = getattr(body, name)
        if not isinstance(value, str):
            continue
        if value.startswith(ENV_PREFIX):
            if providers.resolve(value) is None:
                variable = value.removeprefix(ENV_PREFIX)
                found.append(FieldError(name, f"the worker has no environment variable {variable}"))
        elif not sealing:
            found.append(
                FieldError(
                    name,
                    "this server keeps no secret in plain text and has no sealing key "
                    "(TOLLGATE_SECRETS_KEY): give env:NAME, the worker's environment variable "
                    "holding it, or ask the operator to set a sealing key",
                )
            )
    return found
