"""Invoice numbers: sequential per tenant, without gaps, given when an invoice is issued.

Whatever issues an invoice (an invoice run, the scheduler, a charge, a draft committed), its
number comes from the tenant's counter row (``invoice_numbers``), taken in the issuing
transaction, so a transaction that rolls back took no number: no gap. The unit of work
(``db.unit_of_work``) takes them as the invoice is flushed, or, for a batch job, just before
its commit (``defer_numbers``): the counter row is then locked only while that transaction
commits, and workers issuing one tenant's invoices side by side wait on each other for a
moment only.
"""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import update
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from billing_worker.db.models import Invoice, InvoiceNumber
from billing_worker.domain.statuses import InvoiceStatus


def issued_among(objects: Iterable[object]) -> list[Invoice]:
    """The invoices among ``objects`` that are issued and have no number yet."""
    return [
        obj
        for obj in objects
        if isinstance(obj, Invoice) and obj.status != InvoiceStatus.DRAFT and obj.number is None
    ]


def allocate(session: Session, issued: list[Invoice]) -> None:
    """Number ``issued`` from their tenants' counters, in the order they were issued."""
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
