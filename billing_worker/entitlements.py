"""Recompute what an account may do from SQL, and owe the new record to Redis."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from billing_worker.db.models import Account, Invoice, Plan, Subscription, Tenant
from billing_worker.domain.standing import (
    GracePolicy,
    RenewalOutlook,
    StandingResult,
    UnpaidInvoice,
    evaluate_standing,
)
from billing_worker.outbox import stage_record
from shared.entitlement import EntitlementRecord
from shared.money import Money
from shared.states import SessionPolicy, Standing


async def evaluate_account(
    session: AsyncSession, tenant: Tenant, account: Account, now: datetime
) -> tuple[StandingResult, Plan | None]:
    """Run the standing rule for one account on its current SQL state."""
    subscriptions = (
        await session.scalars(
            select(Subscription).where(
                Subscription.tenant_id == tenant.id,
                Subscription.account_id == account.id,
                Subscription.status == "active",
            )
        )
    ).all()
    invoices = (
        await session.scalars(
            select(Invoice).where(
                Invoice.tenant_id == tenant.id,
                Invoice.account_id == account.id,
                Invoice.status == "open",
            )
        )
    ).all()
    unpaid = [
        UnpaidInvoice(
            invoice_id=inv.id,
            due_at=inv.due_at,
            balance=Money.from_minor(inv.total_minor - inv.paid_minor, inv.currency),
        )
        for inv in invoices
    ]
    renewals = [
        RenewalOutlook(
            next_invoice_at=sub.next_billing_at,
            net_terms=timedelta(days=account.net_terms_days),
        )
        for sub in subscriptions
    ]
    result = evaluate_standing(
        unpaid=unpaid,
        renewals=renewals,
        has_active_subscription=bool(subscriptions),
        policy=GracePolicy(grace_days=tenant.grace_days),
        now=now,
    )
    plan = None
    if subscriptions:
        first = min(subscriptions, key=lambda s: s.started_at)
        plan = await session.get(Plan, first.plan_id)
    return result, plan


async def refresh_account(
    session: AsyncSession, tenant: Tenant, account: Account, now: datetime
) -> EntitlementRecord:
    """Re-evaluate the account, store its standing and stage the new record.

    The caller holds the account row (``lock_account``) so versions never collide.
    """
    result, plan = await evaluate_account(session, tenant, account, now)
    account.ent_version += 1
    account.standing = result.standing.value
    account.standing_reason = result.reason
    account.valid_until = result.access_until
    account.next_evaluation_at = result.next_change_at
    record = EntitlementRecord(
        tenant_id=tenant.id,
        account_id=account.id,
        version=account.ent_version,
        standing=Standing(result.standing),
        reason=result.reason,
        valid_until=int(result.access_until.timestamp()) if result.access_until else None,
        seat_limit=plan.seat_limit if plan else None,
        session_policy=SessionPolicy(plan.session_policy) if plan else SessionPolicy.DENY_NEW,
        features=tuple(plan.features) if plan else (),
        plan=plan.code if plan else None,
        read_only=result.standing is Standing.DEGRADED and tenant.degraded_read_only,
        session_idle_seconds=tenant.session_idle_seconds,
        fail_open_seconds=tenant.fail_open_seconds,
    )
    stage_record(session, record, now)
    return record


async def lock_account(session: AsyncSession, tenant_id: str, account_id: str) -> Account | None:
    """Load one account of one tenant, locked for update where the database can."""
    return await session.scalar(
        select(Account)
        .where(Account.tenant_id == tenant_id, Account.id == account_id)
        .with_for_update()
    )
