"""Transactional outbox: Redis writes owed by a SQL transaction, written in that transaction.

Every function here only *adds rows* to the caller's session; the publisher drains them
after commit. A row carries the whole encoded record and its version, so draining in any
order, or twice, leaves Redis with the newest record (the write is a compare-and-set).
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from billing_worker.db.models import ApiKey, OutboxEntry, User
from shared import keys
from shared.credentials import KeyEntry, KeyKind, encode_key_entry
from shared.entitlement import EntitlementRecord, UserEntry, encode_record, encode_user
from shared.states import UserStatus


def stage_record(session: AsyncSession, record: EntitlementRecord, now: datetime) -> None:
    session.add(
        OutboxEntry(
            tenant_id=record.tenant_id,
            redis_key=keys.account_key(record.tenant_id, record.account_id),
            version=record.version,
            payload=encode_record(record),
            created_at=now,
        )
    )


def user_entry(user: User) -> UserEntry:
    return UserEntry(
        tenant_id=user.tenant_id,
        user_id=user.external_id,
        account_id=user.account_id,
        status=UserStatus(user.status),
        version=user.version,
    )


def stage_user(session: AsyncSession, user: User, now: datetime) -> None:
    session.add(
        OutboxEntry(
            tenant_id=user.tenant_id,
            redis_key=keys.user_key(user.tenant_id, user.external_id),
            version=user.version,
            payload=encode_user(user_entry(user)),
            created_at=now,
        )
    )


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
    session.add(
        OutboxEntry(
            tenant_id=key.tenant_id,
            redis_key=keys.api_key_key(key.id),
            version=key.version,
            payload=encode_key_entry(key_entry(key)),
            created_at=now,
        )
    )
