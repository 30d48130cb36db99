"""Reading an account of a tenant: the account itself, what it owes, and what its page
shows (subscriptions, invoices, payments, users, standing history, messages)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from billing_worker.db.models import (
    Account,
    Invoice,
    Message,
    Payment,
    StandingChange,
    Subscription,
    Tenant,
    User,
)
from billing_worker.domain.statuses import InvoiceStatus
from billing_worker.services.errors import NotFound
from billing_worker.standing.evaluation import Evaluation, evaluate_account


async def tenant_account(session: AsyncSession, tenant_id: str, account_id: str) -> Account:
    """The account, if it belongs to the tenant (else not found)."""
    account = await session.scalar(
        select(Account).where(Account.tenant_id == tenant_id, Account.id == account_id)
    )
    if account is None:
        raise NotFound(f"no account {account_id!r}")
    return account


async def balance_due(session: AsyncSession, account: Account) -> int:
    """What the account's open invoices still owe, in minor units."""
    owed = await session.scalar(
        select(func.coalesce(func.sum(Invoice.total_minor - Invoice.paid_minor), 0)).where(
            Invoice.tenant_id == account.tenant_id,
            Invoice.account_id == account.id,
            Invoice.status == InvoiceStatus.OPEN,
        )
    )
    return int(owed or 0)


@dataclass(frozen=True, slots=True)
class Activity:
    """An account's recent rows of each kind, newest first (subscriptions oldest first)."""

    tenant: Tenant
    balance_due: int
    evaluation: Evaluation
    subscriptions: list[Subscription]
    invoices: list[Invoice]
    payments: list[Payment]
    users: list[User]
    history: list[StandingChange]
    messages: list[Message]


async def activity(session: AsyncSession, account: Account, now: datetime) -> Activity:
    """What the account's page shows, every query scoped by the tenant too."""
    tenant = await session.get(Tenant, account.tenant_id)
    assert tenant is not None

    async def rows(model: Any, *order: Any, limit: int = 20) -> list[Any]:
        query = select(model).where(model.tenant_id == account.tenant_id,
                                    model.account_id == account.id)  # fmt: skip
        return list((await session.scalars(query.order_by(*order).limit(limit))).all())

    return Activity(
        tenant=tenant,
        balance_due=await balance_due(session, account),
        evaluation=await evaluate_account(session, tenant, account, now),
        subscriptions=await rows(Subscription, Subscription.created_at),
        invoices=await rows(Invoice, Invoice.invoice_date.desc(), Invoice.id.desc()),
        payments=await rows(Payment, Payment.received_at.desc()),
        users=await rows(User, User.external_id, limit=100),
        history=await rows(StandingChange, StandingChange.effective_at.desc(), limit=12),
        messages=await rows(Message, Message.created_at.desc(), limit=12),
    )
