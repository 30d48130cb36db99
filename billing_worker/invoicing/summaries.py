"""A parent's summary invoices: its payment-delegating children keep their own invoices,
and the parent is billed one summary a day with an item per child invoice.

When a child's invoice is issued the parent is due at once; processing it adds every child
invoice that no summary holds yet to the parent's summary *draft* of that local day. The
draft is owed by no one (no collection, no dunning) until it commits itself at the end of
that day (or at the tenant's ``summary_commit_time``), a due moment of the parent like any
other. Paying the committed summary pays the children's invoices it lists, in order
(``billing.settle_children``); the children's standing follows the parent's throughout.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import exists, select
from sqlalchemy.ext.asyncio import AsyncSession

from billing_worker.db.models import Account, Invoice, InvoiceItem, Tenant
from billing_worker.domain.statuses import InvoiceStatus
from billing_worker.ids import new_id
from billing_worker.invoicing import prefetch
from billing_worker.invoicing.invoicer import (
    commit_invoice,
    local_midnight,
    local_today,
    new_invoice,
)
from billing_worker.invoicing.prefetch import Prefetched
from shared.money import Money


def delegates(parent: Account, children: Sequence[Account]) -> list[Account]:
    """The children whose invoices ``parent`` pays through its summaries."""
    if parent.kind == "reseller":
        return []  # a reseller is invoiced for its customers directly (wholesale)
    return [c for c in children if c.payment_delegated]


async def _children(
    session: AsyncSession, parent: Account, prefetched: Prefetched | None
) -> list[Account]:
    return delegates(parent, await prefetch.children(session, parent, prefetched))


def commit_moment(tenant: Tenant, parent: Account, day: date) -> datetime:
    """When the summary draft of ``day`` commits itself: the tenant's time that day, else
    the end of the day, in the parent's time zone."""
    if tenant.summary_commit_time is None:
        return local_midnight(day + timedelta(days=1), parent.timezone)
    hours, minutes = (int(part) for part in tenant.summary_commit_time.split(":"))
    return datetime.combine(day, time(hours, minutes), ZoneInfo(parent.timezone))


async def _drafts(session: AsyncSession, parent: Account) -> list[Invoice]:
    return list(
        (
            await session.scalars(
                select(Invoice)
                .where(
                    Invoice.tenant_id == parent.tenant_id,
                    Invoice.account_id == parent.id,
                    Invoice.is_summary.is_(True),
                    Invoice.status == InvoiceStatus.DRAFT,
                )
                .order_by(Invoice.invoice_date)
            )
        ).all()
    )


async def summarize(
    session: AsyncSession,
    tenant: Tenant,
    parent: Account,
    now: datetime,
    prefetched: Prefetched | None = None,
) -> None:
    """Add the children's invoices no summary holds yet to today's summary draft, and
    commit the drafts whose moment has come."""
    children = await _children(session, parent, prefetched)
    if not children:
        return
    covered = exists().where(InvoiceItem.child_invoice_id == Invoice.id)
    pending = (
        await session.scalars(
            select(Invoice)
            .where(
                Invoice.tenant_id == tenant.id,
                Invoice.account_id.in_([c.id for c in children]),
                Invoice.status == InvoiceStatus.OPEN,
                Invoice.total_minor > 0,
                ~covered,
            )
            .order_by(Invoice.issued_at, Invoice.id)
        )
    ).all()
    drafts = await _drafts(session, parent)
    if pending:
        today = local_today(now, parent.timezone)
        draft = next((d for d in drafts if d.invoice_date == today), None)
        if draft is None:
            zero = Money.zero(parent.currency)
            draft = new_invoice(
                parent, today, now, total=zero, status=InvoiceStatus.DRAFT, is_summary=True
            )
            session.add(draft)
            drafts.append(draft)
            await session.flush()
        for invoice in pending:
            draft.total_minor += invoice.total_minor
            session.add(
                InvoiceItem(
                    id=new_id("ii"),
                    tenant_id=tenant.id,
                    invoice_id=draft.id,
                    account_id=parent.id,
                    kind="parent_summary",
                    start_date=invoice.invoice_date,
                    end_date=invoice.invoice_date + timedelta(days=1),
                    amount_minor=invoice.total_minor,
                    currency=invoice.currency,
                    rate=f"summary:{invoice.account_id}",
                    child_invoice_id=invoice.id,
                )
            )
    for draft in drafts:
        if commit_moment(tenant, parent, draft.invoice_date) <= now:
            await commit_invoice(session, parent, draft, now)
            if prefetched is not None and parent.id in prefetched.accounts:
                if (
                    draft.status == InvoiceStatus.OPEN
                ):  # owed from now: the standing sees it at once
                    prefetched.open_invoices[parent.id].append(draft)


async def next_commit(
    session: AsyncSession, tenant: Tenant, parent: Account, prefetched: Prefetched | None
) -> datetime | None:
    """The next moment a summary draft of ``parent`` commits itself, if it has one."""
    if prefetched is not None and parent.id in prefetched.accounts:
        if not delegates(parent, prefetched.children.get(parent.id, [])):
            return None
    drafts = await _drafts(session, parent)
    return min((commit_moment(tenant, parent, d.invoice_date) for d in drafts), default=None)
