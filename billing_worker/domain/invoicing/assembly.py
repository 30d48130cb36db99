"""Invoices from items: grouped by billing day, totalled, with account credit applied
(``next_items`` runs proposals and reconciliation up to a target day)."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, timedelta

from billing_worker.domain.calendar import Span
from billing_worker.domain.invoicing.items import Billing, Item, ItemKind, Proposal, UsageRecord
from billing_worker.domain.invoicing.proposing import propose
from billing_worker.domain.invoicing.repairs import reconcile
from billing_worker.domain.subscriptions import CatalogAt
from shared.money import Money


@dataclass(frozen=True, slots=True)
class Draft:
    items: tuple[Item, ...]
    #: Charges minus credits: never negative.
    total: Money
    #: The account's credit after this invoice.
    credit_after: Money


def assemble(items: Sequence[Item], *, credit: Money, day: date) -> Draft | None:
    """Turn new items into an invoice: spend account credit, bank a surplus of credits.

    Returns None when there is nothing to invoice.
    """
    if not items:
        return None
    currency = credit.currency
    total = sum((i.amount for i in items), Money.zero(currency))
    lines = list(items)
    one_day = Span(day, day + timedelta(days=1))
    if total.amount < 0:
        lines.append(Item(kind=ItemKind.CREDIT_GENERATED, amount=-total, span=one_day))
        credit = credit - total
        total = Money.zero(currency)
    elif total.is_positive() and credit.is_positive():
        spent = min(credit, total)
        lines.append(Item(kind=ItemKind.CREDIT_APPLIED, amount=-spent, span=one_day))
        credit = credit - spent
        total = total - spent
    return Draft(items=tuple(lines), total=total, credit_after=credit)


def by_billing_day(
    items: Sequence[Item], today: date, *, resumed_on: date | None = None
) -> list[tuple[date, list[Item]]]:
    """Split new items by the day they became billable, oldest first.

    A run that catches up (a back-dated subscription, a worker that was down) issues the
    invoices it would have issued on time, so due dates do not move with the outage.
    Repairs and other immediate items go on today's invoice. What became billable while
    the account's invoicing was held goes on the invoice of the day it ``resumed_on``:
    that is when it is invoiced, not late.
    """
    days: dict[date, list[Item]] = defaultdict(list)
    for item in items:
        day = item.bill_on if item.bill_on is not None and item.bill_on < today else today
        if resumed_on is not None and day < resumed_on <= today:
            day = resumed_on
        days[day].append(item)
    return sorted(days.items())


def invoice_total(items: Iterable[Item], currency: str) -> Money:
    return sum((i.amount for i in items), Money.zero(currency))


def balance(total: Money, payments: Money, refunds: Money) -> Money:
    """Invoice balance: charges - credits - payments + refunds, never below zero."""
    due = total - payments + refunds
    return due if due.amount > 0 else Money.zero(total.currency)


def next_items(
    billings: Sequence[Billing],
    catalog_at: CatalogAt,
    *,
    existing: Sequence[Item],
    currency: str,
    account_cycle_day: int | None,
    target: date,
    since: date | None = None,
    usage: Sequence[UsageRecord] = (),
    zero_amounts: bool = True,
) -> tuple[list[Item], date | None]:
    """The items the next invoice of a bill-to account needs on ``target``.

    Returns:
        The new items (empty: nothing to invoice) and the next day on which something
        becomes billable, for the scheduler.
    """
    horizon = max([target, *(i.span.end for i in existing if i.kind is ItemKind.RECURRING)])
    proposals: list[Proposal] = []
    upcoming: list[date] = []
    for billing in billings:
        found, next_on = propose(
            billing,
            catalog_at,
            currency=currency,
            account_cycle_day=account_cycle_day,
            until=horizon,
            since=since,
            usage=usage,
            zero_amounts=zero_amounts,
        )
        proposals += found
        upcoming += [p.bill_on for p in found if p.bill_on > target]
        if next_on is not None:
            upcoming.append(next_on)
    held_from = {
        b.terms.id: hold.start for b in billings for hold in b.terms.holds if hold.resume is None
    }
    items = reconcile(proposals, existing, target=target, since=since, held_from=held_from)
    return items, min(upcoming, default=None)
