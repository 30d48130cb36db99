"""The unit of work (``db.unit_of_work``): what a transaction staged is written at its
commit in the documented order, told after the commit, and forgotten by a rollback."""

from __future__ import annotations

from datetime import UTC, datetime
from functools import partial

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from billing_worker.db.engine import create_engine, session_factory
from billing_worker.db.models import Tenant
from billing_worker.db.unit_of_work import Step, for_every_commit, staged

NOW = datetime(2026, 12, 7, 12, 0, tzinfo=UTC)


class Recorder:
    def __init__(self, log: list[str], name: str) -> None:
        self.log, self.name = log, name

    def write(self, session: Session) -> None:
        assert session.in_transaction()
        self.log.append(f"write {self.name}")

    def committed(self, session: Session) -> None:
        self.log.append(f"committed {self.name}")


class Request:
    def __init__(self, log: list[str]) -> None:
        self.log = log

    def flushed(self, session: Session) -> None:
        self.log.append("flushed " + ",".join(sorted(type(o).__name__ for o in session.new)))

    def committing(self, session: Session) -> None:
        self.log.append("request")


async def test_a_commit_writes_the_staged_work_in_order_then_tells_it(database_url: str) -> None:
    engine = create_engine(database_url)
    sessions = session_factory(engine)
    log: list[str] = []
    try:
        with for_every_commit(Request(log)):
            async with sessions() as session, session.begin():
                # staged out of order, written in the order of Step
                staged(session, Step.OUTBOX, partial(Recorder, log, "outbox"))
                staged(session, Step.HISTORY, partial(Recorder, log, "history"))
                staged(session, Step.MESSAGES, partial(Recorder, log, "messages"))
                again = staged(session, Step.HISTORY, partial(Recorder, log, "second"))
                assert again.name == "history"  # one staged work per step and transaction
                session.add(Tenant(id="tnt_uow", name="Unit of work", created_at=NOW))
        assert log == [
            "flushed Tenant",  # what the transaction changed is flushed first
            "write history",
            "write messages",
            "write outbox",
            "request",
            "committed history",
            "committed messages",
            "committed outbox",
        ]
    finally:
        await engine.dispose()


async def test_a_rollback_forgets_what_was_staged(database_url: str) -> None:
    engine = create_engine(database_url)
    sessions = session_factory(engine)
    log: list[str] = []
    try:
        async with sessions() as session:

            async def fail() -> None:
                async with session.begin():
                    staged(session, Step.OUTBOX, partial(Recorder, log, "lost"))
                    session.add(Tenant(id="tnt_lost", name="Lost", created_at=NOW))
                    raise RuntimeError("the request failed")

            with pytest.raises(RuntimeError):
                await fail()
            async with session.begin():  # the session's next transaction owes nothing of it
                staged(session, Step.HISTORY, partial(Recorder, log, "kept"))
            assert await session.scalar(select(Tenant.id).where(Tenant.id == "tnt_lost")) is None
        assert log == ["write kept", "committed kept"]
    finally:
        await engine.dispose()
