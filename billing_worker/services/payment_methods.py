"""An account's payment methods: provider tokens stored (never card data), made the
default -- what is owed is charged to it at once -- listed, and removed."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from billing_worker.db.locking import lock_account
from billing_worker.db.models import Account, PaymentMethod, Tenant
from billing_worker.ids import new_id
from billing_worker.payments.book import ProviderBook
from billing_worker.services.accounts import tenant_account
from billing_worker.services.errors import Conflict, InvalidRequest, NotFound
from billing_worker.standing.entitlements import refresh_account


async def add_method(
    session: AsyncSession,
    providers: ProviderBook,
    tenant_id: str,
    account_id: str,
    now: datetime,
    *,
    token: str,
    label: str | None,
    default: bool,
) -> PaymentMethod:
    """Store a token of one of the tenant's providers (a removed one comes back); it becomes
    the default when asked, or when the account has none."""
    configured = await providers.of(session, tenant_id)
    provider = next((p for p in configured if p.accepts(token)), None)
    if provider is None:
        names = ", ".join(p.name for p in configured)
        raise InvalidRequest.field(
            "token", f"not a token of a configured payment provider ({names})"
        )
    account = await lock_account(session, tenant_id, account_id)
    if account is None:
        raise NotFound(f"no account {account_id!r}")
    method = await session.scalar(
        select(PaymentMethod).where(
            PaymentMethod.tenant_id == tenant_id,
            PaymentMethod.account_id == account.id,
            PaymentMethod.token == token,
        )
    )
    if method is not None and method.removed_at is None:
        raise Conflict(f"the account already has this token as {method.id}")
    if method is None:
        method = PaymentMethod(id=new_id("pm"), tenant_id=tenant_id, account_id=account.id,
                               provider=provider.name, token=token, is_default=False,
                               created_at=now)  # fmt: skip
        session.add(method)
    method.label, method.removed_at = label, None  # a removed token comes back
    has_default = await session.scalar(
        select(PaymentMethod.id).where(
            PaymentMethod.tenant_id == tenant_id,
            PaymentMethod.account_id == account.id,
            PaymentMethod.is_default,
        )
    )
    await session.flush()
    if default or has_default is None:
        await _make_default(session, account, method, now)
    return method


async def _make_default(
    session: AsyncSession, account: Account, method: PaymentMethod, now: datetime
) -> None:
    """Make ``method`` the account's default: what is owed is charged to it at once, even
    after a hard decline of the previous card."""
    await session.execute(
        update(PaymentMethod)
        .where(PaymentMethod.tenant_id == account.tenant_id, PaymentMethod.account_id == account.id)
        .values(is_default=False)
    )
    method.is_default = True
    account.hard_declined, account.collect_at = False, now
    tenant = await session.get(Tenant, account.tenant_id)
    assert tenant is not None
    await session.flush()
    await refresh_account(session, tenant, account, now)


async def _locked_method(
    session: AsyncSession, tenant_id: str, method_id: str
) -> tuple[Account, PaymentMethod]:
    found = await session.scalar(
        select(PaymentMethod).where(
            PaymentMethod.tenant_id == tenant_id,
            PaymentMethod.id == method_id,
            PaymentMethod.removed_at.is_(None),
        )
    )
    account = await lock_account(session, tenant_id, found.account_id) if found else None
    if found is None or account is None:
        raise NotFound(f"no payment method {method_id!r}")
    await session.refresh(found, with_for_update=True)
    return account, found


async def make_default(
    session: AsyncSession, tenant_id: str, method_id: str, now: datetime
) -> PaymentMethod:
    account, method = await _locked_method(session, tenant_id, method_id)
    await _make_default(session, account, method, now)
    return method


async def methods_of(session: AsyncSession, tenant_id: str, account_id: str) -> list[PaymentMethod]:
    """The account's payment methods, the default first."""
    account = await tenant_account(session, tenant_id, account_id)
    query = (
        select(PaymentMethod)
        .where(
            PaymentMethod.tenant_id == tenant_id,
            PaymentMethod.account_id == account.id,
            PaymentMethod.removed_at.is_(None),
        )
        .order_by(PaymentMethod.is_default.desc(), PaymentMethod.created_at)
    )
    return list((await session.scalars(query)).all())


async def remove_method(
    session: AsyncSession, tenant_id: str, method_id: str, now: datetime
) -> None:
    """Removed, not deleted: the charges made with it keep naming it."""
    _account, method = await _locked_method(session, tenant_id, method_id)
    method.removed_at, method.is_default = now, False
