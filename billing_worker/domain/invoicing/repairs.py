"""Reconciliation: proposals against what issued invoices already hold -- the uncovered
days are new charges; days billed that no proposal justifies any more get a repair credit."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import replace
from datetime import date

from billing_worker.domain.calendar import Span
from billing_worker.domain.invoicing.items import Item, ItemKind, Proposal
from billing_worker.domain.proration import prorate
from shared.money import Money


def _days(span: Span) -> set[int]:
    return set(range(span.start.toordinal(), span.end.toordinal()))


def _runs(days: Iterable[int]) -> Iterator[Span]:
    """Contiguous runs of day ordinals, as spans."""
    ordered = sorted(days)
    i = 0
    while i < len(ordered):
        j = i
        while j + 1 < len(ordered) and ordered[j + 1] == ordered[j] + 1:
            j += 1
        yield Span(date.fromordinal(ordered[i]), date.fromordinal(ordered[j] + 1))
        i = j + 1


def _value(item: Item, days: int) -> Money:
    """What ``days`` of an issued recurring item are worth, on that item's own terms."""
    return prorate(item.amount, days, item.span.days)


def reconcile(
    proposals: Sequence[Proposal],
    existing: Sequence[Item],
    *,
    target: date,
    since: date | None = None,
    held_from: Mapping[str, date] | None = None,
) -> list[Item]:
    """The items a new invoice needs: uncovered charges, repairs and usage corrections.

    Args:
        proposals: every item the terms justify, including ones billable after ``target``
            (so a day billed early is never mistaken for one no longer owed).
        existing: the items already on issued invoices.
        target: only proposals billable on or before this day are charged.
        since: the window the proposals were computed for.
        held_from: subscriptions whose billing is held with no end yet, and the day the
            hold began. Their held days are not billed, and days already billed are not
            credited until the hold ends (the repair is dated then), so a hold never
            moves money while the account is suspended.
    """
    issued = [item for item in existing if since is None or item.span.end > since]
    wanted: dict[tuple[str | None, str], set[int]] = defaultdict(set)
    for proposal in proposals:
        if proposal.item.kind is ItemKind.RECURRING:
            wanted[(proposal.item.subscription_id, proposal.item.rate)] |= _days(proposal.item.span)
    new, covered = _repairs(issued, wanted, held_from or {})
    billed_fixed = {(i.subscription_id, i.rate) for i in issued if i.kind is ItemKind.FIXED}
    billed_usage = _usage_billed(issued)
    for proposal in proposals:
        item = proposal.item
        if proposal.bill_on > target:
            continue
        if item.kind is ItemKind.RECURRING:
            new.extend(_uncovered(proposal, covered[(item.subscription_id, item.rate)]))
        elif item.kind is ItemKind.FIXED:
            if (item.subscription_id, item.rate) not in billed_fixed:
                new.append(item)
        elif item.kind is ItemKind.USAGE:
            prior = billed_usage.get((item.subscription_id, item.rate, item.span))
            if prior is None:
                if item.quantity > 0:
                    new.append(item)
            elif item.amount != prior:
                new.append(replace(item, amount=item.amount - prior))
    return new


def _usage_billed(issued: Sequence[Item]) -> dict[tuple[str | None, str, Span], Money]:
    """What each (subscription, usage rate, period) was billed so far, corrections included."""
    billed: dict[tuple[str | None, str, Span], Money] = {}
    for item in issued:
        if item.kind is ItemKind.USAGE:
            key = (item.subscription_id, item.rate, item.span)
            prior = billed.get(key)
            billed[key] = item.amount if prior is None else prior + item.amount
    return billed


def _repairs(
    issued: Sequence[Item],
    wanted: dict[tuple[str | None, str], set[int]],
    held_from: Mapping[str, date],
) -> tuple[list[Item], dict[tuple[str | None, str], set[int]]]:
    """Credit the days issued recurring items cover that nothing wants any more (except
    days of a hold still running: they are credited when it ends).

    Returns the repairs and, per (subscription, rate), the days still covered.
    """
    repaired: dict[str, set[int]] = defaultdict(set)
    #: What has been credited against each item so far (repairs and adjustments).
    taken: dict[str, Money] = {}
    for item in issued:
        if item.kind is ItemKind.REPAIR and item.linked_to is not None:
            repaired[item.linked_to] |= _days(item.span)
        if item.kind in (ItemKind.REPAIR, ItemKind.ADJUSTMENT) and item.linked_to is not None:
            prior = taken.get(item.linked_to)
            taken[item.linked_to] = item.amount if prior is None else prior + item.amount
    repairs: list[Item] = []
    covered: dict[tuple[str | None, str], set[int]] = defaultdict(set)
    for item in issued:
        if item.kind is not ItemKind.RECURRING or item.id is None:
            continue
        key = (item.subscription_id, item.rate)
        still = _days(item.span) - repaired[item.id]
        unwanted = still - wanted[key]
        hold = held_from.get(item.subscription_id or "")
        if hold is not None:
            unwanted = {d for d in unwanted if d < hold.toordinal()}
        for run in _runs(unwanted):
            before = _value(item, len(still))
            still -= _days(run)
            credit = _value(item, len(still)) - before
            # never credit more than is left of the item once adjusted and repaired
            zero = Money.zero(item.amount.currency)
            left = max(item.amount + taken.get(item.id, zero), zero)
            credit = max(credit, -left)
            taken[item.id] = taken.get(item.id, zero) + credit
            if not credit.is_zero():
                repairs.append(
                    replace(
                        item,
                        kind=ItemKind.REPAIR,
                        amount=credit,
                        span=run,
                        linked_to=item.id,
                        bill_on=None,
                        id=None,
                    )
                )
        covered[key] |= still
    return repairs, covered


def _uncovered(proposal: Proposal, covered: set[int]) -> list[Item]:
    item = proposal.item
    missing = _days(item.span) - covered
    if not missing:
        return []
    if len(missing) == item.span.days:
        return [item]
    full, period = proposal.full, proposal.period
    if full is None or period is None:
        raise ValueError("a recurring proposal carries its period and full price")
    out = []
    for run in _runs(missing):
        amount = prorate(full, run.days, period.days)
        if not amount.is_zero():
            out.append(replace(item, amount=amount, span=run, bill_on=run.start))
    return out
