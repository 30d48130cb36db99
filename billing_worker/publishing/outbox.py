"""Transactional outbox: Redis writes owed by a SQL transaction, written in that transaction.

Every function here only *stages rows* on the caller's session, inserted in one statement
when its transaction commits (a batch job stages one per account, and an ORM object each
was a large share of its cost); the publisher drains them after commit. A row carries the
whole encoded record and its version, so draining in any order, or twice, leaves Redis
with the newest record (the write is a compare-and-set).
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import event, insert
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session

from billing_worker.db.models import ApiKey, OutboxEntry, User
from shared import keys
from shared.credentials import KeyEntry, KeyKind, encode_key_entry
from shared.entitlement import EntitlementRecord, UserEntry, encode_record, encode_user
from shared.states import UserStatus

_PENDING = "pending_outbox"


def _stage(
    session: AsyncSession, tenant_id: str, key: str, version: int, payload: bytes, now: datetime
) -> None:
    pending: list[dict[str, object]] = session.info.setdefault(_PENDING, [])
    pending.append({"tenant_id": tenant_id, "redis_key": key, "version": version,
                    "payload": payload, "created_at": now})  # fmt: skip


@event.listens_for(Session, "before_commit")
def _write(session: Session) -> None:
    rows = session.info.pop(_PENDING, None)
    if rows:
        session.execute(insert(OutboxEntry), rows)  # in staging order: ids follow it


@event.listens_for(Session, "after_rollback")
def _forget(session: Session) -> None:
    session.info.pop(_PENDING, None)


def stage_record(session: AsyncSession, record: EntitlementRecord, now: datetime) -> bytes:
    """Stage the record; returns it encoded, as published."""
    key = keys.account_key(record.tenant_id, record.account_id)
    payload = encode_record(record)
    _stage(session, record.tenant_id, key, record.version, payload, now)
    return payload


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
