"""The order in which a late worker processes an account's due moments."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from billing_worker.domain.moments import Member, next_in_family, next_moment

T = datetime(2027, 1, 31, tzinfo=UTC)
DAY = timedelta(days=1)


@pytest.mark.parametrize(
    ("billing", "dunning", "access", "expected"),
    [
        (None, None, None, None),
        (T + DAY, None, None, T + DAY),
        (T + DAY, T, T + 2 * DAY, T),
        (T, T, T + DAY, T),
        (None, None, T, T),
    ],
)
def test_the_next_moment_is_the_earliest(
    billing: datetime | None,
    dunning: datetime | None,
    access: datetime | None,
    expected: datetime | None,
) -> None:
    assert next_moment(billing=billing, dunning=dunning, access=access) == expected


NOW = T + 26 * DAY


@pytest.mark.parametrize(
    ("members", "expected"),
    [
        # nothing due before now
        ([Member(key="hq", due=NOW + DAY), Member(key="kid", due=None)], None),
        # the earliest due member goes first, as of its own moment
        ([Member(key="hq", due=T + 2 * DAY), Member(key="kid", due=T + DAY)], ("kid", T + DAY)),
        # a tie goes to the member listed first: the parent
        ([Member(key="hq", due=T), Member(key="kid", due=T)], ("hq", T)),
        # due (by a local date) before an instant it was processed at: that instant, never back
        ([Member(key="hq", due=T - DAY, processed=T)], ("hq", T)),
        # exactly now is still due
        ([Member(key="hq", due=NOW)], ("hq", NOW)),
    ],
)
def test_a_family_is_caught_up_one_instant_at_a_time(
    members: list[Member], expected: tuple[str, datetime] | None
) -> None:
    assert next_in_family(members, NOW) == expected
