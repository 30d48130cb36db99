"""Bill and re-evaluate a batch of locked accounts: the loop the scheduler and invoice runs
share, reading through one prefetch and writing in one flush.

The scheduler *catches each account up*: it processes every due moment of the account up
to now, in time order and each as of its own instant (``domain.moments``), so a worker
that was down for a weekend, or a test clock moved 90 days at once, reaches what a worker
awake at every moment would have. It stops early only where a charge became due: the
collector makes it, and its outcome decides what the later moments do. A charge that fell
due while the worker was down is not made then: it goes on with the moments up to now (the
customer was not charged meanwhile), and the collector makes one charge, now, for all that
is owed.

What the outside world sees follows real time (``domain.moments.RealTime``): an invoice
is issued, a message staged and a charge made when the worker really does it, as of its
moment only while the worker counts as awake then (a test clock's jump). After an outage
the amounts and service periods are those of a worker on time, while the due date, the
reminder and the retries are planned from now.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import date, datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from billing_worker.db.models import Account, PaymentAttempt, Tenant
from billing_worker.domain.moments import (
    SAME_INSTANT_LIMIT,
    Member,
    RealTime,
    next_in_family,
    on_time,
)
from billing_worker.domain.statuses import AttemptStatus
from billing_worker.invoicing.catalogs import CatalogBook, NoCatalog, load_book
from billing_worker.invoicing.invoicer import bill_to, invoice_account
from billing_worker.invoicing.prefetch import Prefetched, prefetch
from billing_worker.invoicing.summaries import summarize
from billing_worker.standing.entitlements import refresh_account, refresh_family
from shared.clock import Clock

log = logging.getLogger(__name__)


def real_time(clock: Clock) -> RealTime:
    """What the clock says of real time now: its instant and through when the worker
    counts as awake."""
    return RealTime(now=clock.now(), awake_through=clock.awake_through())


class _Books:
    """Each tenant and its catalog book, loaded once per batch."""

    def __init__(self, session: AsyncSession) -> None:
        self._session = session
        self._tenants: dict[str, Tenant] = {}
        self._books: dict[str, CatalogBook | None] = {}

    async def of(self, account: Account) -> tuple[Tenant, CatalogBook | None]:
        tenant = self._tenants.get(account.tenant_id)
        if tenant is None:
            tenant = await self._session.get(Tenant, account.tenant_id)
            if tenant is None:
                raise LookupError(f"account {account.id} has no tenant")
            self._tenants[tenant.id] = tenant
        if tenant.id not in self._books:
            try:
                self._books[tenant.id] = await load_book(self._session, tenant.id)
            except NoCatalog:
                self._books[tenant.id] = None
        return tenant, self._books[tenant.id]


async def _process(
    session: AsyncSession,
    tenant: Tenant,
    book: CatalogBook | None,
    account: Account,
    at: datetime,
    prefetched: Prefetched,
    *,
    target: date | None = None,
    real: RealTime | None = None,
    alone: bool = False,
) -> bool:
    """Invoice the account (if it is a bill-to account) and re-publish its family (with
    ``alone``, the account only), as of ``at`` (seen by the outside world as ``real``
    says); returns whether an invoice was issued."""
    real = real or on_time(at)
    issued = None
    if book is not None and (await bill_to(session, account)).id == account.id:
        issued = await invoice_account(
            session, tenant, account, at, target=target, book=book, prefetched=prefetched,
            real=real,
        )  # fmt: skip
    await summarize(session, tenant, account, at, prefetched)
    if alone:
        await refresh_account(session, tenant, account, at, book=book, prefetched=prefetched,
                              real=real)  # fmt: skip
    else:
        await refresh_family(
            session, tenant, account, at, book=book, prefetched=prefetched, real=real
        )
    return issued is not None


async def bill_and_refresh(
    session: AsyncSession,
    accounts: Sequence[Account],
    now: datetime,
    *,
    target: date | None = None,
    real: RealTime | None = None,
) -> int:
    """Invoice each bill-to account (to ``target``, default its today), then re-publish it
    and the accounts that follow it, as of ``now``. Returns the number of invoices issued."""
    prefetched = await prefetch(session, accounts)
    books = _Books(session)
    invoices = 0
    for account in accounts:
        tenant, book = await books.of(account)
        invoices += await _process(
            session, tenant, book, account, now, prefetched, target=target, real=real
        )
    await session.flush()
    return invoices


async def bring_up_to(
    session: AsyncSession, account: Account, now: datetime, *, real: RealTime
) -> None:
    """Before an action changes a (locked) account as of ``now``, process the moments it
    is still due from (a worker that was down may not have reached them yet), so the
    action lands after them, as it would have with a worker awake at every moment; what
    they do is seen by the outside world as ``real`` (the clock's, ``real_time``) says. A
    parked account's time stands still until it is released
    (``billing_worker.runtime.parking``)."""
    if account.parked_at is not None:
        return
    if account.next_evaluation_at is not None and account.next_evaluation_at < now:
        await catch_up(session, [account], now, real=real)


async def _charging(session: AsyncSession, accounts: Sequence[Account]) -> set[str]:
    """The accounts with a charge in flight (made, its outcome not yet recorded)."""
    found = await session.scalars(
        select(PaymentAttempt.account_id).where(
            PaymentAttempt.tenant_id.in_({a.tenant_id for a in accounts}),
            PaymentAttempt.account_id.in_([a.id for a in accounts]),
            PaymentAttempt.status == AttemptStatus.PENDING,
        )
    )
    return set(found)


async def _families(session: AsyncSession, accounts: Sequence[Account]) -> list[Account]:
    """The heads of the batch's families: each account without a parent, and the parent of
    each child. A parent is locked after its child here, against the usual order, so it is
    taken only if free (``SKIP LOCKED``); a busy one waits for the next pass."""
    heads: dict[str, Account] = {}
    for account in accounts:
        if account.parent_id is None:
            heads.setdefault(account.id, account)
        elif account.parent_id not in heads:
            parent = await session.scalar(
                select(Account)
                .where(Account.tenant_id == account.tenant_id, Account.id == account.parent_id)
                .with_for_update(skip_locked=True)
            )
            if parent is not None:
                heads[parent.id] = parent
    return list(heads.values())


async def catch_up(
    session: AsyncSession,
    accounts: Sequence[Account],
    now: datetime,
    *,
    real: RealTime | None = None,
    alone: bool = False,
) -> int:
    """Process every due moment of each (locked) account's family up to ``now``, in time
    order across the family and each as of its own instant; ``real`` says when the outside
    world sees what each does (default: as of its instant, everything lived awake);
    ``alone``: each account without its family (to find which member of a family fails).
    Returns the number of invoices issued. Parked members are left out of their family:
    their time stands still until they are released.

    A parent and its children are caught up together (``domain.moments.next_in_family``):
    the parent's summary lists its children's invoices and a delegating child's standing
    follows the parent's. A family with a charge due (not yet made) or in flight waits: the
    charge's outcome comes first. (A crashed charge stays ``pending`` until the reconciler
    settles it, ``reconcile_after`` later.)
    """
    invoices, _ = await _catch_up(session, accounts, now, real or on_time(now), alone=alone)
    return invoices


async def catch_up_and_bill(
    session: AsyncSession,
    accounts: Sequence[Account],
    now: datetime,
    target: date | None,
    *,
    real: RealTime | None = None,
) -> int:
    """An invoice run's work on a batch of (locked) accounts: catch each one up to ``now``
    first, as the scheduler would, so a run that reaches an account before the scheduler
    (after a test clock's jump, or a worker down for a weekend) lives its missed moments in
    order rather than billing it as of ``now``; then bill ahead to ``target`` the accounts
    whose family is caught up. A family still behind (a charge due whose outcome decides
    what comes next) is left to the scheduler, which bills it to its today in turn.
    Returns the number of invoices issued."""
    real = real or on_time(now)
    invoices, current = await _catch_up(session, accounts, now, real)
    if target is not None:
        asked = {a.id for a in accounts}
        ahead = [
            a
            for a in current
            if a.id in asked and a.next_bill_on is not None and a.next_bill_on <= target
        ]
        if ahead:
            invoices += await bill_and_refresh(session, ahead, now, target=target, real=real)
    return invoices


async def _catch_up(
    session: AsyncSession,
    accounts: Sequence[Account],
    now: datetime,
    real: RealTime,
    *,
    alone: bool = False,
) -> tuple[int, list[Account]]:
    """``catch_up``: the invoices issued, and the members of the families now caught up
    (no moment due by ``now``, no charge due or in flight)."""
    heads = list(accounts) if alone else await _families(session, accounts)
    prefetched = await prefetch(session, heads)
    families: list[list[Account]] = []
    for head in heads:
        if alone:
            families.append([head])
        elif head.parked_at is None:
            kept = [c for c in prefetched.children.get(head.id, []) if c.parked_at is None]
            families.append([head, *kept])
        else:  # a parked head's time stands still; the children asked for go on alone
            families += [[a] for a in accounts if a.parent_id == head.id and a.parked_at is None]
    charging = await _charging(session, [m for family in families for m in family])
    books = _Books(session)
    invoices = 0
    current: list[Account] = []
    for family in families:
        if any(m.id in charging for m in family):
            continue
        invoices += await _catch_up_family(
            session, books, family, now, prefetched, real, alone=alone
        )
        if not any(m.collect_at is not None and m.collect_at <= now for m in family) and not any(
            m.next_evaluation_at is not None and m.next_evaluation_at <= now for m in family
        ):
            current.extend(family)
    await session.flush()
    return invoices, current


#: At most this many moments of one family in one pass (one transaction): years of missed
#: moments (a back-dated subscription) are caught up over several passes, in order, while
#: the worker stays responsive to every other account.
MOMENTS_PER_PASS = 400


def _charge_due(family: Sequence[Account], now: datetime, real: RealTime) -> bool:
    """Whether a member's charge is due by ``now`` and must be made before its later
    moments; one that fell due while the worker was down waits for them."""
    return any(
        m.collect_at is not None and m.collect_at <= now and not real.late(m.collect_at)
        for m in family
    )


async def _catch_up_family(
    session: AsyncSession,
    books: _Books,
    family: Sequence[Account],
    now: datetime,
    prefetched: Prefetched,
    real: RealTime,
    *,
    alone: bool = False,
) -> int:
    by_id = {m.id: m for m in family}
    processed: dict[str, datetime] = {}
    repeats: dict[str, int] = {}
    done: set[str] = set()
    invoices = 0
    for _ in range(MOMENTS_PER_PASS):
        if _charge_due(family, now, real):
            break
        members = [
            Member(key=m.id, due=None if m.id in done else m.next_evaluation_at,
                   processed=processed.get(m.id))
            for m in family
        ]  # fmt: skip
        pick = next_in_family(members, now)
        if pick is None:
            break
        key, at = pick
        account = by_id[key]
        tenant, book = await books.of(account)
        invoices += await _process(
            session, tenant, book, account, at, prefetched, real=real, alone=alone
        )
        repeats[key] = repeats.get(key, 0) + 1 if processed.get(key) == at else 0
        processed[key] = at
        due = account.next_evaluation_at
        if repeats[key] >= SAME_INSTANT_LIMIT and due is not None and due <= at:
            # a rule that never settles: evaluate as of now and leave it, rather than spin
            log.warning("scheduler.no_progress account=%s at=%s", key, at.isoformat())
            await _process(session, tenant, book, account, now, prefetched, real=real, alone=alone)
            done.add(key)
    return invoices
