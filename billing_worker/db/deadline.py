"""A time limit on what one management request waits for in the database.

A request's work is bounded (``invoicing.budget``); what is left unbounded is waiting: on
SQLite for the one writer's turn, on PostgreSQL for a row another transaction holds. A
request runs ``within`` its time limit, and a transaction begun inside it waits at most
what is left of it — for the turn on SQLite (before anything is written), or on
PostgreSQL through ``lock_timeout`` and ``statement_timeout`` set for that transaction —
then fails with ``TooLong`` (or PostgreSQL's own cancellation), which the API answers
``503`` with ``Retry-After``. Jobs run without a limit.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from contextvars import ContextVar

_DEADLINE: ContextVar[float | None] = ContextVar("request_deadline", default=None)
#: PostgreSQL error codes a time limit ends a statement with: query_canceled, lock timeout.
TIMED_OUT_CODES = frozenset({"57014", "55P03"})


class TooLong(Exception):
    """The request's time limit ran out while it waited for the database."""


@contextlib.contextmanager
def within(seconds: float | None) -> Iterator[None]:
    """What is done in this context waits at most ``seconds`` in all (None: no limit, as the
    worker's own jobs have none)."""
    token = _DEADLINE.set(None if seconds is None else time.monotonic() + seconds)
    try:
        yield
    finally:
        _DEADLINE.reset(token)


def remaining() -> float | None:
    """Seconds left to the deadline (never below a millisecond), or None without one."""
    deadline = _DEADLINE.get()
    return None if deadline is None else max(0.001, deadline - time.monotonic())
