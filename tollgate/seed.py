"""``tollgate seed``: a realistic population, fast, straight into SQL and Redis.

Tenants, consumer and enterprise accounts, users and subscriptions, with a chosen share of
accounts in grace, degraded, suspended and cancelled standing. Rows are inserted in bulk; each
account's standing is computed with the same rule the scheduler applies, so the worker
finds nothing to change; the Redis view is written directly. A key file lists the keys and
sample users of each standing for the load tests.
"""

from __future__ import annotations

import json
import random
import secrets
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import insert, text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from tqdm import tqdm

from billing_worker.db.models import (
    Account,
    ApiKey,
    CatalogVersion,
    Invoice,
    InvoiceItem,
    PaymentMethod,
    Subscription,
    Tenant,
    User,
)
from billing_worker.domain.calendar import add_months
from billing_worker.domain.dunning import policy_from_document
from billing_worker.domain.standing import (
    RenewalOutlook,
    UnpaidInvoice,
    evaluate_standing,
)
from billing_worker.ids import new_id
from billing_worker.notifications.signing import new_secret
from billing_worker.publishing.outbox import key_entry
from shared import keys
from shared.credentials import KeyKind, encode_key_entry, issue_key
from shared.entitlement import (
    EntitlementRecord,
    UserEntry,
    encode_record,
    encode_user,
)
from shared.money import Money
from shared.redis_connection import RedisClient
from shared.states import SessionPolicy, Standing, UserStatus

CHUNK = 2_000
SAMPLE = 2_000
PRICE_MINOR = {"pro": 4900, "team": 19900}


@dataclass(frozen=True, kw_only=True, slots=True)
class SeedPlan:
    users: int = 100_000
    tenants: int = 1
    #: Share of *users* that belong to enterprise accounts.
    enterprise_share: float = 0.3
    users_per_enterprise: int = 50
    grace: float = 0.05
    degraded: float = 0.03
    suspended: float = 0.05
    cancelled: float = 0.02
    #: Share of accounts with a default card (sandbox tokens), and of those cards, the
    #: share that declines every charge (insufficient funds).
    cards: float = 0.0
    declining_cards: float = 0.0
    seed: int = 7

    def __post_init__(self) -> None:
        if self.users < 1 or self.tenants < 1 or self.users_per_enterprise < 1:
            raise ValueError("users, tenants and users_per_enterprise must be >= 1")
        ladder = (self.grace, self.degraded, self.suspended, self.cancelled)
        cards = (self.cards, self.declining_cards)
        if any(not 0 <= share <= 1 for share in (self.enterprise_share, *ladder, *cards)):
            raise ValueError("shares must be between 0 and 1")
        if sum(ladder) > 1:
            raise ValueError("grace + degraded + suspended + cancelled must not exceed 1")


@dataclass
class TenantKeys:
    id: str
    admin_key: str
    gateway_key: str
    users: dict[str, list[str]] = field(default_factory=dict)
    #: Sample (account id, one of its users) by standing.
    accounts: dict[str, list[tuple[str, str]]] = field(default_factory=dict)


def _standings(plan: SeedPlan, rng: random.Random) -> Iterator[Standing]:
    shares = ((Standing.CANCELLED, plan.cancelled), (Standing.SUSPENDED, plan.suspended),
              (Standing.DEGRADED, plan.degraded), (Standing.GRACE, plan.grace))  # fmt: skip
    while True:
        roll = rng.random()
        for standing, share in shares:
            if roll < share:
                yield standing
                break
            roll -= share
        else:
            yield Standing.ACTIVE


def _card(plan: SeedPlan, rng: random.Random) -> str | None:
    """The sandbox token of a new account's default card, or None for no card."""
    if rng.random() >= plan.cards:
        return None
    declines = rng.random() < plan.declining_cards
    return "tok_sandbox_insufficient_funds" if declines else "tok_sandbox_success"


#: How long ago each standing's subscription started (unpaid unless active).
_STARTED_DAYS_AGO = {Standing.ACTIVE: 10, Standing.GRACE: 10, Standing.DEGRADED: 20,
                     Standing.SUSPENDED: 45}  # fmt: skip

#: The seeded tenants' default dunning policy: the classic ladder with a degraded stage.
DUNNING_POLICY = {
    "stages": [{"standing": "grace", "days_past_due": 0},
               {"standing": "degraded", "days_past_due": 15},
               {"standing": "suspended", "days_past_due": 30}],
    "reminder_every_days": 1,
    "retry_days": [1, 3, 7, 14],
}  # fmt: skip


@dataclass(frozen=True, slots=True)
class _Plan:
    code: str
    amount_minor: int
    features: tuple[str, ...]
    seat_limit: int | None
    session_policy: str

    def catalog_entry(self) -> dict[str, Any]:
        entitlement: dict[str, Any] = {
            "features": list(self.features),
            "session_policy": self.session_policy,
        }
        if self.seat_limit:
            entitlement["seat_limit"] = self.seat_limit
        amount = str(Money.from_minor(self.amount_minor, "USD").amount)
        return {
            "product": self.code,
            "billing_period": "monthly",
            "entitlement": entitlement,
            "phases": [{"type": "evergreen", "recurring": {"USD": amount}}],
        }


class _Batch:
    """Rows and Redis writes of one chunk of accounts."""

    def __init__(self) -> None:
        self.rows: dict[type, list[dict[str, Any]]] = {
            Account: [],
            User: [],
            Subscription: [],
            Invoice: [],
            InvoiceItem: [],
            PaymentMethod: [],
        }
        self.redis: list[tuple[str, bytes]] = []


def _account(
    batch: _Batch,
    tenant: Tenant,
    plan: _Plan,
    kind: str,
    users: list[str],
    wanted: Standing,
    now: datetime,
    card: str | None = None,
) -> Standing:
    account_id = new_id("acc")
    unpaid: list[UnpaidInvoice] = []
    renewals: list[RenewalOutlook] = []
    cycle_day: int | None = None
    next_bill_on: date | None = None
    if wanted is not Standing.CANCELLED:
        # at midnight UTC, as the worker starts and bills by the day (the seeded accounts'
        # time zone): renewals and due dates fall where the worker's own would
        began = (now - timedelta(days=_STARTED_DAYS_AGO[wanted])).date()
        start = datetime.combine(began, time.min, tzinfo=UTC)
        sub_id = new_id("sub")
        period_start = start
        while period_start <= now:
            period_end = datetime.combine(
                add_months(period_start.date(), 1, start.day), start.timetz()
            )
            paid = wanted is Standing.ACTIVE
            invoice_id = new_id("inv")
            batch.rows[Invoice].append(
                {"id": invoice_id, "tenant_id": tenant.id, "account_id": account_id,
                 "invoice_date": period_start.date(), "issued_at": period_start,
                 "due_at": period_start, "currency": "USD", "total_minor": plan.amount_minor,
                 "paid_minor": plan.amount_minor if paid else 0,
                 "status": "paid" if paid else "open"}
            )  # fmt: skip
            batch.rows[InvoiceItem].append(
                {"id": new_id("ii"), "tenant_id": tenant.id, "invoice_id": invoice_id,
                 "account_id": account_id, "subscription_id": sub_id, "kind": "recurring",
                 "start_date": period_start.date(), "end_date": period_end.date(),
                 "amount_minor": plan.amount_minor, "currency": "USD",
                 "rate": f"{plan.code}/evergreen/default", "plan": plan.code,
                 "phase": "evergreen", "quantity": 1, "linked_item_id": None}
            )  # fmt: skip
            if not paid:
                balance = Money.from_minor(plan.amount_minor, "USD")
                unpaid.append(
                    UnpaidInvoice(invoice_id=invoice_id, due_at=period_start, balance=balance)
                )
            period_start = period_end
        renewals.append(RenewalOutlook(next_invoice_at=period_start, net_terms=timedelta(0)))
        cycle_day, next_bill_on = start.day, period_start.date()
        batch.rows[Subscription].append(
            {"id": sub_id, "tenant_id": tenant.id, "account_id": account_id, "base_id": None,
             "external_id": None, "plan": plan.code, "price_list": "default", "quantity": 1,
             "cycle_day": None, "entitlement_start": start.date(),
             "billing_start": start.date(), "entitlement_end": None, "billing_end": None,
             "events": [], "reconcile_from": None, "status": "active", "created_at": now}
        )  # fmt: skip
    result = evaluate_standing(
        unpaid=unpaid,
        renewals=renewals,
        has_active_subscription=wanted is not Standing.CANCELLED,
        policy=policy_from_document(DUNNING_POLICY, "USD"),
        now=now,
    )
    batch.rows[Account].append(
        {"id": account_id, "tenant_id": tenant.id, "external_id": account_id,
         "name": f"Seeded {kind} {account_id[-6:]}", "email": None, "kind": kind,
         "currency": "USD", "net_terms_days": 0, "credit_minor": 0, "timezone": "UTC",
         "cycle_day": cycle_day, "parent_id": None, "payment_delegated": False,
         "price_list": None, "next_bill_on": next_bill_on,
         "standing": result.standing.value, "standing_reason": result.reason,
         "valid_until": result.access_until, "next_evaluation_at": result.next_change_at,
         "ent_version": 1, "created_at": now}
    )  # fmt: skip
    record = EntitlementRecord(
        tenant_id=tenant.id,
        account_id=account_id,
        version=1,
        standing=result.standing,
        reason=result.reason,
        valid_until=int(result.access_until.timestamp()) if result.access_until else None,
        seat_limit=plan.seat_limit,
        session_policy=SessionPolicy(plan.session_policy),
        features=tuple(plan.features),
        plan=plan.code,
        session_idle_seconds=tenant.session_idle_seconds,
        fail_open_seconds=tenant.fail_open_seconds,
    )
    encoded = encode_record(record)
    batch.rows[Account][-1]["ent_record"] = encoded
    if card is not None:
        batch.rows[PaymentMethod].append(
            {"id": new_id("pm"), "tenant_id": tenant.id, "account_id": account_id,
             "provider": "sandbox", "token": card, "label": None, "is_default": True,
             "created_at": now, "removed_at": None}
        )  # fmt: skip
    batch.redis.append((keys.account_key(tenant.id, account_id), encoded))
    for user in users:
        batch.rows[User].append(
            {"id": new_id("usr"), "tenant_id": tenant.id, "account_id": account_id,
             "external_id": user, "email": None, "status": "active", "version": 1,
             "created_at": now}
        )  # fmt: skip
        entry = UserEntry(
            tenant_id=tenant.id,
            user_id=user,
            account_id=account_id,
            status=UserStatus.ACTIVE,
            version=1,
        )
        batch.redis.append((keys.user_key(tenant.id, user), encode_user(entry)))
    return result.standing


async def _flush(
    sessions: async_sessionmaker[AsyncSession], client: RedisClient, batch: _Batch
) -> None:
    async with sessions() as session, session.begin():
        # foreign keys first
        for model in (Account, Subscription, Invoice, InvoiceItem, User, PaymentMethod):
            if batch.rows[model]:
                await session.execute(insert(model), batch.rows[model])
    async with client.pipeline(transaction=False) as pipe:
        for key, value in batch.redis:
            pipe.set(key, value)
        await pipe.execute()


async def _tenant(
    sessions: async_sessionmaker[AsyncSession], client: RedisClient, index: int, now: datetime
) -> tuple[Tenant, dict[str, _Plan], TenantKeys]:
    tenant = Tenant(id=new_id("ten"), name=f"Seeded SaaS {index + 1}", grace_days=30,
                    net_terms_days=0, session_idle_seconds=1800, fail_open_seconds=0,
                    degraded_read_only=True, dunning_policies={"default": DUNNING_POLICY},
                    webhook_secret=new_secret(), provider_webhook_secret=new_secret(),
                    created_at=now)  # fmt: skip
    admin, gateway = issue_key(), issue_key()
    plans = {
        "pro": _Plan("pro", PRICE_MINOR["pro"], ("reports",), 3, "evict_oldest"),
        "team": _Plan("team", PRICE_MINOR["team"], ("reports", "sso"), None, "deny_new"),
    }
    document = {
        "effective_date": "2000-01-01",
        "currencies": ["USD"],
        "products": {code: {"category": "base"} for code in plans},
        "plans": {code: p.catalog_entry() for code, p in plans.items()},
    }
    async with sessions() as session, session.begin():
        session.add(tenant)
        await session.flush()
        session.add(CatalogVersion(tenant_id=tenant.id, effective_date=date(2000, 1, 1),
                                   document=document, created_at=now))  # fmt: skip
        for kind, issued in ((KeyKind.ADMIN, admin), (KeyKind.GATEWAY, gateway)):
            key = ApiKey(id=issued.key_id, tenant_id=tenant.id, kind=kind.value,
                         secret_hash=issued.secret_hash, version=1, created_at=now)  # fmt: skip
            session.add(key)
            if kind is KeyKind.GATEWAY:
                await client.set(keys.api_key_key(key.id), encode_key_entry(key_entry(key)))
    return tenant, plans, TenantKeys(tenant.id, admin.token, gateway.token)


async def seed(
    sessions: async_sessionmaker[AsyncSession],
    client: RedisClient,
    plan: SeedPlan,
    now: datetime,
    *,
    progress: bool = True,
) -> list[TenantKeys]:
    """Create the population; returns each tenant's keys and sample users by standing."""
    rng = random.Random(plan.seed)
    standings = _standings(plan, rng)
    result: list[TenantKeys] = []
    per_tenant = [plan.users // plan.tenants + (i < plan.users % plan.tenants)
                  for i in range(plan.tenants)]  # fmt: skip
    bar = tqdm(total=plan.users, unit="user", desc="seeding", disable=not progress)
    for index, users_here in enumerate(per_tenant):
        tenant, plans, tenant_keys = await _tenant(sessions, client, index, now)
        result.append(tenant_keys)
        enterprise_users = int(users_here * plan.enterprise_share)
        made, batch, token = 0, _Batch(), secrets.token_hex(3)
        while made < users_here:
            enterprise = made < enterprise_users
            size = min(plan.users_per_enterprise, enterprise_users - made) if enterprise else 1
            users = [f"u{index}-{token}-{made + n}@seed.test" for n in range(size)]
            kind, chosen = (
                ("enterprise", plans["team"]) if enterprise else ("consumer", plans["pro"])
            )
            card = _card(plan, rng)
            standing = _account(batch, tenant, chosen, kind, users, next(standings), now, card=card)
            for bucket in (standing.value, f"{kind}:{standing.value}"):
                sample = tenant_keys.users.setdefault(bucket, [])
                if len(sample) < SAMPLE:
                    sample.extend(users[: SAMPLE - len(sample)])
            accounts = tenant_keys.accounts.setdefault(standing.value, [])
            if len(accounts) < SAMPLE:
                accounts.append((batch.rows[Account][-1]["id"], users[0]))
            made += size
            if len(batch.rows[User]) >= CHUNK:
                await _flush(sessions, client, batch)
                bar.update(len(batch.rows[User]))
                batch = _Batch()
        await _flush(sessions, client, batch)
        bar.update(len(batch.rows[User]))
    bar.close()
    await _analyze(sessions)
    return result


async def _analyze(sessions: async_sessionmaker[AsyncSession]) -> None:
    """Refresh the planner's statistics after the bulk load, as after any restore: a
    freshly loaded PostgreSQL table has none, and an invoice run's batch query was then
    planned as a full scan and sort per batch until autovacuum got to it."""
    async with sessions() as session, session.begin():
        await session.execute(text("ANALYZE"))


def write_key_file(path: Path, tenants: list[TenantKeys]) -> None:
    document = {
        "tenants": [
            {"id": t.id, "admin_key": t.admin_key, "gateway_key": t.gateway_key,
             "users": t.users, "accounts": t.accounts}
            for t in tenants
        ],
    }  # fmt: skip
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(document, indent=1))
    path.chmod(0o600)
