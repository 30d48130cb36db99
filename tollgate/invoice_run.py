"""``tollgate invoice-run``: bill every due account now, with a progress bar.

A run a crash (or Ctrl-C) left unfinished is resumed rather than started afresh, so the
accounts it already billed are skipped; the entitlement changes it makes are published
to Redis as it goes, whether or not a worker is running.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from tqdm import tqdm

from billing_worker.db.models import InvoiceRun
from billing_worker.jobs.invoice_runs import resume_run, start_run, unfinished
from billing_worker.publishing.publisher import OutboxPublisher
from tollgate.storage import Storage


@dataclass(frozen=True, slots=True)
class RunOptions:
    tenant_id: str | None
    target: date | None
    batch_size: int = 200
    progress: bool = True


async def invoice_run(store: Storage, options: RunOptions) -> tuple[InvoiceRun, bool]:
    """Returns the finished run and whether it was resumed."""
    pending = await unfinished(store.sessions, tenant_id=options.tenant_id, target=options.target)
    resumed = bool(pending)
    run = (
        pending[0]
        if pending
        else await start_run(
            store.sessions, store.clock.now(), tenant_id=options.tenant_id, target=options.target
        )
    )
    if resumed:
        print(f"resuming {run.id}: {run.done:,} of {run.total:,} accounts already done")
    publisher = OutboxPublisher(store.sessions, store.redis)
    with tqdm(
        total=run.total, initial=run.done, unit="account", desc=run.id, disable=not options.progress
    ) as bar:

        def progress(now: InvoiceRun) -> None:
            bar.total = max(bar.total, now.total)
            bar.update(now.done - bar.n)
            bar.set_postfix(invoices=now.invoices)

        run = await resume_run(
            store.sessions, store.clock, run.id, batch_size=options.batch_size, progress=progress
        )
    await publisher.drain_all()
    return run, resumed
