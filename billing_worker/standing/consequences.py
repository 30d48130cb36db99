"""What a standing does besides being published: holding or cancelling billing on the
ladder's rungs, scheduling collection, and advising the tenant and the customer."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from billing_worker.db.models import (
    Account,
    PaymentMethod,
    Tenant,
)
from billing_worker.domain.catalog import ChangePolicy
from billing_worker.domain.changes import CancelRequest, cancellation_for
from billing_worker.domain.dunning import DAY
from billing_worker.domain.moments import RealTime
from billing_worker.domain.subscriptions import Pause
from billing_worker.invoicing.catalogs import CatalogBook
from billing_worker.invoicing.invoicer import bill_to, local_today
from billing_worker.invoicing.prefetch import Prefetched
from billing_worker.invoicing.terms import save_terms, terms_of, touch_billing
from billing_worker.standing.evaluation import Evaluation
from billing_worker.standing.messages import Kind, stage_message
from shared.states import Reason, Standing

#: Changes of standing reported to the tenant's administrators: into or out of a rung that
#: restricts access, a cancellation for non-payment, and a return to good standing from
#: any rung. Entering grace is not one: the payment-due reminder says it.
RESTRICTED = {Standing.DEGRADED, Standing.SUSPENDED}
LADDER = {Standing.GRACE, *RESTRICTED}
LADDER_REASONS = {Reason.PAYMENT_OVERDUE, Reason.PAYMENT_DECLINED, Reason.SUSPENDED_MANUALLY}


async def enter_cancelled_stage(
    session: AsyncSession, account: Account, found: Evaluation, book: CatalogBook, now: datetime
) -> None:
    """Cancel for non-payment; billing changed today, so the credit (or final charge) is
    invoiced today by the account that pays, not on its next billing day."""
    if not cancel_for_nonpayment(account, found, book, now):
        return
    payer = await bill_to(session, account)
    today = local_today(now, payer.timezone)
    payer.next_bill_on = min(payer.next_bill_on or today, today)
    if payer is not account:  # a reseller: due now, whatever its own next moment
        payer.next_evaluation_at = min(payer.next_evaluation_at or now, now)


def cancel_for_nonpayment(
    account: Account, found: Evaluation, book: CatalogBook, now: datetime
) -> bool:
    """The cancelled rung: end access to every subscription today (exempt ones excepted);
    billing ends by the policy's ``cancel_billing``. Returns whether any was cancelled."""
    cancelled = False
    today = local_today(now, account.timezone)
    request = CancelRequest(
        requested_on=today,
        entitlement_policy=ChangePolicy.IMMEDIATE,
        billing_policy=found.policy.cancel_billing,
    )
    for sub in found.subscriptions:
        terms = terms_of(sub)
        if sub.dunning_exempt or (
            terms.cancellation is not None and terms.cancellation.entitlement_end <= today
        ):
            continue
        ended = cancellation_for(terms, book.at, request, account.cycle_day)
        save_terms(sub, replace(terms, cancellation=ended))
        touch_billing(sub, min(ended.billing_end, today))
        cancelled = True
    return cancelled


def hold_billing(account: Account, found: Evaluation, now: datetime) -> None:
    """With a policy whose suspension holds billing: hold each subscription's billing from
    the day the account is suspended for non-payment until the day it is reinstated. The
    scheduler invoices the account at once, so held days already billed are credited."""
    result = found.result
    hold = (
        result.standing is Standing.SUSPENDED
        and result.dunning is not None
        and found.policy.suspended_billing == "pause"
    )
    if not hold and not any(e["type"] == "hold" for s in found.subscriptions for e in s.events):
        return
    today = local_today(now, account.timezone)
    changed = False
    for sub in found.subscriptions:
        terms = terms_of(sub)
        held = next((h for h in terms.holds if h.resume is None), None)
        if hold and held is None and not sub.dunning_exempt and today < terms.billing_end:
            holds, since = (*terms.holds, Pause(today)), today
        elif not hold and held is not None:
            kept = tuple(h for h in terms.holds if h is not held)
            holds = (*kept, Pause(held.start, today)) if today > held.start else kept
            since = held.start
        else:
            continue
        save_terms(sub, replace(terms, holds=holds))
        touch_billing(sub, since)
        changed = True
    if changed:
        account.next_bill_on = min(account.next_bill_on or today, today)


async def advise(
    session: AsyncSession,
    tenant: Tenant,
    account: Account,
    found: Evaluation,
    previous: str,
    now: datetime,
    known: set[str] | None,
    real: RealTime,
) -> None:
    """Tell the administrators about a change of rung, and remind them of what is due
    (``known``: the batch's message keys, see ``messages.stage_message``), as of ``now``.

    The messages are written when the outside world sees them (``real``); a moment
    processed late (after an outage) only *offers* its messages: of the ones a catch-up
    offers, the customer gets the latest of each kind, not a backlog."""
    sent = real.seen_at(now)
    late = real.late(now)
    result = found.result
    details = {
        "standing": result.standing.value,
        "reason": result.reason,
        "days_past_due": result.dunning.days_past_due if result.dunning else 0,
        "balance_due": owed(found),
    }
    changed = previous != result.standing.value
    if changed and (
        Standing(previous) in RESTRICTED
        or result.standing in RESTRICTED
        or result.reason in LADDER_REASONS
        or (Standing(previous) in LADDER and result.standing is Standing.ACTIVE)
    ):
        await stage_message(
            session, tenant, account, Kind.STANDING_CHANGED,
            f"standing:{account.id}:{account.ent_version}",
            {**details, "previous_standing": previous}, sent, known=known, latest_only=late,
        )  # fmt: skip
    ladder = result.dunning
    # No reminder while a charge is about to be made: its outcome decides (a failure
    # re-evaluates the account at once, and the reminder goes out then).
    if found.source is account and ladder and ladder.reminder and account.collect_at is None:
        every = found.policy.reminder_every_days or 1
        assert ladder.anchor is not None
        day = (ladder.anchor + (ladder.reminder - 1) * every * DAY).date()
        if late and ladder.anchor + ladder.reminder * every * DAY <= real.now:
            return  # a later reminder is due by now: the customer gets that one, not both
        await stage_message(
            session, tenant, account, Kind.PAYMENT_DUE, f"payment_due:{account.id}:{day}",
            {**details, "reminder": ladder.reminder}, sent, known=known, latest_only=late,
        )  # fmt: skip


def owed(found: Evaluation) -> str | None:
    owing = [u.balance for u in found.unpaid if u.balance.is_positive()]
    return str(sum(owing[1:], owing[0]).amount) if owing else None


#: The reason of an account in good standing.
async def chargeable(
    session: AsyncSession, account: Account, prefetched: Prefetched | None
) -> bool:
    """Whether the account has a default payment method the collector can charge."""
    if prefetched is not None and account.id in prefetched.accounts:
        return account.id in prefetched.chargeable
    method = await session.scalar(
        select(PaymentMethod.id)
        .where(
            PaymentMethod.tenant_id == account.tenant_id,
            PaymentMethod.account_id == account.id,
            PaymentMethod.is_default.is_(True),
            PaymentMethod.removed_at.is_(None),
        )
        .limit(1)
    )
    return method is not None


def schedule_collection(account: Account, found: Evaluation, now: datetime) -> None:
    """Wake the collector when a new invoice or a new retry is owed a charge.

    The key names what a charge would be for: the newest unpaid invoice and the ladder's
    retry number. The collector charges once per key and payment method.
    """
    owing = [u for u in found.unpaid if u.balance.is_positive()]
    if account.collection != "automatic" or account.hard_declined or not owing:
        return
    newest = max(owing, key=lambda u: (u.due_at, u.invoice_id)).invoice_id
    retry = found.result.dunning.retry if found.result.dunning else None
    key = f"{newest}:{retry or 0}"
    if key != account.collect_key:
        account.collect_key = key
        account.collect_at = now
