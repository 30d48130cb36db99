"""The dunning ladder: the classic policy by hand, and 'nothing changes before
next_change_at' as a property, which is what keeps the worker from skipping a rung."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from billing_worker.domain.dunning import (
    DunningPolicy,
    PolicyError,
    Rung,
    Unpaid,
    classic_with,
    evaluate,
    policy_from_document,
    policy_problems,
)
from shared.money import Money
from shared.states import Standing

JAN_1 = datetime(2027, 1, 1, tzinfo=UTC)
DAY = timedelta(days=1)


def usd(text: str) -> Money:
    return Money.parse(text, "USD")


def owed(due: datetime, amount: str = "31.00", invoice: str = "inv_1") -> Unpaid:
    return Unpaid(invoice_id=invoice, due_at=due, balance=usd(amount))


def test_classic_policy_reminds_daily_retries_and_suspends_on_day_31() -> None:
    policy = DunningPolicy.classic()
    unpaid = [owed(JAN_1)]
    first = evaluate(unpaid, policy, JAN_1 + timedelta(hours=12))
    assert (first.standing, first.days_past_due, first.reminder, first.retry) == (
        Standing.GRACE, 0, 1, None,
    )  # fmt: skip
    assert first.next_change_at == JAN_1 + DAY  # reminder 2 and retry 1
    day_3 = evaluate(unpaid, policy, JAN_1 + 3 * DAY)
    assert (day_3.reminder, day_3.retry) == (4, 2)  # retries on days 1 and 3 have come
    day_30 = evaluate(unpaid, policy, JAN_1 + 30 * DAY - timedelta(seconds=1))
    assert day_30.standing is Standing.GRACE
    assert day_30.next_change_at == JAN_1 + 30 * DAY
    day_31 = evaluate(unpaid, policy, JAN_1 + 30 * DAY)  # 31 January, 00:00
    assert day_31.standing is Standing.SUSPENDED
    assert day_31.retry == 4  # the last retry was on day 14
    assert evaluate([], policy, JAN_1 + 40 * DAY).standing is Standing.ACTIVE


@given(grace_days=st.integers(min_value=0, max_value=3650))
def test_any_tenant_grace_period_makes_a_valid_policy(grace_days: int) -> None:
    """``grace_days`` 0 (allowed by the API) once made every account of the tenant a 500."""
    policy = classic_with(grace_days)
    unpaid = [owed(JAN_1)]
    at_due = evaluate(unpaid, policy, JAN_1)
    assert at_due.standing is (Standing.SUSPENDED if grace_days == 0 else Standing.GRACE)
    assert evaluate(unpaid, policy, JAN_1 + grace_days * DAY).standing is Standing.SUSPENDED


def test_a_partial_payment_moves_the_anchor_without_skipping_a_rung() -> None:
    policy = DunningPolicy(
        rungs=(
            Rung(standing=Standing.GRACE, days=0),
            Rung(standing=Standing.DEGRADED, days=15),
            Rung(standing=Standing.SUSPENDED, days=30),
        )
    )
    feb_1 = JAN_1 + 31 * DAY
    both = [owed(JAN_1, invoice="jan"), owed(feb_1, invoice="feb")]
    feb_10 = feb_1 + 9 * DAY
    assert evaluate(both, policy, feb_10).standing is Standing.SUSPENDED
    # January is paid: the timeline now runs from February's due date, 9 days ago.
    after = evaluate([both[1]], policy, feb_10)
    assert (after.standing, after.days_past_due) == (Standing.GRACE, 9)
    degraded_at = feb_1 + 15 * DAY
    moment = after.next_change_at
    while moment is not None and moment < degraded_at:
        moment = evaluate([both[1]], policy, moment).next_change_at
    assert moment == degraded_at
    assert evaluate([both[1]], policy, degraded_at).standing is Standing.DEGRADED


def test_rungs_can_require_a_balance_or_a_number_of_invoices() -> None:
    policy = DunningPolicy(
        rungs=(
            Rung(standing=Standing.GRACE, days=0),
            Rung(standing=Standing.SUSPENDED, days=10, min_balance=usd("100.00")),
        )
    )
    small = evaluate([owed(JAN_1, "31.00")], policy, JAN_1 + 20 * DAY)
    assert small.standing is Standing.GRACE
    large = evaluate(
        [owed(JAN_1, "31.00"), owed(JAN_1 + DAY, "80.00", "b")], policy, JAN_1 + 20 * DAY
    )
    assert large.standing is Standing.SUSPENDED


def test_a_hard_decline_stops_retries_and_can_jump_a_rung() -> None:
    policy = DunningPolicy(
        rungs=DunningPolicy.classic().rungs, hard_decline_standing=Standing.SUSPENDED
    )
    result = evaluate([owed(JAN_1)], policy, JAN_1 + 2 * DAY, hard_declined=True)
    assert (result.standing, result.retry) == (Standing.SUSPENDED, None)


@pytest.mark.parametrize(
    "rungs",
    [
        (Rung(standing=Standing.SUSPENDED, days=30), Rung(standing=Standing.GRACE, days=0)),
        (Rung(standing=Standing.ACTIVE, days=0),),
    ],
)
def test_policies_out_of_order_are_refused(rungs: tuple[Rung, ...]) -> None:
    with pytest.raises(PolicyError):
        DunningPolicy(rungs=rungs)


policies = st.builds(
    lambda days, every, retries: DunningPolicy(
        rungs=tuple(
            Rung(standing=s, days=d)
            for s, d in zip(
                (Standing.GRACE, Standing.DEGRADED, Standing.SUSPENDED, Standing.CANCELLED),
                sorted(set(days)),
                strict=False,
            )
        ),
        reminder_every_days=every,
        retry_days=tuple(sorted(set(retries))),
    ),
    st.lists(st.integers(0, 90), min_size=1, max_size=4),
    st.one_of(st.none(), st.integers(1, 7)),
    st.lists(st.integers(0, 30), max_size=4),
)
invoices = st.lists(
    st.tuples(st.integers(0, 60 * 24 * 60), st.integers(1, 10_000)), min_size=0, max_size=4
)


@settings(max_examples=200, deadline=None)
@given(policies, invoices, st.integers(0, 120 * 24 * 60), st.lists(st.floats(0, 1), max_size=5))
def test_nothing_changes_before_next_change_at(
    policy: DunningPolicy,
    bills: list[tuple[int, int]],
    start_minutes: int,
    fractions: list[float],
) -> None:
    unpaid = [
        Unpaid(
            invoice_id=f"i{n}",
            due_at=JAN_1 + timedelta(minutes=m),
            balance=Money.from_minor(c, "USD"),
        )
        for n, (m, c) in enumerate(bills)
    ]
    now = JAN_1 + timedelta(minutes=start_minutes)
    here = evaluate(unpaid, policy, now)
    if here.next_change_at is None:
        later = evaluate(unpaid, policy, now + 400 * DAY)
        assert (later.standing, later.retry) == (here.standing, here.retry)
        return
    assert here.next_change_at > now
    for fraction in fractions:
        moment = now + (here.next_change_at - now) * fraction
        if moment >= here.next_change_at:
            continue
        there = evaluate(unpaid, policy, moment)
        assert (there.standing, there.reminder, there.retry) == (
            here.standing, here.reminder, here.retry,
        )  # fmt: skip


def test_a_policys_minimum_is_given_per_currency_and_checked_in_each() -> None:
    stages = [{"standing": "suspended", "days_past_due": 30, "min_balance": "99.50"}]
    # one amount is enough while the tenant bills in one currency
    assert policy_problems({"stages": stages}, ["USD"]) == []
    # with several, one amount would be read as 99.50 of each: refused, by path
    [(field, why)] = policy_problems({"stages": stages}, ["JPY", "USD"])
    assert field == "stages[0].min_balance"
    assert "amount per currency" in why
    both = [{**stages[0], "min_balance": {"USD": "99.50", "JPY": "99.50"}}]
    [(field, why)] = policy_problems({"stages": both}, ["JPY", "USD"])
    assert field == "stages[0].min_balance"
    assert "JPY" in why  # yen have no minor unit
    missing = [{**stages[0], "min_balance": {"USD": "99.50"}}]
    assert policy_problems({"stages": missing}, ["JPY", "USD"]) == [
        ("stages[0].min_balance", "no amount for JPY")
    ]
    fine = [{**stages[0], "min_balance": {"USD": "99.50", "JPY": "10000"}}]
    assert policy_problems({"stages": fine}, ["JPY", "USD"]) == []
    yen = policy_from_document({"stages": fine}, "JPY")
    assert yen.rungs[0].min_balance == Money.parse("10000", "JPY")
