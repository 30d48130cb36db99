"""What an evaluation publishes (``domain.publication``), case by case."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from billing_worker.domain.dunning import Dunning
from billing_worker.domain.publication import Access, Degrading, Publication, publish, while_charged
from billing_worker.domain.standing import StandingResult
from shared.states import Reason, SessionPolicy, Standing

NOW = datetime(2027, 3, 10, 9, 30, tzinfo=UTC)
#: A tenant's default: degraded is read-only, with every feature.
TENANT_DEFAULT = Degrading()
DAY = timedelta(days=1)
PRO = Access(plan="pro", features=("export", "reports", "sso"), seat_limit=5,
             session_policy=SessionPolicy.EVICT_OLDEST)  # fmt: skip
ADDON = Access(features=("archive",))


def result(
    standing: Standing,
    reason: str,
    access_until: datetime | None,
    next_change_at: datetime | None,
    **rest: object,
) -> StandingResult:
    return StandingResult(standing=standing, reason=reason, access_until=access_until,
                          next_change_at=next_change_at, **rest)  # type: ignore[arg-type]  # fmt: skip


GOOD = result(Standing.ACTIVE, Reason.IN_GOOD_STANDING, None, None)
#: Day 10 of grace: access until day 31, when the account is suspended.
GRACE = result(
    Standing.GRACE, Reason.PAYMENT_DUE, access_until=NOW + 21 * DAY, next_change_at=NOW + DAY,
    lapses_to=Standing.SUSPENDED,
)  # fmt: skip
DEGRADED = result(Standing.DEGRADED, Reason.PAYMENT_OVERDUE, NOW + 5 * DAY, NOW + DAY,
                          lapses_to=Standing.SUSPENDED)  # fmt: skip
SUSPENDED = result(Standing.SUSPENDED, Reason.PAYMENT_OVERDUE, None, NOW + 10 * DAY)
BY_HAND = result(Standing.SUSPENDED, Reason.SUSPENDED_MANUALLY, None, None)


def published(
    evaluated: StandingResult,
    access: Access = PRO,
    *,
    exempt: Access | None = None,
    degrading: Degrading = TENANT_DEFAULT,
    next_bill: datetime | None = None,
    next_summary: datetime | None = None,
) -> Publication:
    return publish(evaluated, access, exempt=exempt, degrading=degrading, next_bill=next_bill,
                   next_summary=next_summary, now=NOW)  # fmt: skip


def test_good_standing_holds_until_the_next_bill_without_a_time_bound() -> None:
    answer = published(GOOD, next_bill=NOW + 20 * DAY)
    assert (answer.standing, answer.reason) == (Standing.ACTIVE, Reason.IN_GOOD_STANDING)
    assert (answer.plan, answer.features, answer.seat_limit) == ("pro", PRO.features, 5)
    assert answer.session_policy is SessionPolicy.EVICT_OLDEST
    assert (answer.valid_until, answer.lapse_standing, answer.read_only) == (None, None, False)
    assert answer.next_evaluation_at == NOW + 20 * DAY


def test_grace_holds_until_suspension_and_says_what_it_lapses_to() -> None:
    answer = published(GRACE, next_bill=NOW + 20 * DAY)
    assert answer.valid_until == NOW + 21 * DAY  # a gateway cut off from the worker denies then
    assert (answer.lapse_standing, answer.lapse_reason) == (Standing.SUSPENDED,
                                                           Reason.PAYMENT_OVERDUE)  # fmt: skip
    assert answer.next_evaluation_at == NOW + DAY  # tomorrow's reminder comes first


def test_a_subscription_ending_first_bounds_the_answer_and_no_lapse_is_said() -> None:
    ending = Access(plan="pro", features=("sso",), ends_at=NOW + 3 * DAY,
                    next_change_at=NOW + 3 * DAY)  # fmt: skip
    answer = published(GRACE, ending)
    assert answer.valid_until == NOW + 3 * DAY
    assert (answer.lapse_standing, answer.lapse_reason) == (None, None)


def test_a_denied_standing_has_no_time_bound() -> None:
    answer = published(SUSPENDED)
    assert (answer.standing, answer.valid_until) == (Standing.SUSPENDED, None)
    assert answer.next_evaluation_at == NOW + 10 * DAY  # the cancellation rung


@pytest.mark.parametrize(
    ("degrading", "features", "read_only"),
    [
        (Degrading(), PRO.features, True),
        (Degrading(read_only=False), PRO.features, False),
        (Degrading(features=("export", "billing")), ("export",), True),
        (Degrading(features=()), (), True),
    ],
)
def test_a_degraded_account_keeps_what_the_policy_says(
    degrading: Degrading, features: tuple[str, ...], read_only: bool
) -> None:
    answer = published(DEGRADED, degrading=degrading)
    assert (answer.standing, answer.features, answer.read_only) == (
        Standing.DEGRADED, features, read_only)  # fmt: skip


def test_degrading_rules_leave_other_standings_alone() -> None:
    answer = published(GRACE, degrading=Degrading(features=(), read_only=True))
    assert (answer.features, answer.read_only) == (PRO.features, False)


def test_exempt_subscriptions_keep_their_access_through_a_suspension_for_non_payment() -> None:
    answer = published(SUSPENDED, exempt=ADDON)
    assert (answer.standing, answer.reason) == (Standing.ACTIVE, Reason.SUBSCRIPTION_EXEMPT)
    assert (answer.plan, answer.features) == (None, ("archive",))  # only what they grant
    assert answer.valid_until is None  # no dunning deadline: it is already past
    assert answer.next_evaluation_at == NOW + 10 * DAY  # the ladder still moves on


@pytest.mark.parametrize(
    ("evaluated", "exempt"),
    [
        (BY_HAND, ADDON),  # a suspension by hand suspends everything
        (SUSPENDED, Access()),  # an exempt subscription that grants nothing today
        (GOOD, ADDON),  # nothing to keep: the whole access is granted
    ],
)
def test_exempt_access_applies_only_to_a_suspension_for_non_payment(
    evaluated: StandingResult, exempt: Access
) -> None:
    answer = published(evaluated, exempt=exempt)
    assert (answer.standing, answer.reason) == (evaluated.standing, evaluated.reason)


def test_the_next_evaluation_is_the_earliest_moment_and_never_in_the_past() -> None:
    soon = Access(plan="pro", next_change_at=NOW + 2 * DAY)
    assert published(GOOD, soon, next_bill=NOW + 9 * DAY).next_evaluation_at == NOW + 2 * DAY
    summary = published(GOOD, next_bill=NOW + 9 * DAY, next_summary=NOW + 4 * DAY)
    assert summary.next_evaluation_at == NOW + 4 * DAY
    # a local billing day that began before now: due at once, never as of an earlier instant
    assert published(GOOD, next_bill=NOW - timedelta(hours=9)).next_evaluation_at == NOW
    assert published(GOOD, Access(plan="pro")).next_evaluation_at is None


def charged_today(days_past_due: int, standing: Standing = Standing.GRACE) -> StandingResult:
    ladder = Dunning(standing=standing, anchor=NOW, days_past_due=days_past_due, reminder=1,
                     retry=None, next_change_at=NOW + DAY)  # fmt: skip
    return result(standing, Reason.PAYMENT_DUE, NOW + 30 * DAY, NOW + DAY, dunning=ladder)


@pytest.mark.parametrize(
    ("evaluated", "collect_at", "standing"),
    [
        (charged_today(0), NOW, Standing.ACTIVE),  # charged as it falls due: still good
        (charged_today(0), None, Standing.GRACE),  # no card to charge: it is owed
        (charged_today(0), NOW - DAY, Standing.GRACE),  # the charge was yesterday's
        (charged_today(3), NOW, Standing.GRACE),  # a retry: already past due
    ],
)
def test_an_invoice_being_charged_as_it_falls_due_keeps_good_standing(
    evaluated: StandingResult, collect_at: datetime | None, standing: Standing
) -> None:
    assert while_charged(evaluated, collect_at, NOW).standing is standing
