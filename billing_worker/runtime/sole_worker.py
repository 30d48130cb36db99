"""One worker per SQLite database: SQLite has a single writer, and the worker's jobs assume
they are the only ones claiming work there (PostgreSQL shares it with row locks).

The worker holds an exclusive ``flock`` on a file beside the database for as long as it
runs; a second worker on the same database is refused at start with what to do instead.
The lock is the kernel's, so a worker that dies releases it with its process.
"""

from __future__ import annotations

import contextlib
import fcntl
from collections.abc import Iterator
from pathlib import Path


class AnotherWorker(RuntimeError):
    """A worker already runs on this SQLite database."""


@contextlib.contextmanager
def sole_worker(database: Path | None) -> Iterator[None]:
    """Hold the worker lock of ``database`` (no lock for a database that is not a file)."""
    if database is None:
        yield
        return
    path = database.with_name(database.name + ".worker-lock")
    with path.open("a") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError as exc:
            raise AnotherWorker(
                f"another Tollgate worker is running on {database}: SQLite has one writer, so "
                "one worker runs per SQLite database. Stop the other one, or use PostgreSQL "
                "(TOLLGATE_DATABASE_URL=postgresql://...) to run several."
            ) from exc
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)
