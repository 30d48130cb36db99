"""An account of a tenant: created (as a child of a parent, which may pay for it), read with
what it owes and what its page shows, its end users added, its invoices and daily usage."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from billing_worker.db.models import (
    Account,
    Invoice,
    InvoiceItem,
    Message,
    Payment,
    StandingChange,
    Subscription,
    Tenant,
    UsageDaily,
    User,
)
from billing_worker.domain.statuses import InvoiceStatus
from billing_worker.ids import new_id
from billing_worker.publishing.outbox import stage_user
from billing_worker.services.errors import Conflict, InvalidRequest, NotFound
from billing_worker.services.invoices import items_of
from billing_worker.standing.entitlements import refresh_account
from billing_worker.standing.evaluation import Evaluation, evaluate_account
from shared.money import is_currency
from shared.states import Reason, Standing, UserStatus

#: At most this many of an account's invoices are listed, and days of its usage.
INVOICES_LISTED = 500
USAGE_DAYS_LISTED = 400


class NewAccount(Protocol):
    """An account as a request asks for it."""

    @property
    def name(self) -> str: ...
    @property
    def external_id(self) -> str | None: ...
    @property
    def email(self) -> str | None: ...
    @property
    def billing_address(self) -> Sequence[str] | None: ...
    @property
    def kind(self) -> str: ...
    @property
    def currency(self) -> str: ...
    @property
    def net_terms_days(self) -> int | None: ...
    @property
    def timezone(self) -> str: ...
    @property
    def cycle_day(self) -> int | None: ...
    @property
    def parent_id(self) -> str | None: ...
    @property
    def payment_delegated(self) -> bool: ...
    @property
    def price_list(self) -> str | None: ...
    @property
    def collection(self) -> str: ...
    @property
    def invoicing(self) -> str: ...
    @property
    def dunning_policy(self) -> str | None: ...


def is_time_zone(name: str) -> bool:
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return False
    return True


def invoiced_by_parent(parent_id: str, field: str) -> str:
    """Why ``field`` cannot be set on an account its parent is invoiced for."""
    return f"this account is invoiced through its parent {parent_id}: set the parent's {field}"


async def create_account(
    session: AsyncSession, tenant_id: str, new: NewAccount, now: datetime
) -> Account:
    """Create the account (with no subscription yet: cancelled, and published so)."""
    if not is_currency(new.currency):
        raise InvalidRequest.field("currency", f"{new.currency!r} is not an ISO 4217 currency")
    if not is_time_zone(new.timezone):
        raise InvalidRequest.field("timezone", f"{new.timezone!r} is not an IANA time zone")
    tenant = await session.get(Tenant, tenant_id)
    assert tenant is not None  # the key's tenant exists: keys reference it
    if new.external_id is not None:
        taken = await session.scalar(
            select(Account.id).where(
                Account.tenant_id == tenant_id, Account.external_id == new.external_id
            )
        )
        if taken:
            raise Conflict.field("external_id", f"account {new.external_id!r} exists")
    await _check_parent(session, tenant_id, new)
    account = Account(
        id=new_id("acc"),
        tenant_id=tenant_id,
        external_id=new.external_id,
        name=new.name,
        email=new.email,
        billing_address="\n".join(new.billing_address) if new.billing_address else None,
        kind=new.kind,
        currency=new.currency,
        net_terms_days=(
            new.net_terms_days if new.net_terms_days is not None else tenant.net_terms_days
        ),
        credit_minor=0,
        timezone=new.timezone,
        cycle_day=new.cycle_day,
        parent_id=new.parent_id,
        payment_delegated=new.payment_delegated,
        price_list=new.price_list,
        collection=new.collection,
        invoicing=new.invoicing,
        dunning_policy=new.dunning_policy,
        standing=Standing.CANCELLED.value,
        standing_reason=Reason.NO_ACTIVE_SUBSCRIPTION,
        ent_version=0,
        created_at=now,
    )
    session.add(account)
    await session.flush()
    await refresh_account(session, tenant, account, now)
    return account


async def _check_parent(session: AsyncSession, tenant_id: str, new: NewAccount) -> None:
    if new.parent_id is None:
        if new.payment_delegated:
            raise InvalidRequest.field("payment_delegated", "needs a parent_id to pay for it")
        return
    parent = await session.scalar(
        select(Account).where(Account.tenant_id == tenant_id, Account.id == new.parent_id)
    )
    if parent is None:
        raise InvalidRequest.field("parent_id", f"no account {new.parent_id!r}")
    if parent.parent_id is not None:
        raise InvalidRequest.field("parent_id", "a child account cannot be a parent")
    pays = new.payment_delegated or parent.kind == "reseller"
    if pays and parent.currency != new.currency:
        raise InvalidRequest.field(
            "currency", f"the paying parent is billed in {parent.currency}, not {new.currency}"
        )
    if parent.kind == "reseller" and new.invoicing == "held":
        raise InvalidRequest.field("invoicing", invoiced_by_parent(parent.id, "invoicing"))


async def add_user(
    session: AsyncSession, account: Account, external_id: str, email: str | None, now: datetime
) -> User:
    """Add an end user to the (locked) account and publish it; a removed user's id may be
    used again: a new life, with a newer version."""
    taken = await session.scalar(
        select(User)
        .where(User.tenant_id == account.tenant_id, User.external_id == external_id)
        .with_for_update()
    )
    if taken is not None and taken.status != UserStatus.DELETED.value:
        raise Conflict.field("external_id", f"user {external_id!r} already exists")
    if taken is not None:
        user = taken
        user.account_id, user.email = account.id, email
        user.status, user.version, user.created_at = UserStatus.ACTIVE.value, user.version + 1, now
    else:
        user = User(id=new_id("usr"), tenant_id=account.tenant_id, account_id=account.id,
                    external_id=external_id, email=email, status=UserStatus.ACTIVE.value,
                    version=1, created_at=now)  # fmt: skip
        session.add(user)
    stage_user(session, user, now)
    return user


async def invoices_of(
    session: AsyncSession, account: Account
) -> list[tuple[Invoice, list[InvoiceItem]]]:
    """The account's invoices, newest first, each with its items."""
    invoices = (
        await session.scalars(
            select(Invoice)
            .where(Invoice.tenant_id == account.tenant_id, Invoice.account_id == account.id)
            .order_by(Invoice.invoice_date.desc(), Invoice.issued_at.desc(), Invoice.id)
            .limit(INVOICES_LISTED)
        )
    ).all()
    by_invoice = await items_of(session, account.tenant_id, invoices)
    return [(i, by_invoice.get(i.id, [])) for i in invoices]


async def usage_days(session: AsyncSession, account: Account) -> list[UsageDaily]:
    """The daily usage the gateways recorded for the account, newest first."""
    query = (
        select(UsageDaily)
        .where(UsageDaily.tenant_id == account.tenant_id, UsageDaily.account_id == account.id)
        .order_by(UsageDaily.day.desc())
        .limit(USAGE_DAYS_LISTED)
    )
    return list((await session.scalars(query)).all())


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


@dataclass(frozen=True, slots=True)
class AccountPage:
    """Accounts in id order, each with what it owes, and whether more follow."""

    accounts: list[Account]
    owed: dict[str, int]
    more: bool


async def accounts_page(
    session: AsyncSession,
    tenant_id: str,
    *,
    after: str,
    limit: int,
    standing: str | None,
    kind: str | None,
) -> AccountPage:
    """The tenant's accounts after ``after`` in id order, filtered by standing and kind."""
    where = [Account.tenant_id == tenant_id, Account.id > after]
    if standing is not None:
        where.append(Account.standing == standing)
    if kind is not None:
        where.append(Account.kind == kind)
    found = (
        await session.scalars(select(Account).where(*where).order_by(Account.id).limit(limit + 1))
    ).all()
    page = list(found[:limit])
    owed = (
        await session.execute(
            select(Invoice.account_id, func.sum(Invoice.total_minor - Invoice.paid_minor))
            .where(
                Invoice.tenant_id == tenant_id,
                Invoice.account_id.in_([a.id for a in page]),
                Invoice.status == InvoiceStatus.OPEN,
            )
            .group_by(Invoice.account_id)
        )
    ).all()
    return AccountPage(page, {a: int(o or 0) for a, o in owed}, len(found) > limit)


async def standing_of(
    session: AsyncSession, tenant_id: str, account_id: str, now: datetime
) -> tuple[Account, Evaluation]:
    """The account and where it stands as of ``now`` (its dunning ladder, what decides it)."""
    account = await tenant_account(session, tenant_id, account_id)
    tenant = await session.get(Tenant, tenant_id)
    assert tenant is not None
    return account, await evaluate_account(session, tenant, account, now)
