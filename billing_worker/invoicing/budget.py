"""How much billing one request may do while its caller waits.

A request that bills a long history at once — a daily plan back-dated ten years is 3,650
invoices — holds the API process for seconds (the computation and its writes run on the
event loop, and on SQLite the one writer's turn), and every other tenant's request waits
behind it. So a request runs under a budget: at most ``invoices`` invoices and ``items``
items issued by one invoicing. Past it the request is refused before anything is written,
with what to do; the worker's own jobs (the scheduler, invoice runs) have no budget and
catch any history up in their own time.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from contextvars import ContextVar
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Budget:
    invoices: int
    items: int


class TooMuchAtOnce(Exception):
    """One request would bill more than a request may."""

    def __init__(self, invoices: int, items: int, budget: Budget) -> None:
        super().__init__(
            f"this would issue {invoices:,} invoice(s) with {items:,} item(s) at once; one "
            f"request issues at most {budget.invoices:,} invoices and {budget.items:,} items "
            "(TOLLGATE_MAX_INVOICES_PER_REQUEST, TOLLGATE_MAX_ITEMS_PER_REQUEST). Bill less at "
            "once: start billing nearer today (billing_start; entitlement_start may stay "
            "earlier), or bill to an earlier target_date and then step forward. An account "
            "with a long history still to catch up is caught up by the worker in its own "
            "time: try again shortly"
        )
        self.invoices, self.items, self.budget = invoices, items, budget


_BUDGET: ContextVar[Budget | None] = ContextVar("billing_budget", default=None)


@contextlib.contextmanager
def within(budget: Budget | None) -> Iterator[None]:
    """Everything billed in this context is held to ``budget`` (None: to nothing, as the
    worker's jobs are)."""
    token = _BUDGET.set(budget)
    try:
        yield
    finally:
        _BUDGET.reset(token)


def check(invoices: int, items: int) -> None:
    """Raise ``TooMuchAtOnce`` when the context's budget does not cover this much."""
    budget = _BUDGET.get()
    if budget is not None and (invoices > budget.invoices or items > budget.items):
        raise TooMuchAtOnce(invoices, items, budget)
