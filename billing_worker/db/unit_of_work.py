"""What every commit of the worker does besides the changes its code makes, in one place.

The code of a transaction changes ORM objects and *stages* what else the transaction owes:
rows appended in one statement (the standing history, messages and their deliveries, the
outbox), numbers taken from a counter, a request's stored answer. This module is the only
one that hooks the life of the worker's sessions (``WorkerSession``, made by
``db.engine.session_factory``); what each hook does, in order:

1. **Before each flush** -- issued invoices take their numbers from the tenant's counter
   (``db.invoice_numbers``), so an answer shows them; a batch job defers that to its commit
   (``defer_numbers``), to hold the counter row for the commit only.
2. **After each flush** -- the audit rows and lifecycle events of what the flush created,
   changed or deleted (``db.audit``); then the request's own work (``for_every_commit``)
   notes what the request created.
3. **At commit** -- what is still unflushed is flushed, then the staged work is written in
   the order of ``Step``: the deferred invoice numbers, the standing history
   (``standing.history``), messages and their deliveries (``standing.messages``), the
   outbox rows (``publishing.outbox``); then the request's work adds its stored answer
   (``api.http.idempotency``). All of it in the transaction: committed together or not at all.
4. **After commit** -- each written part is told (the outbox hands its rows to the
   publisher running beside the sessions).
5. **After rollback** -- everything staged is forgotten.
"""

from __future__ import annotations

import contextvars
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from enum import IntEnum
from typing import Protocol, TypeVar

from sqlalchemy import event, insert
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session, UOWTransaction

from billing_worker.db import audit
from billing_worker.db.invoice_numbers import allocate, issued_among
from billing_worker.db.models import Base, Invoice

__all__ = [
    "AppendedRows",
    "Staged",
    "Step",
    "WorkerSession",
    "defer_numbers",
    "for_every_commit",
    "staged",
]


class WorkerSession(Session):
    """The worker's sessions: every commit does what this module's docstring lists."""


class Step(IntEnum):
    """Staged work, in the order a commit writes it."""

    NUMBERS = 1
    HISTORY = 2
    MESSAGES = 3
    OUTBOX = 4


class Staged(Protocol):
    """Work a transaction owes, written when it commits."""

    def write(self, session: Session) -> None:
        """Write it, in the committing transaction."""

    def committed(self, session: Session) -> None:
        """The transaction committed (most parts have nothing left to do)."""


class RequestWork(Protocol):
    """A request's part in every commit it makes (the Idempotency-Key's stored answer)."""

    def flushed(self, session: Session) -> None: ...

    def committing(self, session: Session) -> None: ...


S = TypeVar("S", bound=Staged)

_STAGED = "unit_of_work.staged"
_COMMITTING = "unit_of_work.committing"
_DEFER = "unit_of_work.defer_numbers"
_REQUEST: contextvars.ContextVar[RequestWork | None] = contextvars.ContextVar(
    "request_work", default=None
)


def staged(session: AsyncSession | Session, step: Step, make: Callable[[], S]) -> S:
    """The transaction's staged work of ``step``, made with ``make`` on first use."""
    work: dict[Step, Staged] = session.info.setdefault(_STAGED, {})
    found = work.get(step)
    if found is None:
        found = work[step] = make()
    return found  # type: ignore[return-value]  # one kind of work per step


def defer_numbers(session: AsyncSession) -> None:
    """Number the invoices this session issues just before it commits (batch jobs): the
    tenant's counter row is then locked while the transaction commits, not while the batch
    is computed. Within a transaction, invoices are numbered in the order they were issued."""
    session.info[_DEFER] = True


@contextmanager
def for_every_commit(work: RequestWork) -> Iterator[None]:
    """Every commit made in this context (a request) also does ``work``."""
    token = _REQUEST.set(work)
    try:
        yield
    finally:
        _REQUEST.reset(token)


class AppendedRows:
    """Rows appended to one table, inserted in one statement at commit: rows nothing reads
    back in their transaction, many per batch job, for which an ORM object each would cost
    more than the insert."""

    def __init__(self, model: type[Base]) -> None:
        self.model, self.rows = model, list[dict[str, object]]()

    def append(self, row: dict[str, object]) -> None:
        self.rows.append(row)

    def write(self, session: Session) -> None:
        if self.rows:
            session.execute(insert(self.model), self.rows)

    def committed(self, session: Session) -> None:
        pass


class _DeferredNumbers:
    def __init__(self) -> None:
        self.invoices: dict[str, Invoice] = {}

    def write(self, session: Session) -> None:
        allocate(session, issued_among(self.invoices.values()))

    def committed(self, session: Session) -> None:
        pass


@event.listens_for(WorkerSession, "before_flush")
def _before_flush(session: Session, _flush: UOWTransaction, _instances: object) -> None:
    issued = issued_among((*session.new, *session.dirty))
    if not issued:
        return
    if session.info.get(_DEFER):
        deferred = staged(session, Step.NUMBERS, _DeferredNumbers)
        deferred.invoices.update({invoice.id: invoice for invoice in issued})
    else:
        allocate(session, issued)


@event.listens_for(WorkerSession, "after_flush")
def _after_flush(session: Session, _flush: UOWTransaction) -> None:
    audit.record_flush(session)
    request = _REQUEST.get()
    if request is not None:
        request.flushed(session)


@event.listens_for(WorkerSession, "before_commit")
def _before_commit(session: Session) -> None:
    if session.new or session.dirty or session.deleted:
        session.flush()  # what the transaction changed is changed (and numbered) by now
    work: dict[Step, Staged] = session.info.pop(_STAGED, {})
    for step in sorted(work):
        work[step].write(session)
    session.info[_COMMITTING] = [work[step] for step in sorted(work)]
    request = _REQUEST.get()
    if request is not None:
        request.committing(session)


@event.listens_for(WorkerSession, "after_commit")
def _after_commit(session: Session) -> None:
    session.info.pop(_DEFER, None)
    for work in session.info.pop(_COMMITTING, ()):
        work.committed(session)


@event.listens_for(WorkerSession, "after_rollback")
def _after_rollback(session: Session) -> None:
    session.info.pop(_STAGED, None)
    session.info.pop(_COMMITTING, None)
