"""Invoicing by reconciliation, with every amount worked out by hand.

The fixture's pro-monthly costs 31.00 a month, so a day of a 31-day month is 1.00.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import date
from decimal import Decimal

from billing_worker.domain.calendar import Span
from billing_worker.domain.catalog import ChangePolicy
from billing_worker.domain.changes import (
    CancelRequest,
    ChangeRequest,
    cancellation_for,
    plan_change_for,
)
from billing_worker.domain.invoicing import (
    Billing,
    Item,
    ItemKind,
    UsageRecord,
    assemble,
    next_items,
)
from billing_worker.domain.subscriptions import Cancellation, Pause, QuantityChange, Terms
from shared.money import Money
from tests.unit.billing.catalog_fixture import catalog_at

D = date


def usd(text: str) -> Money:
    return Money(Decimal(text), "USD")


@dataclass
class Ledger:
    """Issued items, as the database would hold them."""

    cycle_day: int | None = 1
    currency: str = "USD"
    items: list[Item] = field(default_factory=list)

    def invoice(
        self,
        terms: Terms,
        target: date,
        *,
        price_list: str | None = None,
        usage: tuple[UsageRecord, ...] = (),
    ) -> list[tuple[str, str, str]]:
        new, _next = next_items(
            [Billing(terms, price_list)],
            catalog_at,
            existing=self.items,
            currency=self.currency,
            account_cycle_day=self.cycle_day,
            target=target,
            usage=usage,
        )
        start = len(self.items)
        self.items += [replace(item, id=f"item{start + n}") for n, item in enumerate(new)]
        return [(i.kind.value, str(i.span), i.amount.format()) for i in new]


NEW_YEAR = date(2027, 1, 1)


def monthly(start: date = NEW_YEAR, **kw: object) -> Terms:
    return Terms(id="sub1", plan="pro-monthly", entitlement_start=start, billing_start=start, **kw)  # type: ignore[arg-type]


def test_in_advance_bills_the_period_once() -> None:
    ledger = Ledger()
    assert ledger.invoice(monthly(), D(2027, 1, 1)) == [
        ("recurring", "2027-01-01..2027-02-01", "31.00")
    ]
    assert ledger.invoice(monthly(), D(2027, 1, 1)) == []
    assert ledger.invoice(monthly(), D(2027, 1, 31)) == []
    # February has 28 days and still costs the full month.
    assert ledger.invoice(monthly(), D(2027, 2, 1)) == [
        ("recurring", "2027-02-01..2027-03-01", "31.00")
    ]


def test_a_late_run_bills_every_missed_period() -> None:
    assert Ledger().invoice(monthly(), D(2027, 3, 5)) == [
        ("recurring", "2027-01-01..2027-02-01", "31.00"),
        ("recurring", "2027-02-01..2027-03-01", "31.00"),
        ("recurring", "2027-03-01..2027-04-01", "31.00"),
    ]


def test_a_mid_cycle_start_prorates_to_the_account_cycle_day() -> None:
    # 15 Jan .. 1 Feb is 17 of January's 31 days: 31.00 x 0.548387097 = 17.000000007 -> 17.00
    assert Ledger().invoice(monthly(D(2027, 1, 15)), D(2027, 1, 15)) == [
        ("recurring", "2027-01-15..2027-02-01", "17.00")
    ]


def test_a_cycle_day_past_month_end_falls_back_to_the_last_day() -> None:
    ledger = Ledger(cycle_day=31)
    terms = monthly(D(2027, 1, 31))
    assert ledger.invoice(terms, D(2027, 3, 31)) == [
        ("recurring", "2027-01-31..2027-02-28", "31.00"),
        ("recurring", "2027-02-28..2027-03-31", "31.00"),
        ("recurring", "2027-03-31..2027-04-30", "31.00"),
    ]


def test_japanese_yen_has_no_minor_unit() -> None:
    # 3100 x 17/31 = 3100 x 0.548387097 = 1700.0000007 -> 1700
    ledger = Ledger(currency="JPY")
    assert ledger.invoice(monthly(D(2027, 1, 15)), D(2027, 1, 15)) == [
        ("recurring", "2027-01-15..2027-02-01", "1700")
    ]


def cancel(terms: Terms, on: date, **kw: object) -> Terms:
    request = CancelRequest(requested_on=on, **kw)  # type: ignore[arg-type]
    return replace(terms, cancellation=cancellation_for(terms, catalog_at, request, 1))


def test_an_immediate_cancellation_credits_the_unused_days() -> None:
    ledger = Ledger()
    ledger.invoice(monthly(), D(2027, 1, 1))
    terms = cancel(monthly(), D(2027, 1, 11), billing_policy="immediate")
    assert terms.cancellation == Cancellation(
        entitlement_end=D(2027, 2, 1), billing_end=D(2027, 1, 11)
    )
    # Used 10 of 31 days: 31.00 x 0.322580645 = 9.999999995 -> 10.00; credit 31.00 - 10.00
    assert ledger.invoice(terms, D(2027, 1, 11)) == [("repair", "2027-01-11..2027-02-01", "-21.00")]
    assert ledger.invoice(terms, D(2027, 3, 1)) == []


def test_start_of_term_credits_the_whole_period_and_end_of_term_nothing() -> None:
    ledger = Ledger()
    ledger.invoice(monthly(), D(2027, 1, 1))
    full = cancel(monthly(), D(2027, 1, 11), billing_policy="start_of_term")
    assert ledger.invoice(full, D(2027, 1, 11)) == [("repair", "2027-01-01..2027-02-01", "-31.00")]

    ledger = Ledger()
    ledger.invoice(monthly(), D(2027, 1, 1))
    none = cancel(monthly(), D(2027, 1, 11), billing_policy="end_of_term")
    assert ledger.invoice(none, D(2027, 1, 11)) == []
    assert ledger.invoice(none, D(2027, 2, 1)) == []


def test_cancel_access_now_but_bill_to_term_end() -> None:
    terms = cancel(
        monthly(),
        D(2027, 1, 11),
        entitlement_policy=ChangePolicy.IMMEDIATE,
        billing_policy="end_of_term",
    )
    assert terms.cancellation == Cancellation(
        entitlement_end=D(2027, 1, 11), billing_end=D(2027, 2, 1)
    )


def test_uncancel_after_the_credit_bills_the_credited_days_again() -> None:
    ledger = Ledger()
    ledger.invoice(monthly(), D(2027, 1, 1))
    ledger.invoice(cancel(monthly(), D(2027, 1, 11), billing_policy="immediate"), D(2027, 1, 11))
    # 21 days of 31 at 31.00 = 31.00 x 0.677419355 = 21.000000005 -> 21.00
    assert ledger.invoice(monthly(), D(2027, 1, 12)) == [
        ("recurring", "2027-01-11..2027-02-01", "21.00")
    ]


def test_a_pause_credits_the_paused_days_and_resume_bills_on() -> None:
    ledger = Ledger()
    ledger.invoice(monthly(), D(2027, 1, 1))
    paused = monthly(pauses=(Pause(D(2027, 1, 10), D(2027, 1, 20)),))
    # Kept 21 of 31 days: 31.00 - 21.00 = 10.00 back.
    assert ledger.invoice(paused, D(2027, 1, 20)) == [
        ("repair", "2027-01-10..2027-01-20", "-10.00")
    ]
    assert ledger.invoice(paused, D(2027, 2, 1)) == [
        ("recurring", "2027-02-01..2027-03-01", "31.00")
    ]


def test_a_billing_hold_credits_nothing_until_it_ends() -> None:
    ledger = Ledger()
    ledger.invoice(monthly(), D(2027, 1, 1))
    held = monthly(holds=(Pause(D(2027, 1, 11)),))
    # Held from 11 January: nothing credited while the hold runs, February not billed.
    assert ledger.invoice(held, D(2027, 1, 11)) == []
    assert ledger.invoice(held, D(2027, 2, 1)) == []
    assert ledger.invoice(held, D(2027, 3, 1)) == []
    # Ended 5 February: January kept 10 of 31 days, 31.00 - 10.00 = 21.00 back; billing
    # resumes for 24 of February's 28 days, 31.00 x 0.857142857 = 26.57.
    ended = monthly(holds=(Pause(D(2027, 1, 11), D(2027, 2, 5)),))
    assert ledger.invoice(ended, D(2027, 2, 5)) == [
        ("repair", "2027-01-11..2027-02-01", "-21.00"),
        ("recurring", "2027-02-05..2027-03-01", "26.57"),
    ]
    assert ledger.invoice(ended, D(2027, 2, 5)) == []


def test_a_quantity_change_repairs_the_old_seats_and_bills_the_new() -> None:
    ledger = Ledger()
    team = Terms(
        id="sub1",
        plan="team-monthly",
        quantity=5,
        entitlement_start=D(2027, 1, 1),
        billing_start=D(2027, 1, 1),
    )
    assert ledger.invoice(team, D(2027, 1, 1)) == [("recurring", "2027-01-01..2027-02-01", "50.00")]
    more = replace(team, quantities=(QuantityChange(D(2027, 1, 16), 8),))
    # 5 seats kept 15 of 31 days: 50 x 0.483870968 = 24.1935484 -> 24.19; credit 25.81.
    # 8 seats for 16 of 31 days: 80 x 0.516129032 = 41.29032256 -> 41.29.
    assert ledger.invoice(more, D(2027, 1, 16)) == [
        ("repair", "2027-01-16..2027-02-01", "-25.81"),
        ("recurring", "2027-01-16..2027-02-01", "41.29"),
    ]


def test_a_trial_bills_nothing_then_prorates_to_the_cycle_day() -> None:
    ledger = Ledger()
    trial = Terms(
        id="sub1", plan="pro-trial", entitlement_start=D(2027, 1, 1), billing_start=D(2027, 1, 1)
    )
    # The free trial's $0 item on its first day, once.
    assert ledger.invoice(trial, D(2027, 1, 1)) == [("fixed", "2027-01-01..2027-01-02", "0.00")]
    assert ledger.invoice(trial, D(2027, 1, 14)) == []
    # Evergreen from 15 Jan: 17 of 31 days = 17.00
    assert ledger.invoice(trial, D(2027, 1, 15)) == [
        ("recurring", "2027-01-15..2027-02-01", "17.00")
    ]


def test_beta_access_before_billing_starts() -> None:
    beta = Terms(
        id="sub1", plan="pro-monthly", entitlement_start=D(2026, 12, 1), billing_start=D(2027, 1, 1)
    )
    ledger = Ledger()
    assert ledger.invoice(beta, D(2026, 12, 31)) == []
    assert ledger.invoice(beta, D(2027, 1, 1)) == [("recurring", "2027-01-01..2027-02-01", "31.00")]


def test_an_immediate_upgrade_to_annual_credits_the_month_and_prorates_the_year() -> None:
    ledger = Ledger()
    ledger.invoice(monthly(), D(2027, 1, 1))
    change = plan_change_for(
        monthly(), catalog_at, ChangeRequest(requested_on=D(2027, 1, 16), plan="pro-annual"), 1
    )
    assert change.effective == D(2027, 1, 16)
    upgraded = replace(monthly(), changes=(change,))
    # Month: kept 15 of 31 days = 15.00, credit 16.00.
    # Year 2027-01-01..2028-01-01 has 365 days, 350 of them left: 365 x 0.958904110 = 350.00
    assert ledger.invoice(upgraded, D(2027, 1, 16)) == [
        ("repair", "2027-01-16..2027-02-01", "-16.00"),
        ("recurring", "2027-01-16..2028-01-01", "350.00"),
    ]


def test_a_downgrade_from_annual_waits_for_the_end_of_the_term() -> None:
    annual = Terms(
        id="sub1", plan="pro-annual", entitlement_start=D(2027, 1, 1), billing_start=D(2027, 1, 1)
    )
    change = plan_change_for(
        annual, catalog_at, ChangeRequest(requested_on=D(2027, 3, 1), plan="pro-monthly"), 1
    )
    assert change.effective == D(2028, 1, 1)


def test_in_arrear_with_a_fixed_fee_and_tiered_usage() -> None:
    basic = Terms(
        id="sub1",
        plan="basic-monthly",
        entitlement_start=D(2027, 1, 1),
        billing_start=D(2027, 1, 1),
    )
    ledger = Ledger()
    calls = (
        UsageRecord("sub1", "api-calls", D(2027, 1, 3), 7_000),
        UsageRecord("sub1", "api-calls", D(2027, 1, 20), 5_500),
    )
    assert ledger.invoice(basic, D(2027, 1, 1), usage=calls) == [
        ("fixed", "2027-01-01..2027-01-02", "5.00")
    ]
    # 12,500 calls: 10 blocks of 1,000 at 1.00, then 2,500 -> 3 blocks at 0.50 = 11.50
    assert ledger.invoice(basic, D(2027, 2, 1), usage=calls) == [
        ("recurring", "2027-01-01..2027-02-01", "10.00"),
        ("usage", "2027-01-01..2027-02-01", "11.50"),
    ]
    late = (*calls, UsageRecord("sub1", "api-calls", D(2027, 1, 31), 1_000))
    # One more block at 0.50 once the late record arrives.
    assert ledger.invoice(basic, D(2027, 2, 2), usage=late) == [
        ("usage", "2027-01-01..2027-02-01", "0.50")
    ]


def test_a_wholesale_price_list_bills_the_reseller_price() -> None:
    assert Ledger().invoice(monthly(), D(2027, 1, 1), price_list="wholesale") == [
        ("recurring", "2027-01-01..2027-02-01", "24.80")
    ]


def test_assemble_spends_credit_and_banks_a_surplus() -> None:
    day = D(2027, 1, 1)
    span = Span(day, D(2027, 2, 1))
    charge = Item(kind=ItemKind.RECURRING, amount=usd("31.00"), span=span)
    repair = Item(kind=ItemKind.REPAIR, amount=usd("-40.00"), span=span)
    banked = assemble([charge, repair], credit=usd("0"), day=day)
    assert banked is not None
    assert (banked.total, banked.credit_after) == (usd("0"), usd("9.00"))
    assert banked.items[-1].kind is ItemKind.CREDIT_GENERATED
    spent = assemble([charge], credit=usd("9.00"), day=day)
    assert spent is not None
    assert (spent.total, spent.credit_after) == (usd("22.00"), usd("0"))
    assert assemble([], credit=usd("1.00"), day=day) is None


def test_a_repair_never_credits_more_than_an_adjustment_left_of_the_item() -> None:
    ledger = Ledger()
    ledger.invoice(monthly(), D(2027, 1, 1))
    # The tenant took 25.00 off January's 31.00: 6.00 is left of it.
    ledger.items.append(
        Item(
            kind=ItemKind.ADJUSTMENT,
            amount=usd("-25.00"),
            span=Span(D(2027, 1, 1), D(2027, 2, 1)),
            subscription_id="sub1",
            rate=ledger.items[0].rate,
            linked_to=ledger.items[0].id,
            id="adjustment",
        )
    )
    cancelled = monthly(cancellation=Cancellation(D(2027, 1, 21), D(2027, 1, 21)))
    # 11 unused days would be -11.00, but only 6.00 is left to credit.
    assert ledger.invoice(cancelled, D(2027, 1, 21)) == [
        ("repair", "2027-01-21..2027-02-01", "-6.00")
    ]
    assert ledger.invoice(cancelled, D(2027, 1, 21)) == []
