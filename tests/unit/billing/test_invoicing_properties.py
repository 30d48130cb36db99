"""Properties of invoicing over random subscription lives."""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import replace
from datetime import date, timedelta
from decimal import Decimal

from hypothesis import given, settings
from hypothesis import strategies as st

from billing_worker.domain.calendar import add_months
from billing_worker.domain.catalog import PhaseType
from billing_worker.domain.changes import CancelRequest, cancellation_for, with_cycle_day
from billing_worker.domain.invoicing import ItemKind, assemble
from billing_worker.domain.subscriptions import (
    Pause,
    PriceOverride,
    QuantityChange,
    SubscriptionError,
    Terms,
)
from shared.money import Money
from tests.unit.billing.catalog_fixture import catalog_at
from tests.unit.billing.test_invoicing import Ledger

START = date(2027, 1, 1)

actions = st.lists(
    st.tuples(
        st.integers(min_value=0, max_value=40),  # days after the previous step
        st.sampled_from(["invoice", "cancel", "uncancel", "pause", "resume", "seats"]),
        st.sampled_from(["immediate", "end_of_term", "start_of_term"]),
        st.integers(min_value=1, max_value=20),
    ),
    min_size=1,
    max_size=12,
)


def step(terms: Terms, day: date, action: str, policy: str, n: int) -> Terms:
    if action == "cancel":
        try:
            request = CancelRequest(requested_on=day, billing_policy=policy)
            return replace(terms, cancellation=cancellation_for(terms, catalog_at, request, 1))
        except SubscriptionError:
            return terms
    if action == "uncancel" and terms.cancellation and terms.cancellation.billing_end > day:
        return replace(terms, cancellation=None)
    if action == "pause" and not any(p.resume is None for p in terms.pauses):
        last = max((p.resume for p in terms.pauses if p.resume), default=START)
        if day >= last and day >= terms.billing_start:
            return replace(terms, pauses=(*terms.pauses, Pause(day)))
    if action == "resume" and terms.pauses and terms.pauses[-1].resume is None:
        if day > terms.pauses[-1].start:
            open_pause = replace(terms.pauses[-1], resume=day)
            return replace(terms, pauses=(*terms.pauses[:-1], open_pause))
    if action == "seats" and terms.plan == "team-monthly":
        return replace(terms, quantities=(*terms.quantities, QuantityChange(day, n)))
    return terms


@settings(max_examples=150, deadline=None)
@given(
    plan=st.sampled_from(["pro-monthly", "pro-annual", "team-monthly", "pro-trial"]),
    cycle_day=st.integers(min_value=1, max_value=31),
    offset=st.integers(min_value=0, max_value=60),
    life=actions,
)
def test_invoicing_is_idempotent_and_repairs_never_exceed_the_charge(
    plan: str, cycle_day: int, offset: int, life: list[tuple[int, str, str, int]]
) -> None:
    start = START + timedelta(days=offset)
    terms = Terms(id="s", plan=plan, quantity=3, entitlement_start=start, billing_start=start)
    ledger = Ledger(cycle_day=cycle_day)
    day = start
    credit = Money.zero("USD")
    for gap, action, policy, n in life:
        day += timedelta(days=gap)
        terms = step(terms, day, action, policy, n)
        before = len(ledger.items)
        ledger.invoice(terms, day)
        new = ledger.items[before:]
        # Re-running for the same day bills nothing.
        assert ledger.invoice(terms, day) == []
        draft = assemble(new, credit=credit, day=day)
        if draft is not None:
            assert draft.total.amount >= 0
            assert draft.credit_after.amount >= 0
            credit = draft.credit_after

    repairs: dict[str, Money] = defaultdict(lambda: Money.zero("USD"))
    for item in ledger.items:
        assert isinstance(item.amount.amount, Decimal)
        assert item.amount.quantize() == item.amount  # whole minor units
        if item.kind is ItemKind.REPAIR:
            assert item.linked_to is not None
            repairs[item.linked_to] += item.amount
    for item in ledger.items:
        if item.kind is ItemKind.RECURRING and item.id in repairs:
            kept = item.amount + repairs[item.id]
            assert Money.zero("USD") <= kept <= item.amount


@settings(max_examples=150, deadline=None)
@given(
    plan=st.sampled_from(["pro-monthly", "pro-annual", "team-monthly", "pro-trial"]),
    cycle_day=st.integers(min_value=1, max_value=31),
    offset=st.integers(min_value=0, max_value=60),
    changes=st.lists(
        st.tuples(st.integers(min_value=0, max_value=120), st.integers(1, 31)),
        min_size=1,
        max_size=3,
    ),
    daily=st.booleans(),
)
def test_a_new_cycle_day_bills_every_day_once_and_moves_nothing_billed(
    plan: str, cycle_day: int, offset: int, changes: list[tuple[int, int]], daily: bool
) -> None:
    """However the account's cycle day changes (and however often the invoicer runs), every
    billed day is billed exactly once, nothing already billed is repaired, and periods after
    a change fall on the new day."""
    start = START + timedelta(days=offset)
    terms = Terms(id="s", plan=plan, quantity=2, entitlement_start=start, billing_start=start)
    ledger = Ledger(cycle_day=cycle_day)
    account_day, day = cycle_day, start
    for gap, new_day in changes:
        target = day + timedelta(days=gap)
        while day < target and daily:
            ledger.invoice(terms, day)
            day += timedelta(days=1)
        day = target
        ledger.invoice(terms, day)
        if new_day == account_day:
            continue
        changed = with_cycle_day(terms, catalog_at, day, account_day, new_day)
        if changed is None:
            continue
        terms = changed
        account_day = new_day
    horizon = day + timedelta(days=400)
    ledger.invoice(terms, horizon)

    assert not [i for i in ledger.items if i.kind is ItemKind.REPAIR]
    billed: Counter[date] = Counter()
    for item in ledger.items:
        if item.kind is ItemKind.RECURRING:
            days = (item.span.end - item.span.start).days
            billed.update(item.span.start + timedelta(days=n) for n in range(days))
    first = min(billed)
    assert all(n == 1 for n in billed.values())  # no day billed twice
    assert len(billed) == (max(billed) - first).days + 1  # and none skipped
    last_change = terms.cycle_changes[-1] if terms.cycle_changes else None
    if last_change is not None and last_change.effective >= first and plan != "pro-trial":
        # (a trial's end starts a period of its own wherever it falls)
        after = last_change.effective
        later = sorted(
            i.span.start
            for i in ledger.items
            if i.kind is ItemKind.RECURRING and i.span.start > after
        )
        assert all(d.day == min(last_change.day, _month_end(d)) for d in later), later


def _month_end(day: date) -> int:
    following = date(day.year + day.month // 12, day.month % 12 + 1, 1)
    return (following - timedelta(days=1)).day


LISTED = {"pro-monthly": "31.00", "pro-annual": "365.00", "team-monthly": "10.00",
          "pro-trial": "31.00"}  # fmt: skip


@settings(max_examples=60, deadline=None)
@given(
    plan=st.sampled_from(sorted(LISTED)),
    cycle_day=st.integers(min_value=1, max_value=31),
    offset=st.integers(min_value=0, max_value=60),
    life=actions,
)
def test_a_negotiated_price_equal_to_the_catalogs_bills_the_same(
    plan: str, cycle_day: int, offset: int, life: list[tuple[int, str, str, int]]
) -> None:
    """The same life billed at the catalog's price and at a negotiated price that happens to
    equal it: the same items, day for day and cent for cent."""
    start = START + timedelta(days=offset)
    listed = Terms(id="s", plan=plan, quantity=3, entitlement_start=start, billing_start=start)
    override = PriceOverride(PhaseType.EVERGREEN, recurring=Decimal(LISTED[plan]))
    negotiated = replace(listed, price_overrides=(override,))
    by_catalog, by_deal = Ledger(cycle_day=cycle_day), Ledger(cycle_day=cycle_day)
    day = start
    for gap, action, policy, n in life:
        day += timedelta(days=gap)
        listed = step(listed, day, action, policy, n)
        negotiated = replace(step(negotiated, day, action, policy, n), price_overrides=(override,))
        assert by_deal.invoice(negotiated, day) == by_catalog.invoice(listed, day)


@settings(max_examples=60, deadline=None)
@given(offset=st.integers(min_value=0, max_value=60), life=actions)
def test_a_negotiated_monthly_price_is_billed_whole_for_each_whole_month(
    offset: int, life: list[tuple[int, str, str, int]]
) -> None:
    """At 24.80 negotiated, every whole month of pro-monthly bills 24.80, and no item is
    more than that."""
    start = START + timedelta(days=offset)
    deal = (PriceOverride(PhaseType.EVERGREEN, recurring=Decimal("24.80")),)
    terms = Terms(id="s", plan="pro-monthly", entitlement_start=start, billing_start=start,
                  price_overrides=deal)  # fmt: skip
    ledger = Ledger(cycle_day=start.day)
    day = start
    for gap, action, policy, n in life:
        day += timedelta(days=gap)
        terms = replace(step(terms, day, action, policy, n), price_overrides=deal)
        ledger.invoice(terms, day)
    for item in ledger.items:
        if item.kind is ItemKind.RECURRING:
            assert item.amount.amount <= Decimal("24.80"), item
            span = item.span  # a whole period: from a cycle day to the next
            whole = span.start.day == start.day and span.end == add_months(span.start, 1, start.day)
            assert not whole or item.amount.amount == Decimal("24.80"), item
