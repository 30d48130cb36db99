"""What the console's pages show, read for one tenant (and the operator's list of tenants):
every query is scoped by tenant and grouped in SQL, so the overview costs a few aggregate
queries whatever the population."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from typing import Any

from sqlalchemy import Select, and_, exists, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from billing_worker.db.models import (
    Account,
    Invoice,
    Payment,
    PaymentAttempt,
    PaymentEvent,
    Tenant,
    User,
)
from billing_worker.db.models.accounts import Subscription
from billing_worker.domain.statuses import (
    UNSETTLED,
    UNSUCCESSFUL,
    InvoiceStatus,
    SubscriptionStatus,
)
from shared import keys
from shared.entitlement import RecordError, decode_record
from shared.money import Money
from shared.redis_connection import RedisClient
from shared.states import Standing

#: The order standings are shown in: from good to gone.
STANDINGS = [s.value for s in Standing]
PAGE = 50
_PAID = Invoice.paid_minor

#: Invoices that were issued (not drafts, not voided).
_ISSUED = (InvoiceStatus.OPEN, InvoiceStatus.PAID, InvoiceStatus.WRITTEN_OFF)


@dataclass(frozen=True, slots=True)
class StandingRow:
    standing: str
    accounts: int
    #: What those accounts owe on invoices already due, per currency ("USD 1,204.00").
    overdue: list[str]


@dataclass(frozen=True, slots=True)
class Overview:
    total_accounts: int
    standings: list[StandingRow]
    issued: list[str]
    issued_count: int
    collected: list[str]
    failures: list[tuple[str, int]]
    period_start: date
    #: The largest count among standings (the bars' scale).
    widest: int = field(default=1)


def _amounts(rows: Sequence[Any]) -> list[str]:
    return [
        f"{currency} {Money.from_minor(int(minor), currency).format()}"
        for currency, minor in sorted(rows)
        if minor
    ]


async def overview(session: AsyncSession, tenant_id: str, now: datetime) -> Overview:
    """Accounts by standing with what they owe overdue, this month's invoices and
    collections, and this month's payment failures by reason."""
    counts = dict(
        (
            await session.execute(
                select(Account.standing, func.count())
                .where(Account.tenant_id == tenant_id)
                .group_by(Account.standing)
            )
        ).all()
    )
    overdue_rows = (
        await session.execute(
            select(Account.standing, Invoice.currency, func.sum(Invoice.total_minor - _PAID))
            .join(Account, Account.id == Invoice.account_id)
            .where(Invoice.tenant_id == tenant_id, Invoice.status == InvoiceStatus.OPEN,
                   Invoice.due_at <= now)
            .group_by(Account.standing, Invoice.currency)
        )
    ).all()  # fmt: skip
    overdue: dict[str, list[tuple[str, int]]] = {}
    for standing, currency, minor in overdue_rows:
        overdue.setdefault(standing, []).append((currency, int(minor or 0)))
    start = now.date().replace(day=1)
    since = datetime.combine(start, time(), tzinfo=now.tzinfo)
    issued = (
        await session.execute(
            select(Invoice.currency, func.sum(Invoice.total_minor), func.count())
            .where(Invoice.tenant_id == tenant_id, Invoice.invoice_date >= start,
                   Invoice.status.in_(_ISSUED))
            .group_by(Invoice.currency)
        )
    ).all()  # fmt: skip
    collected = (
        await session.execute(
            select(Payment.currency, func.sum(Payment.amount_minor - Payment.refunded_minor))
            .where(Payment.tenant_id == tenant_id, Payment.received_at >= since)
            .group_by(Payment.currency)
        )
    ).all()
    failures = (
        await session.execute(
            select(func.coalesce(PaymentAttempt.reason, "unknown"), func.count())
            .where(PaymentAttempt.tenant_id == tenant_id, PaymentAttempt.updated_at >= since,
                   PaymentAttempt.status.in_(UNSUCCESSFUL))
            .group_by(PaymentAttempt.reason)
            .order_by(func.count().desc())
        )
    ).all()  # fmt: skip
    rows = [StandingRow(s, int(counts.get(s, 0)), _amounts(overdue.get(s, []))) for s in STANDINGS]
    return Overview(
        total_accounts=sum(int(n) for n in counts.values()),
        standings=rows,
        issued=_amounts([(c, m) for c, m, _ in issued]),
        issued_count=sum(int(n) for _, _, n in issued),
        collected=_amounts(collected),
        failures=[(str(reason), int(n)) for reason, n in failures],
        period_start=start,
        widest=max([r.accounts for r in rows] + [1]),
    )


@dataclass(frozen=True, slots=True)
class PlanRevenue:
    plan: str
    currency: str
    subscriptions: int
    monthly: str
    #: Its share of the largest plan's amount (the bars' scale), 0..100.
    share: float


async def revenue(session: AsyncSession, tenant_id: str) -> list[PlanRevenue]:
    """Monthly recurring revenue by plan and currency: each live subscription's recurring
    price per month as of its last evaluation (``Subscription.monthly_minor``), accounts
    that are cancelled left out."""
    rows = (
        await session.execute(
            select(Subscription.plan_now, Account.currency, func.count(),
                   func.sum(Subscription.monthly_minor))
            .join(Account, Account.id == Subscription.account_id)
            .where(Subscription.tenant_id == tenant_id,
                   Subscription.status == SubscriptionStatus.ACTIVE,
                   Subscription.monthly_minor.is_not(None), Account.standing != "cancelled")
            .group_by(Subscription.plan_now, Account.currency)
        )
    ).all()  # fmt: skip
    widest = max([int(minor or 0) for *_, minor in rows] + [1])
    return [
        PlanRevenue(str(plan), currency, int(count),
                    f"{currency} {Money.from_minor(int(minor or 0), currency).format()}",
                    round(100 * int(minor or 0) / widest, 1))
        for plan, currency, count, minor in sorted(rows, key=lambda r: -int(r[3] or 0))
    ]  # fmt: skip


@dataclass(frozen=True, slots=True)
class Lapse:
    day: date
    standing: str
    becomes: str
    accounts: int


async def pipeline(session: AsyncSession, tenant_id: str, now: datetime) -> list[Lapse]:
    """The dunning pipeline for the next 14 days: how many accounts move to their next rung
    on which day, from the time bound each published record carries and what the ladder
    makes of the account then (``lapse_standing``)."""
    horizon = now + timedelta(days=14)
    rows = (
        await session.execute(
            select(Account.standing, Account.valid_until, Account.ent_record)
            .where(Account.tenant_id == tenant_id, Account.valid_until.is_not(None),
                   Account.valid_until > now, Account.valid_until <= horizon,
                   Account.standing.in_(("active", "grace", "degraded", "suspended")))
        )
    ).all()  # fmt: skip
    counts: dict[tuple[date, str, str], int] = {}
    for standing, until, raw in rows:
        if raw is None or until is None:
            continue
        try:
            lapse = decode_record(raw).lapse_standing
        except RecordError:
            continue
        if lapse is not None and lapse.value != standing:
            key = (until.date(), standing, lapse.value)
            counts[key] = counts.get(key, 0) + 1
    return [Lapse(day, s, b, n) for (day, s, b), n in sorted(counts.items())]


@dataclass(frozen=True, slots=True)
class Decisions:
    #: Decisions per second over the last whole minute, and over the last hour (to now).
    per_second_minute: float
    per_second_hour: float
    allowed_hour: int
    #: Denials of the last hour by reason, most first.
    denials: list[tuple[str, int]]


async def decisions(client: RedisClient, tenant_id: str, now: datetime) -> Decisions:
    """What the gateways decided for this tenant in the last hour, from the per-minute
    counts their write-back adds to Redis (``keys.decisions_key``)."""
    this_minute = int(now.timestamp() // 60)
    minutes = range(this_minute - 59, this_minute + 1)  # the hour up to now
    async with client.pipeline(transaction=False) as pipe:
        for minute in minutes:
            pipe.hgetall(keys.decisions_key(tenant_id, minute))
        counted: list[dict[bytes, bytes]] = await pipe.execute()
    last_minute, allowed = 0, 0
    denied: dict[str, int] = {}
    for minute, counts in zip(minutes, counted, strict=True):
        for label, value in counts.items():
            outcome, _, reason = label.decode().partition(":")
            n = int(value)
            if minute == this_minute - 1:
                last_minute += n
            if outcome == "allow":
                allowed += n
            else:
                denied[reason] = denied.get(reason, 0) + n
    hour = allowed + sum(denied.values())
    return Decisions(
        per_second_minute=round(last_minute / 60, 2),
        per_second_hour=round(hour / 3600, 2),
        allowed_hour=allowed,
        denials=sorted(denied.items(), key=lambda item: -item[1]),
    )


@dataclass(frozen=True, slots=True)
class AccountFilter:
    q: str = ""
    standing: str = ""
    kind: str = ""
    plan: str = ""
    page: int = 1


def _filtered(tenant_id: str, f: AccountFilter) -> Select[Account]:
    query = select(Account).where(Account.tenant_id == tenant_id)
    if f.q:
        # what was typed is matched as text: % and _ are not wildcards here
        typed = f.q.lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        like = f"%{typed}%"
        users = exists().where(
            User.tenant_id == tenant_id,
            User.account_id == Account.id,
            or_(
                func.lower(User.external_id) == f.q.lower(),
                func.lower(User.email).like(like, escape="\\"),
            ),
        )
        query = query.where(
            or_(
                func.lower(Account.name).like(like, escape="\\"),
                func.lower(Account.email).like(like, escape="\\"),
                Account.external_id == f.q,
                Account.id == f.q,
                users,
            )
        )
    if f.standing:
        query = query.where(Account.standing == f.standing)
    if f.kind:
        query = query.where(Account.kind == f.kind)
    if f.plan:
        query = query.where(
            exists().where(
                and_(Subscription.account_id == Account.id, Subscription.plan == f.plan,
                     Subscription.status == SubscriptionStatus.ACTIVE)
            )
        )  # fmt: skip
    return query


async def accounts(
    session: AsyncSession, tenant_id: str, f: AccountFilter
) -> tuple[list[Account], bool]:
    """A page of the tenant's accounts matching the filter, by name; and whether more follow."""
    query = (
        _filtered(tenant_id, f)
        .order_by(Account.name, Account.id)
        .offset((f.page - 1) * PAGE)
        .limit(PAGE + 1)
    )
    found = list((await session.scalars(query)).all())
    return found[:PAGE], len(found) > PAGE


async def plans_in_use(session: AsyncSession, tenant_id: str) -> list[str]:
    return list(
        (
            await session.scalars(
                select(Subscription.plan)
                .where(Subscription.tenant_id == tenant_id)
                .distinct()
                .order_by(Subscription.plan)
                .limit(200)
            )
        ).all()
    )


#: How many tenants the operator's list shows.
TENANTS_SHOWN = 500


async def tenants(session: AsyncSession) -> list[Tenant]:
    """Every tenant by name (the operator's list; first ``TENANTS_SHOWN``)."""
    return list(
        (await session.scalars(select(Tenant).order_by(Tenant.name).limit(TENANTS_SHOWN))).all()
    )


#: What needs a person, counted at each scrape (platform-wide: no tenant is named).
_GAUGES = {
    "tollgate_worker_parked_accounts": (
        "Accounts set aside until released (processing failed, or a charge's outcome "
        "could not be learned).",
        select(func.count()).select_from(Account).where(Account.parked_at.is_not(None)),
    ),
    "tollgate_worker_parked_payment_events": (
        "Payment events set aside until released.",
        select(func.count()).select_from(PaymentEvent).where(PaymentEvent.parked_at.is_not(None)),
    ),
    "tollgate_worker_unsettled_charges": (
        "Charges made whose outcome is not known yet (pending or unknown).",
        select(func.count())
        .select_from(PaymentAttempt)
        .where(PaymentAttempt.status.in_(UNSETTLED)),
    ),
}


async def waiting_for_a_person(session: AsyncSession) -> list[tuple[str, str, int]]:
    """Each gauge of what waits for a person: its name, its meaning and its count now."""
    return [
        (name, text, int(await session.scalar(query) or 0))
        for name, (text, query) in _GAUGES.items()
    ]
