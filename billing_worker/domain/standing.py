"""Where an account stands: the dunning ladder (``domain.dunning``) plus what overrides it.

An account with no subscription granting access is ``cancelled`` (or ``paused``). A tenant's
manual suspension wins over everything else; an exempt account stays ``active`` whatever it
owes. Otherwise the ladder decides from the unpaid invoices. ``access_until`` is the first
moment, with no payment, a rung that denies access would be reached (ignoring the rungs'
balance conditions, so it errs early: the worker re-evaluates before then anyway).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from billing_worker.domain.dunning import (
    DAY,
    Dunning,
    DunningPolicy,
    LastCharge,
    Unpaid,
    evaluate,
)
from shared.money import Money
from shared.states import Reason, Standing


@dataclass(frozen=True, kw_only=True, slots=True)
class UnpaidInvoice:
    invoice_id: str
    due_at: datetime
    balance: Money


@dataclass(frozen=True, kw_only=True, slots=True)
class RenewalOutlook:
    """The next invoice a renewing subscription will issue, and its payment terms."""

    next_invoice_at: datetime
    net_terms: timedelta


@dataclass(frozen=True, kw_only=True, slots=True)
class StandingResult:
    standing: Standing
    reason: str
    #: The earliest moment at which, with no payment, access would stop.
    access_until: datetime | None
    #: The next moment this evaluation can give a different answer with no event.
    next_change_at: datetime | None
    #: The ladder's answer, when the ladder decided (reminders and retries come from it).
    dunning: Dunning | None = None
    #: The standing access lapses into at ``access_until`` (the first rung that denies).
    lapses_to: Standing | None = None


_REASONS = {
    Standing.ACTIVE: Reason.IN_GOOD_STANDING,
    Standing.GRACE: Reason.PAYMENT_DUE,
    Standing.DEGRADED: Reason.PAYMENT_OVERDUE,
    Standing.SUSPENDED: Reason.PAYMENT_OVERDUE,
    Standing.CANCELLED: Reason.PAYMENT_OVERDUE,
}


def evaluate_standing(
    *,
    unpaid: Sequence[UnpaidInvoice],
    renewals: Sequence[RenewalOutlook],
    has_active_subscription: bool,
    policy: DunningPolicy,
    now: datetime,
    paused: bool = False,
    hard_declined: bool = False,
    exempt: bool = False,
    suspended_manually: bool = False,
    last_charge: LastCharge | None = None,
) -> StandingResult:
    """Evaluate one account.

    Args:
        unpaid: invoices with a positive balance.
        renewals: for each renewing subscription, when its next invoice is issued.
        has_active_subscription: whether any subscription currently grants access.
        policy: the dunning ladder that applies to the account.
        now: the evaluation time.
        paused: whether, granting none, a subscription is paused (rather than ended).
        hard_declined: the last charge was a hard decline (no retries; may jump a rung).
        exempt: the account is exempt from dunning.
        suspended_manually: the tenant suspended the account by hand.
        last_charge: the latest automatic charge (the retries after it are spaced from it).

    Returns:
        The standing, its reason, the moment access would lapse without payment, and
        the next moment the answer changes by the passing of time alone.
    """
    if not has_active_subscription:
        standing, reason = (
            (Standing.PAUSED, Reason.SUBSCRIPTION_PAUSED)
            if paused
            else (Standing.CANCELLED, Reason.NO_ACTIVE_SUBSCRIPTION)
        )
        return StandingResult(standing=standing, reason=reason, access_until=None,
                              next_change_at=None)  # fmt: skip
    if suspended_manually:
        return StandingResult(standing=Standing.SUSPENDED, reason=Reason.SUSPENDED_MANUALLY,
                              access_until=None, next_change_at=None)  # fmt: skip
    if exempt:
        return StandingResult(standing=Standing.ACTIVE, reason=Reason.DUNNING_EXEMPT,
                              access_until=None, next_change_at=None)  # fmt: skip
    ladder = evaluate(
        [Unpaid(invoice_id=u.invoice_id, due_at=u.due_at, balance=u.balance) for u in unpaid],
        policy,
        now,
        hard_declined=hard_declined,
        last_charge=last_charge,
    )
    reason = _REASONS[ladder.standing]
    if hard_declined and ladder.standing is policy.hard_decline_standing:
        reason = Reason.PAYMENT_DECLINED
    if not ladder.standing.grants_access:
        return StandingResult(standing=ladder.standing, reason=reason, access_until=None,
                              next_change_at=ladder.next_change_at, dunning=ladder)  # fmt: skip
    denying = [r for r in policy.rungs if not r.standing.grants_access]
    first = min(denying, key=lambda r: r.days, default=None)
    lapse = first.days if first is not None else None
    access_until = None
    if lapse is not None:
        dues = [u.due_at for u in unpaid if u.balance.is_positive()]
        dues += [r.next_invoice_at + r.net_terms for r in renewals]
        access_until = min(dues, default=None)
        access_until = access_until + lapse * DAY if access_until is not None else None
    moments = [m for m in (ladder.next_change_at,) if m is not None]
    if ladder.anchor is None:
        moments += [r.next_invoice_at for r in renewals]
    return StandingResult(
        standing=ladder.standing,
        reason=reason,
        access_until=access_until,
        next_change_at=min(moments, default=None),
        dunning=ladder,
        lapses_to=first.standing if first is not None and access_until is not None else None,
    )
