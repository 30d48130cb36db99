"""Money Stripe gives back after Tollgate collected it: a refund made in Stripe's dashboard,
a dispute (the card holder's bank takes the amount back at once) and a dispute the tenant
won (the amount comes back).

Each is brought into the ledger as Tollgate's own refund or payment would be, and each is
idempotent by what it records, not by the Stripe event's id, since Stripe tells of one
refund in several events. A refund made in Stripe is a goodwill refund: the invoice stays
paid, with a credit note. A dispute takes the money back against the tenant's will: what it
paid re-opens, and the disputed card is charged no more (as after a hard decline) until a
new payment method replaces it — collection never charges the very card whose holder
disputed a charge.

- ``charge.refunded`` carries the charge's *total* refunded; Tollgate records what its own
  refunds of that payment (made through the API, which reach Stripe too) do not cover yet;
- a dispute is recorded once, under its id (``dp_…``), as a refund of the disputed amount;
  a dispute won is recorded once as a payment referenced ``dp_…:won``.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from billing_worker.db.locking import lock_with_parent
from billing_worker.db.models import Account, Payment, Refund, Tenant
from billing_worker.domain.moments import RealTime
from billing_worker.invoicing.ledger import RefundError, record_payment
from billing_worker.invoicing.refunds import refund_payment
from billing_worker.jobs.catch_up import bring_up_to
from billing_worker.publishing.outbox import hold_access
from billing_worker.standing.entitlements import refresh_family
from shared.money import Money

#: The prefix of Stripe's dispute ids: a refund recorded under one is a dispute's.
DISPUTE = "dp_"


class Outcome(StrEnum):
    APPLIED = "applied"
    #: Already recorded: nothing more to do.
    DUPLICATE = "duplicate"
    #: Not a payment Tollgate recorded (yet): Stripe is asked to send it again later.
    UNKNOWN = "unknown"
    #: Recorded nowhere: more than the payment's traceable part (its credit was spent).
    REFUSED = "refused"


async def apply_reversal(
    session: AsyncSession, tenant_id: str, kind: str, obj: Mapping[str, Any], real: RealTime
) -> Outcome:
    """Apply Stripe's ``charge.refunded`` (``obj`` a Charge) or ``charge.dispute.created`` /
    ``.closed`` (``obj`` a Dispute) to the payment of its PaymentIntent."""
    intent = obj.get("payment_intent")
    found = await _payment(session, tenant_id, intent if isinstance(intent, str) else None)
    if found is None:
        return Outcome.UNKNOWN
    tenant, account, payment = found
    now = real.now
    await bring_up_to(session, account, now, real=real)
    if kind == "charge.refunded":
        outcome = await _refunded(session, account, payment, obj, now)
    elif kind == "charge.dispute.created":
        outcome = await _disputed(session, account, payment, obj, now)
    else:
        outcome = await _dispute_closed(session, account, payment, obj, now)
    if outcome is Outcome.APPLIED:
        await refresh_family(session, tenant, account, now)
    return outcome


async def park_unapplied_dispute(
    session: AsyncSession, tenant_id: str, dispute: Mapping[str, Any], now: datetime
) -> bool:
    """A dispute the ledger could not take (more than the payment's traceable part, its
    credit spent): the bank has the money back all the same, so the account is parked
    (``account.parked``), saying what to record by hand, and its card charged no more.
    Returns whether an account was parked."""
    intent = dispute.get("payment_intent")
    found = await _payment(session, tenant_id, intent if isinstance(intent, str) else None)
    if found is None:
        return False
    _tenant, account, payment = found
    amount = Money.from_minor(int(dispute.get("amount") or 0), payment.currency)
    account.hard_declined = True
    account.parked_at = account.parked_at or now
    account.parked_job = "stripe"
    await hold_access(session, account, now)
    account.parked_error = (
        f"Stripe dispute {dispute.get('id')} took back {amount} of payment {payment.id}, more "
        "than the ledger can trace to it (its credit was spent): record the difference by hand "
        "(a charge or a refund), then release the account"
    )[:500]
    return True


async def _payment(
    session: AsyncSession, tenant_id: str, intent: str | None
) -> tuple[Tenant, Account, Payment] | None:
    """The tenant's payment collected by the PaymentIntent, locked after its account."""
    if not intent:
        return None
    found = await session.scalar(
        select(Payment)
        .where(Payment.tenant_id == tenant_id, Payment.reference == intent)
        .order_by(Payment.received_at)
        .limit(1)
    )
    if found is None:
        return None
    account = await lock_with_parent(session, tenant_id, found.account_id)
    tenant = await session.get(Tenant, tenant_id)
    if account is None or tenant is None:
        return None
    await session.refresh(found, with_for_update=True)
    return tenant, account, found


async def _refunded(
    session: AsyncSession,
    account: Account,
    payment: Payment,
    charge: Mapping[str, Any],
    now: datetime,
) -> Outcome:
    ours = await session.scalar(
        select(func.coalesce(func.sum(Refund.amount_minor), 0)).where(
            Refund.payment_id == payment.id,
            Refund.reference.is_(None) | Refund.reference.not_like(f"{DISPUTE}%"),
        )
    )
    missing = int(charge.get("amount_refunded") or 0) - int(ours or 0)
    if missing <= 0:
        return Outcome.DUPLICATE
    return await _reverse(
        session, account, payment, missing, "refunded in Stripe", str(charge.get("id")), now
    )


async def _disputed(
    session: AsyncSession,
    account: Account,
    payment: Payment,
    dispute: Mapping[str, Any],
    now: datetime,
) -> Outcome:
    dispute_id = str(dispute.get("id"))
    if await _has_refund(session, payment, dispute_id):
        return Outcome.DUPLICATE
    reason = f"disputed in Stripe ({dispute.get('reason') or 'no reason given'})"
    amount = int(dispute.get("amount") or 0)
    outcome = await _reverse(
        session, account, payment, amount, reason, dispute_id, now, adjust=False
    )
    if outcome is Outcome.APPLIED:
        account.hard_declined = True  # no automatic charge until the card is replaced
    return outcome


async def _dispute_closed(
    session: AsyncSession,
    account: Account,
    payment: Payment,
    dispute: Mapping[str, Any],
    now: datetime,
) -> Outcome:
    dispute_id = str(dispute.get("id"))
    if dispute.get("status") != "won" or not await _has_refund(session, payment, dispute_id):
        return Outcome.DUPLICATE  # lost: the reversal stands; won before it was recorded
    won = f"{dispute_id}:won"
    again = await session.scalar(
        select(Payment.id).where(Payment.tenant_id == account.tenant_id, Payment.reference == won)
    )
    if again is not None:
        return Outcome.DUPLICATE
    amount = Money.from_minor(int(dispute.get("amount") or 0), payment.currency)
    if amount.minor > 0:
        await record_payment(session, account, amount, method="card", reference=won, now=now)
    return Outcome.APPLIED


async def _has_refund(session: AsyncSession, payment: Payment, reference: str) -> bool:
    found = await session.scalar(
        select(Refund.id).where(Refund.payment_id == payment.id, Refund.reference == reference)
    )
    return found is not None


async def _reverse(
    session: AsyncSession,
    account: Account,
    payment: Payment,
    minor: int,
    reason: str,
    reference: str,
    now: datetime,
    *,
    adjust: bool = True,
) -> Outcome:
    if minor <= 0:
        return Outcome.DUPLICATE
    amount = Money.from_minor(min(minor, payment.amount_minor - payment.refunded_minor),
                              payment.currency)  # fmt: skip
    if amount.minor <= 0:
        return Outcome.DUPLICATE
    try:
        refund = await refund_payment(
            session, account, payment, amount, reason=reason, now=now, adjust=adjust
        )
    except RefundError:
        return Outcome.REFUSED
    refund.reference = reference
    return Outcome.APPLIED
