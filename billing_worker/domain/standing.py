"""Where an account stands on the dunning ladder (the foundation's minimal rule).

Rule (one fixed grace period): an invoice is *due* at its due date. While any invoice
is unpaid past its due date the account is in ``grace`` (full access); once the oldest
unpaid invoice is ``grace_days`` days past due the account is ``suspended``. With the
default 30 days, an invoice due at ``T`` gives grace through day 30 and suspends at
``T + 30 days`` -- the first moment of day 31. Paying everything overdue returns the
account to ``active`` at once. No active subscription means ``cancelled``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from shared.money import Money
from shared.states import Standing


@dataclass(frozen=True, kw_only=True, slots=True)
class GracePolicy:
    grace_days: int = 30

    def __post_init__(self) -> None:
        if not 0 <= self.grace_days <= 3650:
            raise ValueError("grace_days must be between 0 and 3650")


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


def evaluate_standing(
    *,
    unpaid: Sequence[UnpaidInvoice],
    renewals: Sequence[RenewalOutlook],
    has_active_subscription: bool,
    policy: GracePolicy,
    now: datetime,
    paused: bool = False,
) -> StandingResult:
    """Evaluate the ladder for one account.

    Args:
        unpaid: invoices with a positive balance.
        renewals: for each renewing subscription, when its next invoice is issued.
        has_active_subscription: whether any subscription currently grants access.
        paused: whether, granting none, a subscription is paused (rather than ended).
        policy: the grace period.
        now: the evaluation time.

    Returns:
        The standing, its reason, the moment access would lapse without payment, and
        the next moment the answer changes by the passing of time alone.
    """
    if not has_active_subscription and paused:
        return StandingResult(
            standing=Standing.PAUSED,
            reason="subscription_paused",
            access_until=None,
            next_change_at=None,
        )
    if not has_active_subscription:
        return StandingResult(
            standing=Standing.CANCELLED,
            reason="no_active_subscription",
            access_until=None,
            next_change_at=None,
        )
    grace = timedelta(days=policy.grace_days)
    owing = [inv for inv in unpaid if inv.balance.is_positive()]
    suspend_points = [inv.due_at + grace for inv in owing]
    suspend_points += [r.next_invoice_at + r.net_terms + grace for r in renewals]
    access_until = min(suspend_points) if suspend_points else None
    overdue = [inv for inv in owing if inv.due_at <= now]
    if overdue:
        oldest_due = min(inv.due_at for inv in overdue)
        if now >= oldest_due + grace:
            return StandingResult(
                standing=Standing.SUSPENDED,
                reason="payment_overdue",
                access_until=None,
                next_change_at=None,
            )
        return StandingResult(
            standing=Standing.GRACE,
            reason="payment_due",
            access_until=access_until,
            next_change_at=oldest_due + grace,
        )
    upcoming = [inv.due_at for inv in owing] + [r.next_invoice_at for r in renewals]
    return StandingResult(
        standing=Standing.ACTIVE,
        reason="in_good_standing",
        access_until=access_until,
        next_change_at=min(upcoming) if upcoming else None,
    )
