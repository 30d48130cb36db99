"""The requests an ``Idempotency-Key`` was given, as stored: found by tenant and key, forgotten
once out of their window, and given the answer they were made with."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import delete, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from billing_worker.db.models import IdempotentRequest


async def find(
    sessions: async_sessionmaker[AsyncSession], scope: str, key: str
) -> IdempotentRequest | None:
    async with sessions() as session:
        return await session.scalar(
            select(IdempotentRequest).where(
                IdempotentRequest.tenant_id == scope, IdempotentRequest.key == key
            )
        )


async def forget(
    sessions: async_sessionmaker[AsyncSession], scope: str, key: str, made_by: datetime
) -> None:
    """Forget the key if it was claimed by ``made_by`` (out of its window): it is free again."""
    async with sessions() as session, session.begin():
        await session.execute(
            delete(IdempotentRequest).where(
                IdempotentRequest.tenant_id == scope,
                IdempotentRequest.key == key,
                IdempotentRequest.created_at <= made_by,
            )
        )


async def keep_answer(
    sessions: async_sessionmaker[AsyncSession], scope: str, key: str, status: int, body: bytes
) -> None:
    async with sessions() as session, session.begin():
        await session.execute(
            update(IdempotentRequest)
            .where(IdempotentRequest.tenant_id == scope, IdempotentRequest.key == key)
            .values(status=status, response=body)
        )
