"""Invoice runs: bill every due account of a tenant (or of all tenants) up to a day.

A run is a row in ``invoice_runs``. It walks the due bill-to accounts in id order, one
batch per transaction; the batch's invoices and the run's ``cursor`` (the last account id
done) commit together. A crash therefore loses at most the batch in flight, which rolled
back whole, and resuming continues after the cursor. Invoicing is itself idempotent, so
even an account billed twice over would gain nothing: the cursor only saves the work.
Each account is first caught up to now as the scheduler would (``catch_up_and_bill``), so a
run that gets to an account before the scheduler does changes nothing about its history.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from datetime import date, datetime, timedelta

from sqlalchemy import ColumnElement, and_, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from billing_worker.db.models import Account, InvoiceRun
from billing_worker.db.unit_of_work import defer_numbers
from billing_worker.domain.statuses import RunStatus
from billing_worker.ids import new_id
from billing_worker.jobs.catch_up import catch_up_and_bill, real_time
from billing_worker.publishing.outbox import hold_access
from billing_worker.runtime.loop import report
from billing_worker.runtime.parking import each_apart, park_account, transient
from shared.clock import Clock

Progress = Callable[[InvoiceRun], None]


def _due(run: InvoiceRun) -> ColumnElement[bool]:
    """Accounts the run covers: bill-to accounts whose next invoice falls by the target.

    Without a target each account bills up to its own local today; one day past UTC's
    today covers every time zone, and the invoicer stops at the account's local date.
    """
    last_day = run.target_date or (run.started_at + timedelta(days=1)).date()
    due = and_(
        Account.next_bill_on.is_not(None),
        Account.next_bill_on <= last_day,
        Account.parked_at.is_(None),
    )
    if run.tenant_id is not None:
        due = and_(due, Account.tenant_id == run.tenant_id)
    return due


async def start_run(
    sessions: async_sessionmaker[AsyncSession],
    now: datetime,
    *,
    tenant_id: str | None = None,
    target: date | None = None,
) -> InvoiceRun:
    """Create a run over the accounts due now (its ``total``); nothing is billed yet.

    One run at a time per tenant and day: when one is running already (started by a
    concurrent request, say), that run is returned instead of a second one.
    """
    scope = f"{tenant_id or '*'}:{target or now.date()}"
    try:
        async with sessions() as session, session.begin():
            run = InvoiceRun(
                id=new_id("run"),
                tenant_id=tenant_id,
                target_date=target,
                status=RunStatus.RUNNING,
                total=0,
                done=0,
                invoices=0,
                parked=0,
                cursor="",
                running_scope=scope,
                started_at=now,
            )
            run.total = await session.scalar(select(func.count()).where(_due(run))) or 0
            session.add(run)
        return run
    except IntegrityError:
        async with sessions() as session:
            running = await session.scalar(
                select(InvoiceRun).where(InvoiceRun.running_scope == scope)
            )
        if running is None:  # it finished in between: this one may start after all
            return await start_run(sessions, now, tenant_id=tenant_id, target=target)
        return running


async def unfinished(
    sessions: async_sessionmaker[AsyncSession],
    *,
    tenant_id: str | None = None,
    target: date | None = None,
    any_scope: bool = False,
) -> list[InvoiceRun]:
    """Runs a crash (or a stop) left running, oldest first; all of them with ``any_scope``."""
    query = select(InvoiceRun).where(InvoiceRun.status == RunStatus.RUNNING)
    if not any_scope:
        query = query.where(
            InvoiceRun.tenant_id.is_not_distinct_from(tenant_id),
            InvoiceRun.target_date.is_not_distinct_from(target),
        )
    async with sessions() as session:
        return list((await session.scalars(query.order_by(InvoiceRun.started_at))).all())


async def _batch(
    session: AsyncSession, run: InvoiceRun, clock: Clock, batch_size: int
) -> tuple[int, int]:
    accounts = (
        await session.scalars(
            select(Account)
            .where(_due(run), Account.id > run.cursor)
            .order_by(Account.id)
            .limit(batch_size)
            .with_for_update()
        )
    ).all()
    real = real_time(clock)
    invoices = await catch_up_and_bill(session, accounts, real.now, run.target_date, real=real)
    if accounts:
        run.cursor = accounts[-1].id
    return len(accounts), invoices


async def _locked(session: AsyncSession, run_id: str) -> InvoiceRun:
    run = await session.get(InvoiceRun, run_id, with_for_update=True)
    if run is None:
        raise LookupError(f"no invoice run {run_id}")
    return run


async def _batch_apart(
    sessions: async_sessionmaker[AsyncSession], clock: Clock, run_id: str, batch_size: int
) -> None:
    """Redo a batch that failed on its data one account per transaction: an account that
    fails alone is parked, counted on the run, and passed."""
    async with sessions() as session:
        run = await _locked(session, run_id)
        ids = list(
            (
                await session.scalars(
                    select(Account.id)
                    .where(_due(run), Account.id > run.cursor)
                    .order_by(Account.id)
                    .limit(batch_size)
                )
            ).all()
        )

    # Another driver of the run may pass these accounts while this one works through them
    # (the run's lock is taken per account here): an account behind the cursor is done.
    async def one(account_id: str) -> None:
        async with sessions() as session, session.begin():
            run = await _locked(session, run_id)
            if account_id <= run.cursor:
                return
            account = await session.get(Account, account_id, with_for_update=True)
            if account is not None:
                real = real_time(clock)
                run.invoices += await catch_up_and_bill(
                    session, [account], real.now, run.target_date, real=real
                )
            run.cursor, run.done = account_id, run.done + 1

    async def park(account_id: str, exc: Exception) -> None:
        async with sessions() as session, session.begin():
            run = await _locked(session, run_id)
            if account_id <= run.cursor:
                return
            run.cursor, run.done, run.parked = account_id, run.done + 1, run.parked + 1
        await park_account(sessions, account_id, "invoice_run", exc, clock.now(), hold=hold_access)

    await each_apart(ids, one, park)


async def resume_run(
    sessions: async_sessionmaker[AsyncSession],
    clock: Clock,
    run_id: str,
    *,
    batch_size: int = 200,
    progress: Progress | None = None,
    on_batch: Callable[[], None] | None = None,
    stop: asyncio.Event | None = None,
) -> InvoiceRun:
    """Drive a run from its cursor to the end (or until ``stop``, between batches);
    safe to call for a finished run.

    Each batch locks the run's row first, so two drivers of one run (the worker and a
    ``tollgate invoice-run`` started by hand) take turns rather than interleave.
    """
    while True:
        try:
            async with sessions() as session, session.begin():
                defer_numbers(session)  # the tenant's invoice counter is locked to commit only
                run = await _locked(session, run_id)
                if run.status == RunStatus.FINISHED:
                    return run
                count, invoices = await _batch(session, run, clock, batch_size)
                run.done += count
                run.invoices += invoices
                if count < batch_size:
                    run.status, run.running_scope = RunStatus.FINISHED, None
                    run.finished_at = clock.now()
                    run.total = max(run.total, run.done)
        except Exception as exc:
            if transient(exc):
                raise
            await _batch_apart(sessions, clock, run_id, batch_size)
            continue  # the next batch (or the end) from the advanced cursor
        if on_batch is not None and count:
            on_batch()
        if progress is not None:
            progress(run)
        if run.status == RunStatus.FINISHED or (stop is not None and stop.is_set()):
            return run


class InvoiceRunner:
    """The worker's job that drives runs: any left running at start, then each new one.

    A run created through the API sets ``wake``; without a wake the runner still looks
    every ``interval`` seconds, so a run created by another process is picked up too.
    """

    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        clock: Clock,
        *,
        interval: float,
        on_batch: Callable[[], None],
    ) -> None:
        self._sessions = sessions
        self._clock = clock
        self._interval = interval
        self._on_batch = on_batch
        self.wake = asyncio.Event()

    async def run(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            try:
                for pending in await unfinished(self._sessions, any_scope=True):
                    await resume_run(
                        self._sessions,
                        self._clock,
                        pending.id,
                        on_batch=self._on_batch,
                        stop=stop,
                    )
            except Exception as exc:
                report("invoice_run", exc)
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self._interval):
                    await self.wake.wait()  # the worker sets it on stop too
            self.wake.clear()
