"""Transactional outbox: Redis writes owed by a SQL transaction, written in that transaction.

Every function here only *stages rows* on the caller's session, inserted in one statement
when its transaction commits (a batch job stages one per account, and an ORM object each
was a large share of its cost); the publisher drains them after commit. A row carries the
whole encoded record and its version, so draining in any order, or twice, leaves Redis
with the newest record (the write is a compare-and-set).

A process whose publisher runs beside its sessions (``hand_off_to``) does not make a
small transaction's rows wait for that drain: at commit they are handed to the publisher
as they were written, and it publishes them at once, with no read of the table (a payment
reaches the gateways in about the time of one Redis call). The table keeps them until
then: a hand-off lost to a crash or a Redis error is drained like any other row.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime

from sqlalchemy import insert, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlalchemy.orm import Session

from billing_worker.db.models import Account, ApiKey, Base, OutboxEntry, User
from billing_worker.db.unit_of_work import Step, staged
from shared import keys
from shared.credentials import KeyEntry, KeyKind, encode_key_entry
from shared.entitlement import (
    EntitlementRecord,
    UserEntry,
    decode_record,
    encode_record,
    encode_user,
)
from shared.states import UserStatus

_HANDOFF = "outbox_handoff"
#: A transaction staging more rows than this (a batch job's) leaves them to the drain.
HANDOFF_ROWS = 64


@dataclass(frozen=True, slots=True)
class Written:
    """An outbox row as its transaction wrote it."""

    id: int
    redis_key: str
    version: int
    payload: bytes


def hand_off_to(
    sessions: async_sessionmaker[AsyncSession], receive: Callable[[list[Written]], None]
) -> None:
    """Every small transaction of ``sessions`` gives ``receive`` its rows once committed."""
    sessions.configure(info={_HANDOFF: receive})


def _stage(
    session: AsyncSession, tenant_id: str, key: str, version: int, payload: bytes, now: datetime
) -> None:
    staged(session, Step.OUTBOX, _Outbox).rows.append(
        {"tenant_id": tenant_id, "redis_key": key, "version": version, "payload": payload,
         "created_at": now}
    )  # fmt: skip


class _Outbox:
    """The rows a transaction stages, inserted when it commits."""

    def __init__(self) -> None:
        self.rows: list[dict[str, object]] = []
        self.written: list[Written] = []

    def write(self, session: Session) -> None:
        if not self.rows:
            return
        # Core, not the ORM's bulk insert: these rows are never objects of the session, and
        # the ORM's per-row bookkeeping cost more than the insert itself on a large batch.
        table, connection = Base.metadata.tables[OutboxEntry.__tablename__], session.connection()
        if _HANDOFF not in session.info or len(self.rows) > HANDOFF_ROWS:
            connection.execute(insert(table), self.rows)  # in staging order: ids follow it
            return
        written = insert(table).returning(table.c.id, sort_by_parameter_order=True)
        ids = connection.execute(written, self.rows).scalars().all()
        self.written = [
            Written(id, row["redis_key"], row["version"], row["payload"])  # type: ignore[arg-type]
            for id, row in zip(ids, self.rows, strict=True)
        ]

    def committed(self, session: Session) -> None:
        if self.written:
            session.info[_HANDOFF](self.written)


def stage_record(session: AsyncSession, record: EntitlementRecord, now: datetime) -> bytes:
    """Stage the record; returns it encoded, as published."""
    key = keys.account_key(record.tenant_id, record.account_id)
    payload = encode_record(record)
    _stage(session, record.tenant_id, key, record.version, payload, now)
    return payload


async def hold_access(session: AsyncSession, account: Account, now: datetime) -> None:
    """A parked account's billing waits for a person; its customers must not lose access
    for that. Its record is staged again without its time bound (``valid_until`` and what
    it lapses to), so gateways go on answering its last standing until it is released and
    evaluated again."""
    raw = await session.scalar(select(Account.ent_record).where(Account.id == account.id))
    if raw is None:
        return
    record = decode_record(raw)
    if record.valid_until is None:
        return
    account.ent_version += 1
    account.valid_until = None
    held = replace(record, version=account.ent_version, valid_until=None,
                   lapse_standing=None, lapse_reason=None)  # fmt: skip
    account.ent_record = stage_record(session, held, now)


def user_entry(user: User) -> UserEntry:
    return UserEntry(
        tenant_id=user.tenant_id,
        user_id=user.external_id,
        account_id=user.account_id,
        status=UserStatus(user.status),
        version=user.version,
    )


def stage_user(session: AsyncSession, user: User, now: datetime) -> None:
    key = keys.user_key(user.tenant_id, user.external_id)
    _stage(session, user.tenant_id, key, user.version, encode_user(user_entry(user)), now)


def key_entry(key: ApiKey) -> KeyEntry:
    return KeyEntry(
        key_id=key.id,
        tenant_id=key.tenant_id,
        kind=KeyKind(key.kind),
        secret_hash=key.secret_hash,
        revoked=key.revoked_at is not None,
        version=key.version,
    )


def stage_api_key(session: AsyncSession, key: ApiKey, now: datetime) -> None:
    """Gateway keys only: the gateway has no use for admin keys."""
    if key.kind != KeyKind.GATEWAY:
        return
    entry = encode_key_entry(key_entry(key))
    _stage(session, key.tenant_id, keys.api_key_key(key.id), key.version, entry, now)
