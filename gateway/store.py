"""Reads the worker's published view (records, users, keys) through the near-cache."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import TypeVar

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from gateway.cache import MISS, NearCache
from shared import keys
from shared.credentials import KeyEntry, decode_key_entry
from shared.entitlement import (
    EntitlementRecord,
    RecordError,
    UserEntry,
    decode_record,
    decode_user,
)
from shared.pubsub import follow_channel

log = logging.getLogger(__name__)
T = TypeVar("T")


class StoreUnavailable(Exception):
    """Redis could not be reached in time."""


class EntitlementStore:
    def __init__(
        self, client: aioredis.Redis, cache: NearCache, *, subscriber: aioredis.Redis
    ) -> None:
        self._client = client
        #: A connection without the short read timeout, for the long-lived subscription.
        self._subscriber = subscriber
        self.cache = cache

    async def _read(self, key: str, decode: Callable[[bytes], T]) -> T | None:
        cached = self.cache.get(key)
        if cached is not MISS:
            return cached  # type: ignore[no-any-return]
        generation = self.cache.generation
        try:
            raw = await self._client.get(key)
        except (RedisError, OSError) as exc:
            raise StoreUnavailable(str(exc)) from exc
        value: T | None = None
        if isinstance(raw, bytes):
            try:
                value = decode(raw)
            except RecordError:
                log.error("store.undecodable key=%s", key)
        self.cache.put(key, value, generation)
        return value

    async def user(self, tenant_id: str, user_id: str) -> UserEntry | None:
        return await self._read(keys.user_key(tenant_id, user_id), decode_user)

    async def record(self, tenant_id: str, account_id: str) -> EntitlementRecord | None:
        return await self._read(keys.account_key(tenant_id, account_id), decode_record)

    async def api_key(self, key_id: str) -> KeyEntry | None:
        return await self._read(keys.api_key_key(key_id), decode_key_entry)

    async def ping(self) -> bool:
        try:
            return bool(await self._client.ping())
        except (RedisError, OSError):
            return False

    async def _forget_everything(self) -> None:
        self.cache.clear()

    async def follow_invalidations(self, stop: asyncio.Event) -> None:
        """Drop announced keys; after any gap in the subscription, drop everything."""
        await follow_channel(
            self._subscriber,
            keys.INVALIDATION_CHANNEL,
            on_message=lambda key: self.cache.invalidate(key.decode()),
            on_subscribed=self._forget_everything,
            stop=stop,
        )
