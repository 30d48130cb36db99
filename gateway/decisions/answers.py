"""Encoded ``/v1/authorize`` answers, kept while what they were decided from is unchanged.

A warm decision reads the same near-cache entries -- the same objects -- again and again,
and its answer is a pure function of the user id, the feature asked, the user entry, the
account record and whether the record's ``valid_until`` has passed. This memo keeps the
encoded body per (tenant, user, feature) with the entries it was decided from, and hands
it out only while the near-cache returns those very objects: a republished record, a user
disabled, the near-cache's TTL running out (the next read makes a new object) or
``valid_until`` passing each decide afresh.
"""

from __future__ import annotations

from dataclasses import dataclass

from gateway.decisions.decision import Decision, lapsed
from shared.entitlement import EntitlementRecord, UserEntry

Key = tuple[str, str, str | None]


@dataclass(frozen=True, slots=True)
class Answer:
    user: UserEntry | None
    record: EntitlementRecord | None
    lapsed: bool
    decision: Decision
    body: bytes


class Answers:
    def __init__(self, *, max_size: int = 65_536) -> None:
        self._max_size = max_size
        self._answers: dict[Key, Answer] = {}

    def get(
        self, key: Key, user: UserEntry | None, record: EntitlementRecord | None, now: float
    ) -> Answer | None:
        answer = self._answers.get(key)
        if (
            answer is None
            or answer.user is not user
            or answer.record is not record
            or answer.lapsed != lapsed(record, now)
        ):
            return None
        return answer

    def put(self, key: Key, answer: Answer) -> None:
        if len(self._answers) >= self._max_size:
            self._answers.clear()  # start over: the warm ones come back on their next ask
        self._answers[key] = answer

    def __len__(self) -> int:
        return len(self._answers)
