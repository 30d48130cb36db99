"""Real time for what the outside world sees: when a moment's effects happen, when a moment
is late, and how a late charge spaces the retries after it. Amounts worked by hand."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hypothesis import given
from hypothesis import strategies as st

from billing_worker.domain.dunning import DunningPolicy, LastCharge, Rung, Unpaid, evaluate
from billing_worker.domain.moments import LATE_AFTER, RealTime, on_time
from shared.clock import ManualClock
from shared.money import Money
from shared.states import Standing

FEB_1 = datetime(2027, 2, 1, tzinfo=UTC)
DAY = timedelta(days=1)
POLICY = DunningPolicy(
    rungs=(Rung(standing=Standing.GRACE, days=0), Rung(standing=Standing.SUSPENDED, days=14)),
    retry_days=(1, 3, 7),
)


def owed(due: datetime) -> list[Unpaid]:
    return [Unpaid(invoice_id="inv_1", due_at=due, balance=Money.parse("31.00", "USD"))]


def test_a_moment_lived_awake_happens_at_its_instant_one_missed_happens_now() -> None:
    now = FEB_1 + 3 * DAY
    jumped = RealTime(now=now, awake_through=now)  # a test clock's jump
    down = RealTime(now=now, awake_through=FEB_1 - DAY)  # an outage since 31 January
    assert jumped.seen_at(FEB_1) == FEB_1
    assert not jumped.late(FEB_1)
    assert down.seen_at(FEB_1) == now
    assert down.late(FEB_1)
    # a restart or a renewal-day backlog is on time: recorded when done, but not late
    soon = FEB_1 + LATE_AFTER - timedelta(seconds=1)
    assert RealTime(now=soon).seen_at(FEB_1) == soon
    assert not RealTime(now=soon).late(FEB_1)
    assert RealTime(now=FEB_1 + LATE_AFTER + timedelta(seconds=1)).late(FEB_1)
    # nothing is ever dated before it happens, nor after now
    assert RealTime(now=FEB_1).seen_at(FEB_1 + DAY) == FEB_1 + DAY
    assert on_time(now).seen_at(FEB_1) == FEB_1


def test_the_manual_clock_tells_a_jump_from_an_outage() -> None:
    clock = ManualClock(FEB_1)
    clock.advance(2 * DAY)
    assert clock.awake_through() == FEB_1 + 2 * DAY
    clock.outage(3 * DAY)
    assert clock.now() == FEB_1 + 5 * DAY
    assert clock.awake_through() == FEB_1 + 2 * DAY


def test_retries_after_a_late_charge_keep_their_spacing_from_it() -> None:
    # Due 1 February, charged on time and declined; the worker is down from the 1st to the
    # 10th at 09:00 and makes the day-1 retry then (9 days 9 hours late). Retries 2 and 3
    # (days 3 and 7) move on as much: 12 February 09:00 and 16 February 09:00, not the 4th
    # and 8th, which would fire at once.
    made = FEB_1 + 9 * DAY + timedelta(hours=9)
    last = LastCharge(retry=1, at=made)
    at_once = evaluate(owed(FEB_1), POLICY, made, last_charge=last)
    assert at_once.retry == 1  # the retry just made: nothing new to charge
    assert at_once.next_change_at == FEB_1 + 10 * DAY  # the next reminder comes first
    before = evaluate(owed(FEB_1), POLICY, made + 2 * DAY - timedelta(seconds=1), last_charge=last)
    assert before.retry == 1
    second = evaluate(owed(FEB_1), POLICY, made + 2 * DAY, last_charge=last)
    assert second.retry == 2
    third = evaluate(owed(FEB_1), POLICY, made + 6 * DAY, last_charge=last)
    assert third.retry == 3
    # the ladder itself still counts from the due date the customer was told
    assert third.days_past_due == 15
    assert third.standing is Standing.SUSPENDED


def test_a_late_first_charge_moves_every_retry() -> None:
    # An invoice issued late, due 4 February 00:00, first charged at 06:00 that day.
    due = FEB_1 + 3 * DAY
    last = LastCharge(retry=0, at=due + timedelta(hours=6))
    found = evaluate(owed(due), POLICY, due + timedelta(hours=6), last_charge=last)
    assert found.retry is None
    first_retry = due + DAY + timedelta(hours=6)
    assert evaluate(owed(due), POLICY, first_retry, last_charge=last).retry == 1
    assert evaluate(owed(due), POLICY, first_retry - timedelta(seconds=1),
                    last_charge=last).retry is None  # fmt: skip


def test_an_earlier_timelines_charge_does_not_count_for_a_new_one() -> None:
    # The last late charge was retry 3 of an invoice paid since; a new invoice due on
    # 1 March starts its retries on schedule, its first retry on 2 March.
    march = datetime(2027, 3, 1, tzinfo=UTC)
    last = LastCharge(retry=3, at=FEB_1 + 10 * DAY)
    assert evaluate(owed(march), POLICY, march + DAY, last_charge=last).retry == 1


@given(
    late=st.timedeltas(min_value=timedelta(0), max_value=timedelta(days=20)),
    retry=st.integers(0, 3),
    probe=st.timedeltas(min_value=timedelta(0), max_value=timedelta(days=40)),
)
def test_no_retry_comes_sooner_after_the_last_charge_than_the_schedule_spaces_them(
    late: timedelta, retry: int, probe: timedelta
) -> None:
    days = (0, *POLICY.retry_days)
    made = FEB_1 + days[retry] * DAY + late
    last = LastCharge(retry=retry, at=made)
    now = made + probe
    found = evaluate(owed(FEB_1), POLICY, now, last_charge=last)
    if found.retry is not None and found.retry > retry:
        assert probe >= (days[found.retry] - days[retry]) * DAY
    else:
        assert found.retry == (retry or None)
