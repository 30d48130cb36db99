"""The dunning ladder as a pure function of (unpaid invoices, policy, now).

One timeline, anchored on the due date of the oldest unpaid invoice: reminders every
``reminder_every_days`` days from the due date, payment retries on ``retry_days`` (each
never sooner after the last charge than the schedule spaces them: a charge made late,
after an outage, moves the retries after it -- ``LastCharge``), and
rungs of the ladder (grace, degraded, suspended, cancelled) each reached when the account
is that many days past due and, optionally, owes at least an amount or a number of
invoices. A hard decline stops retries and may jump to a rung at once.

``evaluate`` also returns the next moment its answer can change with no event, so the
worker wakes exactly then: no rung, reminder or retry is skipped, and a partial payment
that moves the anchor simply yields a new evaluation from the new anchor.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from shared.money import Money, MoneyError
from shared.states import Standing

DAY = timedelta(days=1)
_ORDER = (Standing.ACTIVE, Standing.GRACE, Standing.DEGRADED, Standing.SUSPENDED,
          Standing.CANCELLED)  # fmt: skip


class PolicyError(ValueError):
    pass


@dataclass(frozen=True, kw_only=True, slots=True)
class Rung:
    """Reached ``days`` days past due, if the account owes enough (when set)."""

    standing: Standing
    days: int
    min_balance: Money | None = None
    min_invoices: int | None = None
    #: While the account is at this stage, it may not change plans or quantities, or
    #: subscribe to more (access follows the stage as usual).
    block_changes: bool = False


@dataclass(frozen=True, kw_only=True, slots=True)
class DunningPolicy:
    rungs: tuple[Rung, ...]
    reminder_every_days: int | None = 1
    retry_days: tuple[int, ...] = (1, 3, 7, 14)
    #: Where a hard decline (stolen or expired card) puts the account at once, if anywhere.
    hard_decline_standing: Standing | None = None
    #: On the cancelled rung, billing ends at the end of the term ("end_of_term", no
    #: credit) or at once ("immediate", prorated credit). Access ends at once either way.
    cancel_billing: str = "end_of_term"
    #: While suspended: billing goes on ("continue") or is held ("pause"), the held days
    #: credited, until the account is reinstated.
    suspended_billing: str = "continue"
    #: What degraded means: read-only access (None: the tenant's ``degraded_read_only``)
    #: and the features kept (None: all of the plan's).
    degraded_read_only: bool | None = None
    degraded_features: tuple[str, ...] | None = None

    def __post_init__(self) -> None:
        previous = -1
        for rung in self.rungs:
            if rung.standing not in _ORDER[1:]:
                raise PolicyError(f"{rung.standing} is not a rung of the ladder")
            if rung.days <= previous:
                raise PolicyError("rungs must come in order of days past due")
            previous = rung.days
        if self.reminder_every_days is not None and self.reminder_every_days < 1:
            raise PolicyError("reminder_every_days must be at least 1")
        if list(self.retry_days) != sorted(set(self.retry_days)) or any(
            d < 0 for d in self.retry_days
        ):
            raise PolicyError("retry_days must be increasing days past due")
        if self.hard_decline_standing is not None and self.hard_decline_standing not in _ORDER[2:]:
            raise PolicyError("hard_decline must be degraded, suspended or cancelled")
        if self.cancel_billing not in ("end_of_term", "immediate"):
            raise PolicyError("cancel_billing must be end_of_term or immediate")
        if self.suspended_billing not in ("continue", "pause"):
            raise PolicyError("suspended_billing must be continue or pause")

    @classmethod
    def classic(cls) -> DunningPolicy:
        """Daily reminders, retries on days 1, 3, 7 and 14, suspended on day 31."""
        return classic_with(30)


@dataclass(frozen=True, kw_only=True, slots=True)
class Unpaid:
    invoice_id: str
    due_at: datetime
    balance: Money


@dataclass(frozen=True, kw_only=True, slots=True)
class Dunning:
    standing: Standing
    #: The due date the timeline runs from (the oldest unpaid invoice's), if any.
    anchor: datetime | None
    days_past_due: int
    #: The reminder this moment falls in (1 on the due date), for deduplication; or None.
    reminder: int | None
    #: Whether a payment retry is due now (the worker records it under this number).
    retry: int | None
    #: The next moment the answer can change with no payment or other event.
    next_change_at: datetime | None
    #: The stage reached blocks plan changes, quantity changes and new subscriptions.
    blocks_changes: bool = False


@dataclass(frozen=True, kw_only=True, slots=True)
class LastCharge:
    """The latest automatic charge made late (after an outage): the retry it was (0: the
    first charge of an invoice) and when it was really made."""

    retry: int
    at: datetime


def _retry_dues(
    policy: DunningPolicy, anchor: datetime, last: LastCharge | None
) -> list[tuple[int, datetime | None]]:
    """Each retry's number and when it is due (None: made already). The schedule runs
    from the anchor, moved on by as much as the last charge of this timeline was late. A
    charge made before its number's moment of this timeline (an earlier invoice's retry)
    is not one of its own."""
    days = (0, *policy.retry_days)
    done, shift = 0, timedelta(0)
    if last is not None and last.retry < len(days):
        scheduled = anchor + days[last.retry] * DAY
        if last.at >= scheduled:
            done, shift = last.retry, last.at - scheduled
    return [
        (n, None if n <= done else anchor + d * DAY + shift)
        for n, d in enumerate(policy.retry_days, 1)
    ]


def _rank(standing: Standing) -> int:
    return _ORDER.index(standing)


def _holds(rung: Rung, owed: Money, count: int, days: int) -> bool:
    if days < rung.days:
        return False
    if rung.min_balance is not None and owed < rung.min_balance:
        return False
    return rung.min_invoices is None or count >= rung.min_invoices


def evaluate(
    unpaid: Sequence[Unpaid],
    policy: DunningPolicy,
    now: datetime,
    *,
    hard_declined: bool = False,
    last_charge: LastCharge | None = None,
) -> Dunning:
    owing = [u for u in unpaid if u.balance.is_positive()]
    overdue = [u for u in owing if u.due_at <= now]
    if not overdue:
        upcoming = min((u.due_at for u in owing), default=None)
        return Dunning(
            standing=Standing.ACTIVE,
            anchor=None,
            days_past_due=0,
            reminder=None,
            retry=None,
            next_change_at=upcoming,
        )
    anchor = min(u.due_at for u in overdue)
    days = (now - anchor) // DAY
    owed = sum((u.balance for u in overdue[1:]), overdue[0].balance)
    count = len(overdue)
    standing, stage = Standing.ACTIVE, None
    for rung in policy.rungs:
        if _holds(rung, owed, count, days):
            standing, stage = rung.standing, rung
    if hard_declined and policy.hard_decline_standing is not None:
        if _rank(policy.hard_decline_standing) > _rank(standing):
            standing = policy.hard_decline_standing
            stage = next((r for r in policy.rungs if r.standing is standing), None)
    moments = [anchor + rung.days * DAY for rung in policy.rungs if rung.days > days]
    # A later invoice falling due can satisfy a rung's balance or count condition.
    moments += [u.due_at for u in owing if u.due_at > now]
    reminder = None
    if policy.reminder_every_days is not None and standing.grants_access:
        every = policy.reminder_every_days
        reminder = days // every + 1
        moments.append(anchor + reminder * every * DAY)
    retry = None
    if not hard_declined and standing is not Standing.CANCELLED:
        dues = _retry_dues(policy, anchor, last_charge)
        passed = [n for n, due in dues if due is None or due <= now]
        retry = passed[-1] if passed else None
        moments += [due for _, due in dues if due is not None and due > now]
    return Dunning(
        standing=standing,
        anchor=anchor,
        days_past_due=days,
        reminder=reminder,
        retry=retry,
        next_change_at=min(moments, default=None),
        blocks_changes=stage is not None and stage.block_changes,
    )


def classic_with(grace_days: int) -> DunningPolicy:
    """The classic policy with another grace period (a tenant's ``grace_days``); with none,
    an account is suspended as soon as an invoice is past due."""
    suspended = Rung(standing=Standing.SUSPENDED, days=grace_days)
    if grace_days == 0:
        return DunningPolicy(rungs=(suspended,))
    return DunningPolicy(rungs=(Rung(standing=Standing.GRACE, days=0), suspended))


def policy_from_document(document: Mapping[str, Any], currency: str) -> DunningPolicy:
    """Build a policy from its stored document (see ``schemas.DunningPolicyIn``); amounts
    are read in the account's ``currency``: a stage's ``min_balance`` is an amount per
    currency (``{"USD": "99.50", "JPY": "10000"}``), or one amount in the only currency the
    tenant bills in.

    Raises:
        PolicyError: the stages are out of order, or a minimum is missing or unreadable in
            ``currency`` (named by its path).
    """
    rungs = []
    for i, stage in enumerate(document.get("stages", ())):
        minimum = stage.get("min_balance")
        if isinstance(minimum, Mapping):
            if currency not in minimum:
                raise PolicyError(f"stages[{i}].min_balance: no amount for {currency}")
            minimum = minimum[currency]
        try:
            balance = Money.parse(minimum, currency) if minimum is not None else None
        except MoneyError as exc:
            raise PolicyError(f"stages[{i}].min_balance: {exc}") from exc
        rungs.append(
            Rung(
                standing=Standing(stage["standing"]),
                days=int(stage["days_past_due"]),
                min_balance=balance,
                min_invoices=stage.get("min_invoices"),
                block_changes=bool(stage.get("block_changes", False)),
            )
        )
    hard = document.get("hard_decline")
    return DunningPolicy(
        rungs=tuple(rungs),
        reminder_every_days=document.get("reminder_every_days", 1),
        retry_days=tuple(document.get("retry_days", (1, 3, 7, 14))),
        hard_decline_standing=Standing(hard) if hard else None,
        cancel_billing=document.get("cancel_billing", "end_of_term"),
        suspended_billing=document.get("suspended_billing", "continue"),
        degraded_read_only=document.get("degraded_read_only"),
        degraded_features=(
            tuple(document["degraded_features"])
            if document.get("degraded_features") is not None
            else None
        ),
    )


def policy_problems(
    document: Mapping[str, Any], currencies: Sequence[str]
) -> list[tuple[str, str]]:
    """What makes a policy document unreadable for one of the tenant's ``currencies`` (its
    path and why): one amount for a stage while the tenant bills in several currencies, an
    amount missing or malformed in one of them, stages out of order."""
    several = len(currencies) > 1
    problems = [
        (f"stages[{i}].min_balance",
         f"the tenant bills in {', '.join(currencies)}: give an amount per currency, such "
         f'as {{"{currencies[0]}": "99.50"}}')
        for i, stage in enumerate(document.get("stages", ()))
        if several and isinstance(stage.get("min_balance"), str)
    ]  # fmt: skip
    for currency in () if problems else (currencies or ("USD",)):
        try:
            policy_from_document(document, currency)
        except PolicyError as exc:
            where, _, why = str(exc).partition(": ")
            problems.append((where, why) if where.startswith("stages[") else ("stages", str(exc)))
            break
    return problems
