"""The worker process: the management API and the billing jobs, composed.

This is the process root. It gives the HTTP application (``api.app.create_api``) its
resources, each one ``cleanup_ctx`` -- the database engine (migrated, secrets sealed), the
payment providers, the Redis client and the clock -- and, in a worker (``jobs``), runs every
job loop beside it, each loop living beside its job:

- ``jobs.rebuild.ViewWatch`` rebuilds the Redis view when it goes missing;
- ``publishing.publisher.OutboxPublisher`` drains the outbox into Redis;
- ``jobs.scheduler.run_due`` catches due accounts up (the scheduler);
- ``jobs.invoice_runs.InvoiceRunner`` works through invoice runs;
- ``invoicing.usage.UsageFolder`` folds the gateways' counters into billing;
- ``payments.payment_queue.drain`` applies queued payment events;
- ``payments.collector.Collector`` charges what is due and settles what is unsettled;
- ``notifications.notifier.Notifier`` delivers messages and webhooks.

``tollgate worker`` serves both; ``tollgate api`` the API alone; ``--no-api`` the jobs with no
port open.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
from collections.abc import AsyncIterator, Coroutine
from datetime import timedelta
from typing import Any

from aiohttp import web

from billing_worker.api.app import create_api
from billing_worker.api.http.appkeys import (
    CLOCK,
    INVOICE_RUNS_WAKE,
    OUTBOX_WAKE,
    PAYMENTS_WAKE,
    PROVIDERS,
    REDIS,
    SESSIONS,
    SETTINGS,
    TEST_CLOCK,
)
from billing_worker.db import sealed
from billing_worker.db.audit import job_context
from billing_worker.db.engine import create_engine, session_factory, sqlite_file
from billing_worker.invoicing.usage import UsageFolder
from billing_worker.jobs.invoice_runs import InvoiceRunner
from billing_worker.jobs.rebuild import ViewWatch
from billing_worker.jobs.scheduler import run_due
from billing_worker.migrate import NotMigrated, ensure_migrated
from billing_worker.notifications.destinations import Destinations
from billing_worker.notifications.notifier import Notifier
from billing_worker.payments.book import ProviderBook
from billing_worker.payments.collector import Collector
from billing_worker.payments.payment_queue import drain
from billing_worker.payments.providers import SandboxProvider
from billing_worker.publishing.outbox import hand_off_to
from billing_worker.publishing.publisher import OutboxPublisher
from billing_worker.runtime.loop import repeat
from billing_worker.runtime.sole_worker import sole_worker
from billing_worker.settings import WorkerSettings
from shared import redis_connection
from shared.clock import RedisTestClock, SystemClock

log = logging.getLogger(__name__)


def create_app(settings: WorkerSettings, *, jobs: bool = True) -> web.Application:
    """The management API with its resources; with ``jobs``, the billing jobs beside it."""
    sealed.configure(settings.secrets_key.reveal() if settings.secrets_key else None)
    app = create_api(settings)
    app[PROVIDERS] = ProviderBook((SandboxProvider(),), stripe_api_base=settings.stripe_api_base)
    app.cleanup_ctx.append(_database)
    app.cleanup_ctx.append(_providers)
    app.cleanup_ctx.append(_redis)
    app.cleanup_ctx.append(_clock)
    if jobs:
        app.cleanup_ctx.append(_sole_worker)
        app.cleanup_ctx.append(_jobs)
    return app


async def _database(app: web.Application) -> AsyncIterator[None]:
    engine = create_engine(app[SETTINGS].database_url)
    try:
        await ensure_migrated(engine)
    except NotMigrated:
        await engine.dispose()
        raise
    app[SESSIONS] = session_factory(engine)
    if app[SETTINGS].secrets_key is None:
        log.warning(
            "secrets.unsealed: webhook secrets are stored as they are; set "
            "TOLLGATE_SECRETS_KEY (make one with `tollgate secrets-key`) to seal them"
        )
    else:
        await sealed.seal_existing(app[SESSIONS])
    yield
    await engine.dispose()


async def _providers(app: web.Application) -> AsyncIterator[None]:
    yield
    await app[PROVIDERS].close()


async def _redis(app: web.Application) -> AsyncIterator[None]:
    client = redis_connection.connect(app[SETTINGS].redis_url)
    app[REDIS] = client
    yield
    await client.aclose()


async def _clock(app: web.Application) -> AsyncIterator[None]:
    if app[SETTINGS].test_mode:
        clock = RedisTestClock(app[REDIS])
        await clock.start()
        app[CLOCK] = clock
        app[TEST_CLOCK] = clock
        yield
        await clock.stop()
    else:
        app[CLOCK] = SystemClock()
        app[TEST_CLOCK] = None
        yield


async def _sole_worker(app: web.Application) -> AsyncIterator[None]:
    """On SQLite, this worker's jobs are the only ones (held until they have stopped)."""
    with sole_worker(sqlite_file(app[SETTINGS].database_url)):
        yield


async def _jobs(app: web.Application) -> AsyncIterator[None]:
    stop = asyncio.Event()
    sessions, clock, settings = app[SESSIONS], app[CLOCK], app[SETTINGS]
    publisher = OutboxPublisher(sessions, app[REDIS])
    publisher.wake = app[OUTBOX_WAKE]
    hand_off_to(sessions, publisher.hand_off)
    folder = UsageFolder(sessions, app[REDIS], clock, interval=settings.usage_fold_interval)
    runner = InvoiceRunner(
        sessions, clock, interval=settings.scheduler_interval * 5, on_batch=publisher.wake.set
    )
    runner.wake = app[INVOICE_RUNS_WAKE]
    providers = app[PROVIDERS]
    collector = Collector(
        sessions, providers, clock, interval=settings.scheduler_interval,
        reconcile_after=timedelta(seconds=settings.reconcile_after),
        provider_timeout=settings.provider_timeout,
        on_change=publisher.wake.set,
    )  # fmt: skip
    notifier = Notifier(
        sessions, clock, interval=settings.scheduler_interval,
        smtp_url=settings.smtp_url, mail_from=settings.mail_from,
        destinations=Destinations(settings.webhook_allowed_networks),
    )  # fmt: skip
    watch = ViewWatch(sessions, app[REDIS], clock)
    tasks = [
        _named(watch.run(stop), "view-watch"),
        _named(publisher.run(stop), "outbox-publisher"),
        _named(
            repeat(
                "scheduler",
                lambda: run_due(sessions, clock),
                stop,
                clock=clock,
                interval=settings.scheduler_interval,
                on_change=publisher.wake.set,
            ),
            "scheduler",
        ),
        _named(runner.run(stop), "invoice-runs"),
        _named(folder.run(stop), "usage-folder"),
        # webhooks wake it; events that wait (a refund before its charge) are retried
        _named(
            repeat(
                "payment_queue",
                lambda: drain(sessions, clock),
                stop,
                interval=settings.scheduler_interval * 5,
                wake=app[PAYMENTS_WAKE],
                on_change=publisher.wake.set,
            ),
            "payment-queue",
        ),
        _named(collector.run(stop), "collector"),
        _named(notifier.run(stop), "notifier"),
    ]
    yield
    # Let each job finish the transaction it is in; cancel only what does not stop in time.
    stop.set()
    watch.wake.set()
    publisher.wake.set()
    runner.wake.set()
    app[PAYMENTS_WAKE].set()
    notifier.wake.set()
    _done, pending = await asyncio.wait(tasks, timeout=settings.scheduler_interval + 5)
    for task in pending:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


def _named(coro: Coroutine[Any, Any, None], name: str) -> asyncio.Task[None]:
    task = asyncio.create_task(coro, name=name, context=job_context(name))
    task.add_done_callback(_stop_if_died)
    return task


def _stop_if_died(task: asyncio.Task[None]) -> None:
    """A worker whose job died must not live on half-working: stop it, gracefully, so that
    its supervisor (systemd, Kubernetes, ``tollgate up``) restarts it."""
    if not task.cancelled() and task.exception() is not None:
        log.critical("worker.job_died job=%s", task.get_name(), exc_info=task.exception())
        os.kill(os.getpid(), signal.SIGTERM)
