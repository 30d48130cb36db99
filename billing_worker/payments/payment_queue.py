"""The payment queue: every payment event is stored once under its key and applied once.

Events come from the collector (a charge's result), from providers' webhooks and from
the management API (a payment received by check or wire). ``enqueue`` refuses a second
event with the same key, so a duplicated or replayed event is stored once. ``apply_event``
looks at what the charge (payment attempt) already is, so a reordered event changes
nothing twice: a failure reported after the success is superseded, a refund reported
before its charge waits in the queue until the charge is applied. Each event is applied in
one transaction with the account locked, the standing re-evaluated and re-published.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from billing_worker.db.locking import lock_with_parent
from billing_worker.db.models import Account, Payment, PaymentAttempt, PaymentEvent, Tenant
from billing_worker.domain.moments import RealTime
from billing_worker.domain.statuses import UNSUCCESSFUL, AttemptStatus
from billing_worker.invoicing.ledger import RefundError, record_payment
from billing_worker.invoicing.refunds import refund_payment
from billing_worker.jobs.catch_up import bring_up_to, real_time
from billing_worker.runtime.loop import has_rows
from billing_worker.runtime.parking import each_apart, park_event, transient
from billing_worker.standing.entitlements import refresh_family
from billing_worker.standing.messages import Kind, stage_message
from shared.clock import Clock
from shared.money import Money

SUCCEEDED = "charge.succeeded"
FAILED = "charge.failed"
REFUNDED = "charge.refunded"
RECEIVED = "payment.received"
TYPES = (SUCCEEDED, FAILED, REFUNDED, RECEIVED)


def charge_event(
    attempt: PaymentAttempt,
    type_: str,
    *,
    source: str,
    now: datetime,
    reference: str | None = None,
    reason: str | None = None,
    hard: bool = False,
    amount_minor: int | None = None,
    provider_event_id: str | None = None,
) -> PaymentEvent:
    """An event about a charge. A charge's result is keyed by the charge and the outcome,
    whoever reports it (the collector or the provider's webhook), so the second report is a
    duplicate; a refund is keyed by the provider's event id."""
    if type_ == REFUNDED:
        if provider_event_id is None:
            raise ValueError("a refund event needs the provider's event id")
        key = f"provider:{provider_event_id}"
    else:
        key = f"{attempt.idempotency_key}:{type_.removeprefix('charge.')}"
    return PaymentEvent(
        tenant_id=attempt.tenant_id,
        account_id=attempt.account_id,
        key=key,
        source=source,
        type=type_,
        attempt_key=attempt.idempotency_key,
        amount_minor=attempt.amount_minor if amount_minor is None else amount_minor,
        currency=attempt.currency,
        method="card",
        reference=reference,
        reason=reason,
        hard=hard,
        occurred_at=now,
        received_at=now,
    )


async def enqueue(session: AsyncSession, event: PaymentEvent) -> bool:
    """Store ``event`` unless one with its key exists; False for a duplicate. (Two racing
    duplicates: the unique key makes the second transaction fail, and nothing is stored
    twice.)"""
    seen = await session.scalar(
        select(PaymentEvent.id).where(
            PaymentEvent.tenant_id == event.tenant_id, PaymentEvent.key == event.key
        )
    )
    if seen is not None:
        return False
    session.add(event)
    await session.flush()
    return True


async def apply_event(
    session: AsyncSession,
    event: PaymentEvent,
    now: datetime,
    *,
    real: RealTime,
    pays_first: Sequence[str] = (),
) -> bool:
    """Apply a queued event as of ``now`` (what the clock says of real time: ``real``);
    False when it must wait (a refund before its charge). A payment received applied at
    once may name the invoices it pays first."""
    tenant = await session.get(Tenant, event.tenant_id)
    account = await lock_with_parent(session, event.tenant_id, event.account_id)
    if tenant is None or account is None:
        raise LookupError(f"payment event {event.key} has no account")
    await bring_up_to(session, account, now, real=real)
    attempt = None
    if event.attempt_key is not None:
        attempt = await session.scalar(
            select(PaymentAttempt)
            .where(
                PaymentAttempt.tenant_id == tenant.id,
                PaymentAttempt.idempotency_key == event.attempt_key,
            )
            .with_for_update()
        )
    amount = Money.from_minor(event.amount_minor, event.currency)
    if event.type == RECEIVED:
        payment = await record_payment(
            session, account, amount, method=event.method, reference=event.reference, now=now,
            pays_first=pays_first,
        )  # fmt: skip
        event.payment_id, outcome = payment.id, "applied"
    elif attempt is None:
        outcome = "unmatched"  # a provider event about a charge Tollgate never made
    elif event.type == SUCCEEDED:
        outcome = await _succeeded(session, tenant, account, attempt, event, amount, now)
    elif event.type == FAILED:
        outcome = await _failed(session, tenant, account, attempt, event, now)
    else:
        found = await _refunded(session, account, attempt, event, amount, now)
        if found is None:
            return False
        outcome = found
    event.applied_at, event.outcome = now, outcome
    await refresh_family(session, tenant, account, now)
    return True


async def _succeeded(
    session: AsyncSession,
    tenant: Tenant,
    account: Account,
    attempt: PaymentAttempt,
    event: PaymentEvent,
    amount: Money,
    now: datetime,
) -> str:
    if attempt.status == AttemptStatus.SUCCEEDED:
        return "duplicate"
    previous = await session.scalar(
        select(PaymentAttempt.status)
        .where(
            PaymentAttempt.tenant_id == tenant.id,
            PaymentAttempt.account_id == account.id,
            PaymentAttempt.id != attempt.id,
            PaymentAttempt.status != AttemptStatus.PENDING,
        )
        .order_by(PaymentAttempt.updated_at.desc())
        .limit(1)
    )
    attempt.status, attempt.updated_at = AttemptStatus.SUCCEEDED, now
    attempt.reference = event.reference or attempt.reference
    payment = await record_payment(
        session, account, amount, method="card", reference=attempt.reference, now=now
    )
    event.payment_id = payment.id
    account.hard_declined = False
    if previous in UNSUCCESSFUL or account.standing != "active":
        await stage_message(
            session, tenant, account, Kind.PAYMENT_RECOVERED, f"recovered:{attempt.id}",
            {"amount": str(amount.amount), "currency": amount.currency}, now,
        )  # fmt: skip
    return "applied"


async def _failed(
    session: AsyncSession,
    tenant: Tenant,
    account: Account,
    attempt: PaymentAttempt,
    event: PaymentEvent,
    now: datetime,
) -> str:
    if attempt.status == AttemptStatus.SUCCEEDED:
        return "superseded"  # reordered: the charge went through after all
    if attempt.status in UNSUCCESSFUL:
        return "duplicate"
    attempt.status = (
        AttemptStatus.FAILED if event.reason == "processing_error" else AttemptStatus.DECLINED
    )
    attempt.reason, attempt.hard, attempt.updated_at = event.reason, event.hard, now
    if event.hard:
        account.hard_declined = True
    await stage_message(
        session, tenant, account, Kind.PAYMENT_FAILED, f"failed:{attempt.id}",
        {"amount": str(Money.from_minor(attempt.amount_minor, attempt.currency).amount),
         "currency": attempt.currency, "decline_reason": event.reason, "hard": event.hard},
        now,
    )  # fmt: skip
    return "applied"


async def _refunded(
    session: AsyncSession,
    account: Account,
    attempt: PaymentAttempt,
    event: PaymentEvent,
    amount: Money,
    now: datetime,
) -> str | None:
    payment_id = await session.scalar(
        select(PaymentEvent.payment_id).where(
            PaymentEvent.tenant_id == account.tenant_id,
            PaymentEvent.attempt_key == attempt.idempotency_key,
            PaymentEvent.type == SUCCEEDED,
            PaymentEvent.payment_id.is_not(None),
        )
    )
    payment = await session.get(Payment, payment_id, with_for_update=True) if payment_id else None
    if payment is None:
        return None  # its charge is not applied yet: the refund waits in the queue
    try:
        await refund_payment(session, account, payment, amount, reason="provider", now=now)
    except RefundError:
        return "refused"
    return "applied"


async def drain(
    sessions: async_sessionmaker[AsyncSession], clock: Clock, *, batch: int = 50
) -> int:
    """Apply queued events in order, passing over those that must wait, and go round again
    while a round applied something (a charge applied lets its waiting refund go through);
    returns how many were applied. A batch that fails on its data is redone one event at a
    time, and the event that fails alone is parked (``billing_worker.runtime.parking``)."""
    queued = (PaymentEvent.applied_at.is_(None), PaymentEvent.parked_at.is_(None))
    applied = 0
    while await has_rows(sessions, *queued):
        progressed, after = 0, 0
        while True:
            claimed: list[int] = []
            try:
                async with sessions() as session, session.begin():
                    events = (
                        await session.scalars(
                            select(PaymentEvent)
                            .where(*queued, PaymentEvent.id > after)
                            .order_by(PaymentEvent.id)
                            .limit(batch)
                            .with_for_update(skip_locked=True)
                        )
                    ).all()
                    claimed = [event.id for event in events]
                    for event in events:
                        real = real_time(clock)
                        progressed += await apply_event(session, event, real.now, real=real)
            except Exception as exc:
                if transient(exc) or not claimed:
                    raise
                progressed += await _drain_apart(sessions, clock, claimed)
            after = claimed[-1] if claimed else after
            if len(claimed) < batch:
                break
        applied += progressed
        if progressed == 0:
            break
    return applied


async def _drain_apart(
    sessions: async_sessionmaker[AsyncSession], clock: Clock, ids: list[int]
) -> int:
    applied = 0

    async def one(event_id: int) -> None:
        nonlocal applied
        async with sessions() as session, session.begin():
            event = await session.get(PaymentEvent, event_id, with_for_update=True)
            if event is not None and event.applied_at is None and event.parked_at is None:
                real = real_time(clock)
                applied += await apply_event(session, event, real.now, real=real)

    async def park(event_id: int, exc: Exception) -> None:
        await park_event(sessions, event_id, exc, clock.now())

    await each_apart(ids, one, park)
    return applied
