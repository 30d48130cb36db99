"""``python -m billing_worker``: the management API plus the background jobs."""

from __future__ import annotations

import asyncio
import os
import sys

from billing_worker.migrate import NotMigrated
from billing_worker.runtime.sole_worker import AnotherWorker
from billing_worker.settings import WorkerSettings
from billing_worker.worker import create_app
from shared.runtime import configure_logging, install_uvloop, serve


def main(*, jobs: bool = True, api: bool = True) -> None:
    """Serve the management API; with ``jobs`` (a worker) run the billing jobs too, without
    (``tollgate api``) leave them to the workers on the same database. Without ``api``
    (``tollgate worker --no-api``) run the jobs alone, with no port open."""
    configure_logging(os.environ.get("TOLLGATE_LOG_LEVEL", "INFO"))
    settings = WorkerSettings.from_env(os.environ)
    install_uvloop()
    try:
        app = create_app(settings, jobs=jobs)
        asyncio.run(serve(app, settings.api_host, settings.api_port, listen=api))
    except (NotMigrated, AnotherWorker) as exc:
        print(f"tollgate worker: {exc}", file=sys.stderr)
        sys.exit(2)


if __name__ == "__main__":
    main()
