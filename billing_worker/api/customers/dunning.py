"""Dunning: the tenant's named policies, where an account is on the ladder, the manual
controls (suspend, reinstate, exempt), account settings, and the advisory message log."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

import msgspec
from aiohttp import web
from msgspec import UNSET, Meta, Struct, UnsetType

from billing_worker.api.customers.accounts import (
    tenant_account,
)
from billing_worker.api.http import schemas
from billing_worker.api.http.appkeys import CLOCK, OUTBOX_WAKE, SESSIONS
from billing_worker.api.http.auth import tenant_of
from billing_worker.api.http.routes import router
from billing_worker.api.http.routing import Role, decode, respond
from billing_worker.api.http.schemas import (
    Amount,
    Body,
    Code,
    Currency,
    CycleDay,
    Days,
    Email,
    Name,
    TimeZone,
)
from billing_worker.api.http.views import account_out, dunning_view
from billing_worker.db.models import (
    Delivery,
    Message,
)
from billing_worker.jobs.catch_up import real_time
from billing_worker.services import account_changes, accounts, dunning_policies
from billing_worker.services.messages import messages_of


class DunningStage(Body):
    standing: Literal["grace", "degraded", "suspended", "cancelled"]
    days_past_due: Days
    #: At least this owed: an amount per currency ({"USD": "99.50", "JPY": "10000"}), or one
    #: amount when the tenant bills in one currency only.
    min_balance: Amount | dict[Currency, Amount] | None = None
    min_invoices: Annotated[int, Meta(ge=1, le=1000)] | None = None
    #: At this stage plan changes, quantity changes and new subscriptions are refused.
    block_changes: bool = False


class DunningPolicyIn(Body):
    stages: Annotated[list[DunningStage], Meta(max_length=10)]
    reminder_every_days: Annotated[int, Meta(ge=1, le=365)] | None = 1
    retry_days: Annotated[list[Days], Meta(max_length=20)] = msgspec.field(
        default_factory=lambda: [1, 3, 7, 14]
    )
    hard_decline: Literal["degraded", "suspended", "cancelled"] | None = None
    cancel_billing: Literal["end_of_term", "immediate"] = "end_of_term"
    suspended_billing: Literal["continue", "pause"] = "continue"
    #: Degraded access is read-only (safe methods only); null: the tenant's setting.
    degraded_read_only: bool | None = None
    #: The features a degraded account keeps; null: all of its plan's.
    degraded_features: Annotated[list[Code], Meta(max_length=100)] | None = None


class DunningPolicyOut(DunningPolicyIn, kw_only=True):
    name: str


class DunningPolicyList(Struct, kw_only=True):
    data: list[DunningPolicyOut]


class AccountUpdate(Body):
    name: Name | UnsetType = UNSET
    email: Email | UnsetType | None = UNSET
    billing_address: schemas.Address | UnsetType | None = UNSET
    collection: Literal["automatic", "manual"] | UnsetType = UNSET
    #: "held" stops invoicing; "automatic" (or "draft") resumes it, invoicing at once what
    #: came due; "draft" makes its invoices drafts to commit.
    invoicing: Literal["automatic", "draft", "held"] | UnsetType = UNSET
    dunning_policy: Code | UnsetType | None = UNSET
    #: Takes effect at each subscription's next period (the one after the current).
    cycle_day: CycleDay | UnsetType = UNSET
    #: Only while the account has no invoice.
    timezone: TimeZone | UnsetType = UNSET


class ExemptIn(Body):
    exempt: bool = True


class SuspendIn(Body):
    reason: Annotated[str, Meta(max_length=200)] | None = None


class StandingChangeOut(Struct, kw_only=True):
    effective_at: datetime
    standing: str
    reason: str
    previous_standing: str


class StandingHistory(Struct, kw_only=True):
    account_id: str
    data: list[StandingChangeOut]


class DeliveryOut(Struct, kw_only=True):
    channel: str
    target: str
    status: str
    attempts: int
    last_error: str | None
    next_attempt_at: datetime | None
    delivered_at: datetime | None


class MessageOut(Struct, kw_only=True):
    id: str
    account_id: str
    kind: str
    created_at: datetime
    payload: dict[str, Any]
    deliveries: list[DeliveryOut]


class MessageList(Struct, kw_only=True):
    data: list[MessageOut]


POLICY = "/v1/tenant/dunning-policies/{name}"
ACCOUNT = "/v1/accounts/{account_id}"


def _policy_out(name: str, document: dict[str, object]) -> DunningPolicyOut:
    return msgspec.convert({**document, "name": name}, DunningPolicyOut)


@router.route(
    "PUT",
    POLICY,
    summary="Create or replace a named dunning policy ('default' applies unless a plan or "
    "account names another)",
    role=Role.TENANT,
    request=DunningPolicyIn,
    response=DunningPolicyOut,
)
async def put_policy(request: web.Request) -> web.Response:
    body = await decode(request, DunningPolicyIn)
    name = request.match_info["name"]
    document = msgspec.to_builtins(body)
    async with request.app[SESSIONS]() as session, session.begin():
        await dunning_policies.save_policy(
            session, tenant_of(request), name, document, request.app[CLOCK].now()
        )
    return respond(_policy_out(name, document))


@router.route(
    "GET",
    "/v1/tenant/dunning-policies",
    summary="The tenant's dunning policies (without one named 'default', the classic ladder "
    "applies: daily reminders, retries on days 1/3/7/14, suspended after grace_days)",
    role=Role.TENANT,
    response=DunningPolicyList,
)
async def list_policies(request: web.Request) -> web.Response:
    async with request.app[SESSIONS]() as session:
        policies = await dunning_policies.policies_of(session, tenant_of(request))
    return respond(DunningPolicyList(data=[_policy_out(n, d) for n, d in sorted(policies.items())]))


@router.route(
    "DELETE",
    POLICY,
    summary="Remove a named dunning policy (accounts and plans naming it use the default)",
    role=Role.TENANT,
    status=204,
    errors=(404,),
)
async def delete_policy(request: web.Request) -> web.Response:
    async with request.app[SESSIONS]() as session, session.begin():
        await dunning_policies.remove_policy(
            session, tenant_of(request), request.match_info["name"], request.app[CLOCK].now()
        )
    return web.Response(status=204)


@router.route(
    "PATCH",
    ACCOUNT,
    summary="Change an account's name, billing contact and address, collection, invoicing "
    "(automatic, draft or held), dunning policy, time zone (before its first invoice) or "
    "billing cycle day (from each subscription's next period)",
    role=Role.TENANT,
    request=AccountUpdate,
    response=schemas.AccountOut,
    errors=(404, 409),
)
async def update_account(request: web.Request) -> web.Response:
    body = await decode(request, AccountUpdate)
    changes = {k: v for k, v in msgspec.structs.asdict(body).items() if v is not UNSET}
    async with request.app[SESSIONS]() as session, session.begin():
        account = await account_changes.update_account(
            session, tenant_of(request), request.match_info["account_id"],
            real_time(request.app[CLOCK]), changes,
        )  # fmt: skip
        out = await account_out(session, account)
    request.app[OUTBOX_WAKE].set()
    return respond(out)


@router.route(
    "POST",
    ACCOUNT + "/suspend",
    summary="Suspend an account by hand, whatever it owes (until reinstated)",
    role=Role.TENANT,
    request=SuspendIn,
    response=schemas.AccountOut,
    errors=(404,),
)
async def suspend(request: web.Request) -> web.Response:
    await decode(request, SuspendIn)
    return await _set_flag(request, "suspended_manually", True)


@router.route(
    "POST",
    ACCOUNT + "/reinstate",
    summary="Lift a manual suspension (a suspension for non-payment lifts on payment, "
    "write-off or exemption)",
    role=Role.TENANT,
    response=schemas.AccountOut,
    errors=(404,),
)
async def reinstate(request: web.Request) -> web.Response:
    return await _set_flag(request, "suspended_manually", False)


@router.route(
    "POST",
    ACCOUNT + "/exempt",
    summary='Exempt an account from dunning ({"exempt": false} ends the exemption)',
    role=Role.TENANT,
    request=ExemptIn,
    response=schemas.AccountOut,
    errors=(404,),
)
async def exempt_account(request: web.Request) -> web.Response:
    body = await decode(request, ExemptIn)
    return await _set_flag(request, "dunning_exempt", body.exempt)


async def _set_flag(request: web.Request, name: str, value: bool) -> web.Response:
    async with request.app[SESSIONS]() as session, session.begin():
        account = await account_changes.set_flag(
            session, tenant_of(request), request.match_info["account_id"],
            real_time(request.app[CLOCK]), name, value,
        )  # fmt: skip
        out = await account_out(session, account)
    request.app[OUTBOX_WAKE].set()
    return respond(out)


@router.route(
    "POST",
    "/v1/subscriptions/{subscription_id}/exempt",
    summary="Keep one subscription's access while its account is suspended for non-payment "
    "(e.g. a prepaid annual plan)",
    role=Role.TENANT,
    request=ExemptIn,
    response=schemas.AccountOut,
    errors=(404,),
)
async def exempt_subscription(request: web.Request) -> web.Response:
    body = await decode(request, ExemptIn)
    now = request.app[CLOCK].now()
    async with request.app[SESSIONS]() as session, session.begin():
        account = await account_changes.exempt_subscription(
            session, tenant_of(request), request.match_info["subscription_id"], body.exempt, now
        )
        out = await account_out(session, account)
    request.app[OUTBOX_WAKE].set()
    return respond(out)


@router.route(
    "GET",
    ACCOUNT + "/dunning",
    summary="Where the account is on the dunning ladder, by which policy, and what comes next",
    role=Role.TENANT,
    response=schemas.DunningOut,
    errors=(404,),
)
async def get_dunning(request: web.Request) -> web.Response:
    now = request.app[CLOCK].now()
    async with request.app[SESSIONS]() as session:
        account, found = await accounts.standing_of(
            session, tenant_of(request), request.match_info["account_id"], now
        )
        return respond(dunning_view(account, found))


@router.route(
    "GET",
    ACCOUNT + "/standing-history",
    summary="Every change of the account's standing, oldest first, each dated when it took "
    "effect (a worker catching up after downtime dates it when it was due, not when it ran)",
    role=Role.TENANT,
    response=StandingHistory,
    errors=(404,),
)
async def standing_history(request: web.Request) -> web.Response:
    async with request.app[SESSIONS]() as session:
        account = await tenant_account(session, request)
        changes = await account_changes.standing_history(session, account)
    return respond(
        StandingHistory(
            account_id=account.id,
            data=[
                StandingChangeOut(
                    effective_at=c.effective_at,
                    standing=c.standing,
                    reason=c.reason,
                    previous_standing=c.previous_standing,
                )
                for c in changes
            ],
        )
    )


@router.route(
    "GET",
    "/v1/messages",
    summary="Advisory messages, newest first, each with its deliveries (webhook and email) "
    "and their status; ?account_id= narrows to one account",
    role=Role.TENANT,
    response=MessageList,
)
async def list_messages(request: web.Request) -> web.Response:
    async with request.app[SESSIONS]() as session:
        listed = await messages_of(session, tenant_of(request), request.query.get("account_id"))
    return respond(MessageList(data=[_message_out(m, its) for m, its in listed]))


def _message_out(message: Message, deliveries: list[Delivery]) -> MessageOut:
    return MessageOut(
        id=message.id,
        account_id=message.account_id,
        kind=message.kind,
        created_at=message.created_at,
        payload=message.payload,
        deliveries=[
            DeliveryOut(channel=d.channel, target=d.target, status=d.status,
                        attempts=d.attempts, last_error=d.last_error,
                        next_attempt_at=d.next_attempt_at, delivered_at=d.delivered_at)
            for d in deliveries
        ],
    )  # fmt: skip
