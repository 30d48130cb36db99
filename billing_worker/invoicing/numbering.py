"""Invoice numbers: sequential per tenant, without gaps, given when an invoice is issued.

Whatever issues an invoice (an invoice run, the scheduler, a charge, a draft committed), its
number comes from the tenant's counter row (``invoice_numbers``), taken in the issuing
transaction, so a transaction that rolls back took no number: no gap. By default it is
taken as the invoice is flushed, so an API answer shows it. A batch job that issues many
invoices in one transaction defers it to just before commit (``defer_numbers``): the
counter row is then locked only while that transaction commits, not while the batch is
computed, and workers issuing one tenant's invoices side by side wait on each other for a
moment only. Within a transaction, invoices are numbered in the order they were issued.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import event, update
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session, UOWTransaction

from billing_worker.db.models import Invoice, InvoiceNumber
from billing_worker.domain.invoicing.numbers import display_number
from billing_worker.domain.statuses import InvoiceStatus

__all__ = ["defer_numbers", "display_number"]

_PENDING = "invoices_to_number"
_DEFER = "defer_invoice_numbers"


def _issued(obj: Any) -> bool:
    return isinstance(obj, Invoice) and obj.status != InvoiceStatus.DRAFT and obj.number is None


def defer_numbers(session: AsyncSession) -> None:
    """Number the invoices this session issues just before it commits (batch jobs)."""
    session.info[_DEFER] = True


@event.listens_for(Session, "before_flush")
def _number_now(session: Session, _flush: UOWTransaction, _instances: object) -> None:
    issued = [obj for obj in (*session.new, *session.dirty) if _issued(obj)]
    if not issued:
        return
    if session.info.get(_DEFER):
        pending = session.info.setdefault(_PENDING, {})
        pending.update({invoice.id: invoice for invoice in issued})
    else:
        _allocate(session, issued)


@event.listens_for(Session, "before_commit")
def _number_deferred(session: Session) -> None:
    if _PENDING not in session.info:
        return
    if session.new or session.dirty:
        session.flush()  # what this transaction issues is issued by now
    pending: dict[str, Invoice] = session.info.pop(_PENDING, {})
    _allocate(session, [invoice for invoice in pending.values() if _issued(invoice)])


def _allocate(session: Session, issued: list[Invoice]) -> None:
    by_tenant: dict[str, list[Invoice]] = {}
    for invoice in sorted(issued, key=lambda i: (i.issued_at, i.id)):
        by_tenant.setdefault(invoice.tenant_id, []).append(invoice)
    insert = postgresql_insert if session.get_bind().dialect.name == "postgresql" else sqlite_insert
    for tenant_id in sorted(by_tenant):  # one order for every transaction: no deadlock
        batch = by_tenant[tenant_id]
        session.execute(
            insert(InvoiceNumber)
            .values(tenant_id=tenant_id, last_number=0)
            .on_conflict_do_nothing(index_elements=["tenant_id"])
        )
        last = session.execute(
            update(InvoiceNumber)
            .where(InvoiceNumber.tenant_id == tenant_id)
            .values(last_number=InvoiceNumber.last_number + len(batch))
            .returning(InvoiceNumber.last_number)
        ).scalar_one()
        for number, invoice in enumerate(batch, start=last - len(batch) + 1):
            invoice.number = number


@event.listens_for(Session, "after_rollback")
def _forget(session: Session) -> None:
    session.info.pop(_PENDING, None)


@event.listens_for(Session, "after_commit")
def _done(session: Session) -> None:
    session.info.pop(_DEFER, None)
