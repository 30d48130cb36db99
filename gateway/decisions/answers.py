"""Answers kept as sent, while what they were decided from holds.

A warm decision reads the same near-cache entries again and again, and its answer is a
pure function of what the request said and of those entries (with whether the record's
``valid_until`` has passed). This memo keeps each answer under what the request said --
``/v1/authorize``: the Authorization header and the raw body; ``/v1/auth``: the Cookie
and Authorization headers, the method and the tenant scope -- so a warm answer costs one
lookup: nothing is parsed, read, decided or encoded again. An answer is handed out only while

- the near-cache still holds the very entries it was decided from
  (:meth:`NearCache.holds`): an announced change, a cleared cache or the oldest entry's
  TTL ends it, so an answer is never staler than the entries themselves may be;
- the decision clock is on the same side of the record's ``valid_until`` as it was.

Only answers to callers who proved who they are (a valid gateway key, a live session) are
kept, so nobody can fill the memo with noise, and it holds at most ``max_size``.
"""

from __future__ import annotations

from collections.abc import Hashable
from dataclasses import dataclass
from typing import Generic, TypeVar

from gateway.decisions.decision import Decision, lapse_span
from gateway.view.cache import NearCache, Snapshot

K = TypeVar("K", bound=Hashable)
T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Answer(Generic[T]):
    payload: T
    decision: Decision
    tenant_id: str
    user_id: str
    snapshot: Snapshot
    #: The decision-clock times in which the answer holds (``valid_until`` splits them).
    holds_from: float
    holds_until: float


class Answers(Generic[K, T]):
    def __init__(self, cache: NearCache, *, max_size: int = 65_536) -> None:
        self._cache = cache
        self._max_size = max_size
        self._answers: dict[K, Answer[T]] = {}
        #: Answers handed out again (a metric).
        self.reused = 0

    def get(self, key: K, now: float) -> Answer[T] | None:
        answer = self._answers.get(key)
        if answer is None:
            return None
        if answer.holds_from <= now < answer.holds_until and self._cache.holds(answer.snapshot):
            self.reused += 1
            return answer
        del self._answers[key]
        return None

    def keep(
        self,
        key: K,
        payload: T,
        decision: Decision,
        tenant_id: str,
        user_id: str,
        reads: list[tuple[str, object]],
        now: float,
    ) -> None:
        """Keep an answer decided at ``now`` from what ``reads`` returned, if the
        near-cache holds all of it (a value it refused to cache is not kept either)."""
        snapshot = self._cache.snapshot(reads)
        if snapshot is None:
            return
        if len(self._answers) >= self._max_size:
            self._answers.clear()  # start over: the warm ones come back on their next ask
        start, end = lapse_span(decision.record, now)
        self._answers[key] = Answer(payload, decision, tenant_id, user_id, snapshot, start, end)

    def __len__(self) -> int:
        return len(self._answers)
