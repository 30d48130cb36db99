"""Rebuilding the Redis view from SQL, the source of truth: by hand (``tollgate cache
rebuild``) or by the worker itself when it finds the view gone (``ViewWatch``: a FLUSHALL,
a Redis restarted without persistence).

Order matters to a gateway answering meanwhile: gateway keys first (without them every
call would be refused), then the accounts in large batches, each batch's users with it, so
an account's users become allowed together. Each account's last published record is
republished as stored (``Account.ent_record``), not recomputed: reading rows and
pipelining compare-and-sets is all a rebuild costs. An account without a stored record
(published before it was kept) is recomputed at the end.

The *view marker* (``keys.VIEW_KEY``) says the view is whole. A rebuild writes it last;
gateways report not ready (``/readyz``) and answer by the fail policy, never with a
refusal, while it is missing. The *building* key, set while a rebuild runs, keeps a second
worker from starting another, and tells the rebuild whether Redis lost its data again
meanwhile (the key would be gone): then it starts over.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import time
from collections.abc import Callable, Sequence
from typing import Any

import orjson
from redis.commands.core import AsyncScript
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from billing_worker.db.models import Account, ApiKey, Tenant, User
from billing_worker.domain.moments import RealTime
from billing_worker.jobs.catch_up import bring_up_to, real_time
from billing_worker.publishing.outbox import key_entry
from billing_worker.publishing.publisher import OutboxPublisher
from billing_worker.runtime.loop import repeat
from billing_worker.standing.entitlements import refresh_account
from shared import keys
from shared.clock import Clock
from shared.credentials import KeyKind, encode_key_entry
from shared.entitlement import UserEntry, encode_user
from shared.redis_connection import (
    RedisClient,
    ScriptCall,
    by_slot,
    run_script,
    scan_batches,
)
from shared.redis_scripts import CAS_MANY
from shared.states import UserStatus

log = logging.getLogger(__name__)

BATCH = 2000
Progress = Callable[[str, int], None]
#: A rebuild that has not finished after this long is presumed dead (its worker was).
BUILDING_SECONDS = 600


async def _delete_all(client: RedisClient) -> int:
    deleted = 0
    keep = {keys.CLOCK_KEY.encode(), keys.CLOCK_AWAKE_KEY.encode(), keys.VIEW_BUILDING_KEY.encode()}
    async for batch in scan_batches(client, keys.all_keys_pattern()):
        doomed = [k for k in batch if k not in keep]
        if doomed:
            deleted += int(await client.unlink(*doomed))
    return deleted


class _Writer:
    """Compare-and-sets of many records per call (``lua/cas_many.lua``), unannounced:
    gateways are told once, at the end, to forget everything they hold. One call spans
    keys of many accounts on a single Redis; on a cluster, a call per hash slot."""

    PER_CALL = 500

    def __init__(self, client: RedisClient) -> None:
        self._client = client
        self._cas: AsyncScript = client.register_script(CAS_MANY)

    async def prepare(self) -> None:
        await self._client.script_load(CAS_MANY)

    async def write(self, entries: Sequence[tuple[str, int, bytes]]) -> None:
        if not entries:
            return
        calls: list[ScriptCall] = []
        for group in by_slot(entries, lambda entry: entry[0], self._client):
            for start in range(0, len(group), self.PER_CALL):
                chunk = group[start : start + self.PER_CALL]
                arguments: list[bytes | int] = []
                for _key, version, payload in chunk:
                    arguments += (version, payload)
                calls.append(([key for key, _, _ in chunk], arguments))
        await run_script(self._client, CAS_MANY, self._cas.sha, calls)


async def rebuild(
    sessions: async_sessionmaker[AsyncSession],
    client: RedisClient,
    clock: Clock,
    *,
    clean: bool = False,
    progress: Progress | None = None,
) -> dict[str, int]:
    """Repopulate Redis from SQL and mark the view whole; with ``clean``, delete
    Tollgate's keys first (also those SQL no longer knows). Returns what it wrote."""
    report_progress = progress or (lambda _what, _n: None)
    # claimed before anything is deleted, so that the worker's watch leaves it to us
    await client.set(keys.VIEW_BUILDING_KEY, "starting", ex=BUILDING_SECONDS)
    deleted = await _delete_all(client) if clean else 0
    while True:
        token = secrets.token_hex(8)
        await client.set(keys.VIEW_BUILDING_KEY, token, ex=BUILDING_SECONDS)
        started = time.monotonic()
        writer = _Writer(client)
        await writer.prepare()
        counts = {"deleted": deleted, "keys": await _publish_keys(sessions, writer)}
        counts["accounts"], counts["users"], stale = await _publish_accounts(
            sessions, writer, report_progress
        )
        counts["recomputed"] = await _recompute(sessions, client, real_time(clock), stale)
        if await client.get(keys.VIEW_BUILDING_KEY) == token.encode():
            break
        log.warning("view.lost_during_rebuild: starting over")  # flushed meanwhile
    marker = {"rebuilt_at": clock.now().isoformat(), "accounts": counts["accounts"]}
    await client.set(keys.VIEW_KEY, orjson.dumps(marker))
    await client.delete(keys.VIEW_BUILDING_KEY)
    await client.publish(keys.INVALIDATION_CHANNEL, keys.FORGET_ALL)
    log.info(
        "view.rebuilt seconds=%.1f %s",
        time.monotonic() - started,
        " ".join(f"{k}={v}" for k, v in counts.items()),
    )
    return counts


async def _read(sessions: async_sessionmaker[AsyncSession], query: Any) -> Sequence[Any]:
    """Rows read without taking a write lock (SQLite's is the whole database's)."""
    async with sessions() as session:
        await session.connection(execution_options={"read_only": True})
        return (await session.execute(query)).all()


async def _publish_keys(sessions: async_sessionmaker[AsyncSession], writer: _Writer) -> int:
    rows = await _read(sessions, select(ApiKey).where(ApiKey.kind == KeyKind.GATEWAY.value))
    entries = [
        (keys.api_key_key(key.id), key.version, encode_key_entry(key_entry(key))) for (key,) in rows
    ]
    await writer.write(entries)
    return len(entries)


async def _publish_accounts(
    sessions: async_sessionmaker[AsyncSession], writer: _Writer, progress: Progress
) -> tuple[int, int, list[str]]:
    """Each batch of accounts with its users; returns the counts and the accounts that
    have no stored record."""
    accounts = users = 0
    stale: list[str] = []
    last = ""
    while True:
        rows = await _read(
            sessions,
            select(Account.id, Account.tenant_id, Account.ent_version, Account.ent_record)
            .where(Account.id > last)
            .order_by(Account.id)
            .limit(BATCH),
        )
        if not rows:
            return accounts, users, stale
        first, last = last, rows[-1].id
        members = await _read(  # the batch's users: a range of the account_id index
            sessions,
            select(User.tenant_id, User.external_id, User.account_id, User.status, User.version)
            .where(User.account_id > first, User.account_id <= last),
        )  # fmt: skip
        entries = [
            (keys.account_key(row.tenant_id, row.id), row.ent_version, row.ent_record)
            for row in rows
            if row.ent_record is not None
        ]
        stale += [row.id for row in rows if row.ent_record is None]
        entries += [
            (keys.user_key(u.tenant_id, u.external_id), u.version, encode_user(
                UserEntry(tenant_id=u.tenant_id, user_id=u.external_id, account_id=u.account_id,
                          status=UserStatus(u.status), version=u.version)))
            for u in members
        ]  # fmt: skip
        await writer.write(entries)
        accounts += len(rows)
        users += len(members)
        progress("accounts", accounts)


async def _recompute(
    sessions: async_sessionmaker[AsyncSession],
    client: RedisClient,
    real: RealTime,
    account_ids: list[str],
) -> int:
    """Evaluate and publish accounts that have no stored record, through the outbox."""
    publisher = OutboxPublisher(sessions, client)
    for start in range(0, len(account_ids), 500):
        async with sessions() as session, session.begin():
            accounts = (
                await session.scalars(
                    select(Account)
                    .where(Account.id.in_(account_ids[start : start + 500]))
                    .order_by(Account.id)
                    .with_for_update()
                )
            ).all()
            for account in accounts:
                tenant = await session.get(Tenant, account.tenant_id)
                if tenant is None:
                    continue
                await bring_up_to(session, account, real.now, real=real)
                await refresh_account(session, tenant, account, real.now)
        await publisher.drain_all()
    return len(account_ids)


class ViewWatch:
    """The worker's job that notices a lost view within ``interval`` and rebuilds it."""

    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        client: RedisClient,
        clock: Clock,
        *,
        interval: float = 1.0,
    ) -> None:
        self._sessions = sessions
        self._client = client
        self._clock = clock
        self._interval = interval
        #: Set on stop, so that the watch does not sleep through the worker's shutdown.
        self.wake = asyncio.Event()

    async def check(self) -> bool:
        """Rebuild if the view is missing and no rebuild is running; whether it rebuilt."""
        if await self._client.exists(keys.VIEW_KEY):
            return False
        if not await self._client.set(
            keys.VIEW_BUILDING_KEY, "starting", nx=True, ex=BUILDING_SECONDS
        ):
            return False  # another worker (or `tollgate cache rebuild`) is on it
        log.warning("view.missing: rebuilding the Redis view from SQL")
        await rebuild(self._sessions, self._client, self._clock)
        return True

    async def run(self, stop: asyncio.Event) -> None:
        await repeat("view_watch", self.check, stop, interval=self._interval, wake=self.wake)
