"""Automatic collection: charge an account's default payment method for what it owes.

``refresh_account`` wakes the collector (``Account.collect_at``) when something new is
owed a charge: a new invoice, or a retry the dunning ladder schedules. A charge is made in
three steps so that no provider call happens inside a transaction and none is ever made
twice: (1) the attempt is stored ``pending`` under its idempotency key, (2) the provider
is called with that key, (3) its answer is queued as a payment event and applied. A crash
between the steps leaves the attempt ``pending``; a timeout leaves it ``unknown``. The
reconciler (``reconciliation``) settles such attempts under the *same* key, so it cannot
charge twice.

A charge is made, recorded and its outcome applied when it really happens
(``domain.moments.RealTime``): as of its due moment only while the worker counts as awake
then (a test clock's jump). One made late, after an outage, is recorded now, and the
retries after it are spaced from now (``Account.charged_at``), not fired in a burst.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import and_, func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from billing_worker.db.models import Account, Invoice, PaymentAttempt, PaymentMethod
from billing_worker.domain.moments import RealTime
from billing_worker.domain.statuses import UNSETTLED, AttemptStatus, InvoiceStatus
from billing_worker.ids import new_id
from billing_worker.jobs.catch_up import real_time
from billing_worker.payments.book import ProviderBook, book_of
from billing_worker.payments.payment_queue import (
    FAILED,
    SUCCEEDED,
    apply_event,
    charge_event,
    enqueue,
)
from billing_worker.payments.providers import ChargeResult, Outcome, PaymentProvider
from billing_worker.publishing.outbox import hold_access
from billing_worker.runtime.loop import has_rows
from billing_worker.runtime.parking import batch_or_apart, describe, transient
from shared.clock import Clock
from shared.money import Money

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Charge:
    attempt_id: str
    provider: PaymentProvider
    token: str
    amount: Money
    key: str
    #: When the charge is made for the outside world, and its outcome applied as of: its
    #: due moment while the worker counts as awake then, else the real instant.
    made_at: datetime


def provider_named(providers: Sequence[PaymentProvider], name: str) -> PaymentProvider | None:
    return next((p for p in providers if p.name == name), None)


async def _owed(session: AsyncSession, account: Account) -> Money:
    owed = await session.scalar(
        select(func.coalesce(func.sum(Invoice.total_minor - Invoice.paid_minor), 0)).where(
            Invoice.tenant_id == account.tenant_id,
            Invoice.account_id == account.id,
            Invoice.status == InvoiceStatus.OPEN,
            Invoice.currency == account.currency,
        )
    )
    return Money.from_minor(int(owed or 0), account.currency)


async def _plan_charge(
    session: AsyncSession,
    account: Account,
    method: PaymentMethod,
    providers: Sequence[PaymentProvider],
    due_at: datetime,
    real: RealTime,
) -> Charge | None:
    """The charge ``account.collect_key`` asks for (due at ``due_at``), to its default
    ``method``, stored as a pending attempt made when ``real`` says; or None when there is
    nothing to charge or it was charged already."""
    if account.collection != "automatic" or account.hard_declined or not account.collect_key:
        return None
    provider = provider_named(providers, method.provider)
    amount = await _owed(session, account)
    if provider is None or not amount.is_positive():
        return None
    unsettled = await session.scalar(
        select(PaymentAttempt.id).where(
            PaymentAttempt.tenant_id == account.tenant_id,
            PaymentAttempt.account_id == account.id,
            PaymentAttempt.status.in_(UNSETTLED),
        )
    )
    if unsettled is not None:
        return None  # an earlier charge may have gone through: the reconciler finds out
    key = f"col_{account.id}_{account.collect_key}_{method.id}"
    seen = await session.scalar(
        select(PaymentAttempt.id).where(
            PaymentAttempt.tenant_id == account.tenant_id, PaymentAttempt.idempotency_key == key
        )
    )
    if seen is not None:
        return None
    made_at = real.seen_at(due_at)
    if real.late(due_at):  # the retries after it are spaced from now (``LastCharge``)
        account.charged_retry, account.charged_at = retry_of(account.collect_key), made_at
    attempt = PaymentAttempt(
        id=new_id("att"),
        tenant_id=account.tenant_id,
        account_id=account.id,
        payment_method_id=method.id,
        idempotency_key=key,
        amount_minor=amount.minor,
        currency=amount.currency,
        status=AttemptStatus.PENDING,
        hard=False,
        created_at=made_at,
        updated_at=real.now,
    )
    session.add(attempt)
    return Charge(attempt.id, provider, method.token, amount, key, made_at)


def retry_of(collect_key: str) -> int:
    """The retry a collection key names (``<invoice>:<retry>``, ``schedule_collection``)."""
    _, _, retry = collect_key.rpartition(":")
    return int(retry) if retry.isdigit() else 0


async def record_result(
    sessions: async_sessionmaker[AsyncSession],
    attempt_id: str,
    result: ChargeResult,
    real: RealTime,
    *,
    source: str = "collection",
    effective: datetime | None = None,
) -> None:
    """Queue the provider's answer as a payment event and apply it as of ``effective``
    (default now; the collector's charges: when they were made, ``Charge.made_at``); an
    unknown answer marks the attempt ``unknown`` for the reconciler."""
    at = effective or real.now
    try:
        await _record(sessions, attempt_id, result, real, source=source, at=at, apply=True)
    except Exception as exc:
        if transient(exc):
            raise
        # Applying the answer failed on the account's data: keep the answer, parked.
        log.error("collection.apply_failed attempt=%s", attempt_id, exc_info=exc)
        await _record(
            sessions, attempt_id, result, real, source=source, at=at, apply=False, error=exc
        )


async def _record(
    sessions: async_sessionmaker[AsyncSession],
    attempt_id: str,
    result: ChargeResult,
    real: RealTime,
    *,
    source: str,
    at: datetime,
    apply: bool,
    error: Exception | None = None,
) -> None:
    now = real.now
    async with sessions() as session, session.begin():
        attempt = await session.get(PaymentAttempt, attempt_id, with_for_update=True)
        if attempt is None or attempt.status not in UNSETTLED:
            return
        if result.outcome is Outcome.UNKNOWN:
            attempt.status, attempt.reason = AttemptStatus.UNKNOWN, result.reason
            attempt.updated_at = now
            attempt.reference = attempt.reference or result.reference  # to look it up by
            # no outcome to wait for: the account owes the invoice until the reconciler
            # learns more, so it is re-evaluated as of the charge's moment
            account = await session.get(Account, attempt.account_id)
            if account is not None:
                account.next_evaluation_at = min(account.next_evaluation_at or at, at)
            return
        succeeded = result.outcome is Outcome.SUCCEEDED
        event = charge_event(
            attempt, SUCCEEDED if succeeded else FAILED, source=source, now=at,
            reference=result.reference, reason=result.reason, hard=result.hard,
        )  # fmt: skip
        event.received_at = now
        if error is not None:
            event.parked_at, event.parked_error = now, describe(error)
        if await enqueue(session, event) and apply:
            await apply_event(session, event, at, real=real)


async def make_charge(charge: Charge, seconds: float) -> ChargeResult:
    try:
        async with asyncio.timeout(seconds):
            return await charge.provider.charge(charge.token, charge.amount, charge.key)
    except (TimeoutError, OSError) as exc:
        log.warning("collection.charge_unanswered key=%s: %r", charge.key, exc)
        return ChargeResult(Outcome.UNKNOWN, "timeout")
    except Exception:
        # Whatever the provider's client raised, the charge may or may not have been
        # made: the reconciler asks the provider under the same key.
        log.exception("collection.provider_error key=%s", charge.key)
        return ChargeResult(Outcome.UNKNOWN, "provider_error")


async def collect_due(
    sessions: async_sessionmaker[AsyncSession],
    providers: Sequence[PaymentProvider] | ProviderBook,
    clock: Clock,
    *,
    provider_timeout: float = 10.0,
    batch: int = 200,
    concurrency: int = 8,
) -> int:
    """Charge one batch of accounts whose collection is due; returns how many accounts
    it claimed."""
    real = real_time(clock)
    now = real.now
    due = and_(Account.collect_at <= now, Account.parked_at.is_(None))
    if not await has_rows(sessions, due):
        return 0
    charges: list[Charge] = []

    async def claim(session: AsyncSession, only: str | None) -> Sequence[Account]:
        query = select(Account).where(due).order_by(Account.collect_at)
        if only is not None:
            query = query.where(Account.id == only)
        return (await session.scalars(query.limit(batch).with_for_update(skip_locked=True))).all()

    async def plan(session: AsyncSession, accounts: Sequence[Account]) -> None:
        charges.extend(await _plan_charges(session, accounts, book_of(providers), real))

    claimed = await batch_or_apart(sessions, claim, plan, "collector", now, hold=hold_access)
    # Each charge is one account's, stored pending before any call: up to ``concurrency``
    # run at once, so a provider's latency (hundreds of ms a call) and the database's
    # round trips overlap instead of adding up. A failure leaves its attempt pending for
    # the reconciler and is raised once every other charge of the batch has finished.
    limit = asyncio.Semaphore(concurrency)

    async def settle(charge: Charge) -> None:
        async with limit:
            result = await make_charge(charge, provider_timeout)
            await record_result(sessions, charge.attempt_id, result, real, effective=charge.made_at)

    failures = [
        outcome
        for outcome in await asyncio.gather(*map(settle, charges), return_exceptions=True)
        if isinstance(outcome, BaseException)
    ]
    if failures:
        raise failures[0]
    return claimed


async def _plan_charges(
    session: AsyncSession,
    accounts: Sequence[Account],
    book: ProviderBook,
    real: RealTime,
) -> list[Charge]:
    """The charges the (locked) accounts are due, stored as pending attempts; an account
    with nothing to charge after all is re-evaluated instead."""
    now = real.now
    charges: list[Charge] = []
    if accounts:
        defaults = await session.scalars(
            select(PaymentMethod).where(
                PaymentMethod.account_id.in_([a.id for a in accounts]),
                PaymentMethod.is_default.is_(True),
                PaymentMethod.removed_at.is_(None),
            )
        )
        methods = {m.account_id: m for m in defaults}
        tenants = {a.tenant_id for a in accounts}
        providers = {t: await book.of(session, t) for t in tenants}
        for account in accounts:
            due_at, account.collect_at = account.collect_at or now, None
            method = methods.get(account.id)
            if method is None or method.tenant_id != account.tenant_id:
                # nothing to charge to after all: re-evaluate, the customer pays by hand
                account.next_evaluation_at = min(account.next_evaluation_at or due_at, due_at)
                continue
            charge = await _plan_charge(
                session, account, method, providers[account.tenant_id], due_at, real
            )
            if charge is not None:
                charges.append(charge)
            else:  # no charge after all: the standing must not wait for one (re-evaluate)
                account.next_evaluation_at = min(account.next_evaluation_at or due_at, due_at)
    return charges
