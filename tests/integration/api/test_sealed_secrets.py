"""Webhook secrets sealed at rest: values stored before a key are sealed at start, and a
rotated key still opens what the old one sealed."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

import pytest
from sqlalchemy import text

from billing_worker.db import sealed
from billing_worker.db.engine import create_engine, session_factory
from billing_worker.jobs.invoice_runs import resume_run, start_run
from shared.clock import ManualClock, SystemClock
from tests.integration.conftest import Stack


@pytest.fixture
def keyring() -> Iterator[None]:
    yield
    sealed.configure(None)


async def _raw(database_url: str) -> str:
    engine = create_engine(database_url)
    try:
        async with engine.connect() as connection:
            value = await connection.scalar(text("SELECT webhook_secret FROM tenants"))
            return str(value)
    finally:
        await engine.dispose()


async def test_existing_secrets_are_sealed_and_rotation_keeps_them_readable(
    database_url: str, keyring: None
) -> None:
    engine = create_engine(database_url)
    sessions = session_factory(engine)
    try:
        async with sessions() as session, session.begin():
            await session.execute(
                text(
                    "INSERT INTO tenants (id, name, grace_days, net_terms_days, "
                    "session_idle_seconds, fail_open_seconds, degraded_read_only, "
                    "draft_invoices, channel_overdue, webhook_secret, created_at) VALUES "
                    "('ten_1', 'Old', 30, 0, 1800, 0, true, false, 'follow', 'whsec_plain', "
                    "CURRENT_TIMESTAMP)"
                )
            )
        old, new = sealed.new_key(), sealed.new_key()
        sealed.configure(old)
        assert await sealed.seal_existing(sessions) == 1
        stored = await _raw(database_url)
        assert stored.startswith("sealed:v1:")
        assert "whsec_plain" not in stored
        assert await sealed.seal_existing(sessions) == 0  # already sealed with the first key

        sealed.configure(f"{new},{old}")  # rotation: the new key seals, the old still opens
        assert sealed.open_sealed(stored) == "whsec_plain"
        assert await sealed.seal_existing(sessions) == 1
        resealed = await _raw(database_url)
        assert resealed != stored
        sealed.configure(new)  # the old key retired
        assert sealed.open_sealed(resealed) == "whsec_plain"
        with pytest.raises(sealed.SealingError):
            sealed.open_sealed(stored)
    finally:
        await engine.dispose()


def test_a_malformed_key_is_refused_in_words(keyring: None) -> None:
    with pytest.raises(sealed.SealingError, match="tollgate secrets-key"):
        sealed.configure("not-a-key")


async def test_jobs_that_never_sign_never_need_the_key(
    stack: Stack, database_url: str, keyring: None
) -> None:
    """A `tollgate invoice-run` started without TOLLGATE_SECRETS_KEY bills as usual: the
    sealed secrets are loaded only where they are used (and a missing key is never a reason
    to park an account)."""
    tenant = await stack.new_tenant(notify_webhook_url="https://hooks.example.com/t")
    account = await stack.customer(tenant, "ann")
    sealed.configure(None)  # as in a process started without the key
    engine = create_engine(database_url)
    try:
        sessions = session_factory(engine)
        later = ManualClock(SystemClock().now() + timedelta(days=35))
        run = await start_run(sessions, later.now(), tenant_id=tenant.id)
        finished = await resume_run(sessions, later, run.id)
    finally:
        await engine.dispose()
    assert (finished.done, finished.invoices, finished.parked) == (1, 1, 0), account
