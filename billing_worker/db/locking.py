"""How every writer locks accounts: a parent before its child, always in that order.

A change to an account can change what its bill-to parent owes and what the children that
follow the parent's standing may do, so a writer that changes a child holds the parent too.
Taking the parent first, in every transaction that takes both, is what keeps two writers
from deadlocking (on PostgreSQL; SQLite's single writer cannot).
"""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from billing_worker.db.models import Account


async def lock_account(session: AsyncSession, tenant_id: str, account_id: str) -> Account | None:
    """Load one account of one tenant, locked for update where the database can."""
    return await session.scalar(
        select(Account)
        .where(Account.tenant_id == tenant_id, Account.id == account_id)
        .with_for_update()
    )


async def lock_with_parent(
    session: AsyncSession, tenant_id: str, account_id: str
) -> Account | None:
    """Lock the account, its parent first when it has one; None when there is no such
    account of the tenant."""
    parent_id = await session.scalar(
        select(Account.parent_id).where(Account.tenant_id == tenant_id, Account.id == account_id)
    )
    if parent_id is not None:
        await lock_account(session, tenant_id, parent_id)
    return await lock_account(session, tenant_id, account_id)
