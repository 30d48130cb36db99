"""The order in which a late worker processes an account's due moments."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from billing_worker.domain.moments import (
    SAME_INSTANT_LIMIT,
    CatchUp,
    Due,
    Moment,
    catch_up_step,
    next_moment,
)

T = datetime(2027, 1, 31, tzinfo=UTC)
DAY = timedelta(days=1)


@pytest.mark.parametrize(
    ("billing", "dunning", "access", "expected"),
    [
        (None, None, None, None),
        (T + DAY, None, None, Moment(at=T + DAY, due=frozenset({Due.BILLING}))),
        (T + DAY, T, T + 2 * DAY, Moment(at=T, due=frozenset({Due.DUNNING}))),
        # a billing day and a dunning stage on one instant are one moment, for both reasons
        (T, T, T + DAY, Moment(at=T, due=frozenset({Due.BILLING, Due.DUNNING}))),
        (None, None, T, Moment(at=T, due=frozenset({Due.ACCESS}))),
    ],
)
def test_the_next_moment_is_the_earliest_with_every_reason(
    billing: datetime | None,
    dunning: datetime | None,
    access: datetime | None,
    expected: Moment | None,
) -> None:
    assert next_moment(billing=billing, dunning=dunning, access=access) == expected


NOW = T + 26 * DAY


@pytest.mark.parametrize(
    ("following", "charge_pending", "repeats", "expected"),
    [
        # the next moment is before now: go there, as of then
        (T + DAY, False, 0, CatchUp(at=T + DAY, stop=None)),
        # exactly now is still due
        (NOW, False, 0, CatchUp(at=NOW, stop=None)),
        # after now, or never: caught up
        (NOW + DAY, False, 0, CatchUp(at=None, stop="caught_up")),
        (None, False, 0, CatchUp(at=None, stop="caught_up")),
        # a charge became due: its outcome decides the later moments, so stop for it
        (T + DAY, True, 0, CatchUp(at=None, stop="charge_pending")),
        # due again at the same instant (a hold asks for the day to be invoiced again),
        # or by a local date at an earlier one: the same instant once more, never back
        (T, False, 0, CatchUp(at=T, stop=None)),
        (T - DAY, False, 1, CatchUp(at=T, stop=None)),
        # a rule that never settles does not spin
        (T, False, SAME_INSTANT_LIMIT, CatchUp(at=None, stop="no_progress")),
    ],
)
def test_a_catch_up_step(
    following: datetime | None, charge_pending: bool, repeats: int, expected: CatchUp
) -> None:
    assert (
        catch_up_step(
            processed=T,
            following=following,
            now=NOW,
            charge_pending=charge_pending,
            repeats=repeats,
        )
        == expected
    )
