"""The bounds on what one management request may do while its caller waits.

Every request bills within the settings' budget (``invoicing.budget``): a request that
would issue more is answered ``422 too_much_at_once`` with what to do, before anything is
written, and the work never holds the process (and every other tenant) for seconds. And
every request waits for the database at most ``TOLLGATE_REQUEST_SECONDS``
(``db.deadline``): past it, ``503 busy`` with ``Retry-After``, its transaction rolled back.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from aiohttp import web
from sqlalchemy.exc import DBAPIError

from billing_worker.db import deadline
from billing_worker.invoicing import budget
from billing_worker.services.errors import Busy, TooMuchAtOnceError

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def billing_budget(limit: budget.Budget) -> Callable[..., Awaitable[web.StreamResponse]]:
    """A middleware that holds each request's billing to ``limit``."""

    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        try:
            with budget.within(limit):
                return await handler(request)
        except budget.TooMuchAtOnce as exc:
            raise TooMuchAtOnceError(str(exc)) from exc

    return middleware


def time_limit(seconds: float) -> Callable[..., Awaitable[web.StreamResponse]]:
    """A middleware that gives each request ``seconds`` of waiting for the database."""

    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        try:
            with deadline.within(seconds):
                return await handler(request)
        except deadline.TooLong as exc:
            raise Busy(_waited(seconds)) from exc
        except DBAPIError as exc:
            if _sqlstate(exc) in deadline.TIMED_OUT_CODES:
                raise Busy(_waited(seconds)) from exc
            raise

    return middleware


def _waited(seconds: float) -> str:
    return (
        f"the request waited {seconds:g} s (TOLLGATE_REQUEST_SECONDS) for other transactions "
        "to finish; nothing was changed: try again"
    )


def _sqlstate(exc: DBAPIError) -> str | None:
    """PostgreSQL's error code for a driver error (asyncpg's, through SQLAlchemy)."""
    original = getattr(exc.orig, "__cause__", None) or exc.orig
    return getattr(original, "sqlstate", None) or getattr(exc.orig, "pgcode", None)
