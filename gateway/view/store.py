"""Reads the worker's published view (records, users, keys) and sessions.

Two readers share one interface. The live reader serves fresh near-cache entries and
sends misses through the batcher (one MGET per event-loop turn); it raises
:class:`StoreUnavailable` when Redis does not answer in time. The last-known reader
serves whatever the near-cache last read, however old, and remembers the oldest age it
served: the fail policy decides whether that age is acceptable.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Protocol, TypeVar

from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisError

from gateway.view.batcher import KeyBatcher
from gateway.view.cache import MISS, NearCache
from gateway.view.refs import SessionRef, StoreUnavailable
from shared import keys, redis_connection
from shared.credentials import KeyEntry, decode_key_entry
from shared.entitlement import (
    EntitlementRecord,
    RecordError,
    UserEntry,
    decode_record,
    decode_user,
)
from shared.pubsub import follow_channel
from shared.redis_connection import RedisClient
from shared.sessions import SessionEntry, decode_session

log = logging.getLogger(__name__)
T = TypeVar("T")
__all__ = [
    "EntitlementStore",
    "LastKnownReader",
    "LiveReader",
    "Reader",
    "RecordingReader",
    "StoreUnavailable",
]


def connect(url: str, timeout: float) -> RedisClient:
    """The gateway's Redis client: every call costs at most one ``timeout``.

    The retry policy is explicit because redis-py's default differs by constructor and
    version (``Redis()`` retries a timed-out call ten times, with backoff: seconds of
    waiting on the decision path before the fail policy answers). Here a broken connection
    (Redis restarted) is reconnected once, at once, and a timeout is not retried by the
    client: the reader asks once more itself (``LiveReader``).
    """
    return redis_connection.connect(
        url,
        socket_timeout=timeout,
        socket_connect_timeout=timeout,
        retry=Retry(NoBackoff(), 1, supported_errors=(RedisConnectionError,)),
    )


class Reader(Protocol):
    def prefetch(self, *keys: str) -> None: ...

    async def read(self, key: str, decode: Callable[[bytes], T]) -> T | None: ...


class LiveReader:
    def __init__(self, cache: NearCache, batcher: KeyBatcher) -> None:
        self._cache = cache
        self._batcher = batcher
        self.redis_errors = 0

    def prefetch(self, *keys: str) -> None:
        """Start reading keys that are not fresh in the cache, to share one round trip."""
        for key in keys:
            if not self._cache.is_fresh(key):
                self._batcher.get(key)

    async def read(self, key: str, decode: Callable[[bytes], T]) -> T | None:
        cached = self._cache.get(key)
        if cached is not MISS:
            return cached  # type: ignore[no-any-return]
        generation = self._cache.generation
        try:
            raw = await self._batcher.get(key)
        except (RedisError, OSError):
            # One late answer (a saturated CPU, a pause) is not yet an outage: ask once
            # more before answering by the fail policy. A Redis that is down fails fast
            # twice; a stalled one costs two timeouts.
            try:
                raw = await self._batcher.get(key)
            except (RedisError, OSError) as exc:
                self.redis_errors += 1
                raise StoreUnavailable(str(exc)) from exc
        value: T | None = None
        if raw is not None:
            try:
                value = decode(raw)
            except RecordError:
                log.error("store.undecodable key=%s", key)
        elif not await self._view_present():
            # Redis lost its data: an absent key says nothing until the view is rebuilt,
            # so the caller answers by the fail policy, not with a refusal.
            raise StoreUnavailable("the entitlement view is missing (being rebuilt)")
        self._cache.put(key, value, generation)
        return value

    async def _view_present(self) -> bool:
        """Read (never cached: it must be current) whether the view is whole."""
        try:
            return await self._batcher.get(keys.VIEW_KEY) is not None
        except (RedisError, OSError) as exc:
            self.redis_errors += 1
            raise StoreUnavailable(str(exc)) from exc


class RecordingReader:
    """A live reader that remembers what each read returned, for ``NearCache.snapshot``."""

    def __init__(self, live: LiveReader) -> None:
        self._live = live
        self.reads: list[tuple[str, object]] = []

    def prefetch(self, *keys: str) -> None:
        self._live.prefetch(*keys)

    async def read(self, key: str, decode: Callable[[bytes], T]) -> T | None:
        value = await self._live.read(key, decode)
        self.reads.append((key, value))
        return value


class LastKnownReader:
    def prefetch(self, *keys: str) -> None:
        """Nothing to fetch: last-known values are in memory."""

    def __init__(self, cache: NearCache) -> None:
        self._cache = cache
        #: The age of the oldest value served, in seconds (inf once anything was unknown).
        self.max_age = 0.0

    async def read(self, key: str, decode: Callable[[bytes], T]) -> T | None:
        value, age = self._cache.last_known(key)
        self.max_age = max(self.max_age, age)
        return None if value is MISS else value


async def read_user(reader: Reader, tenant_id: str, user_id: str) -> UserEntry | None:
    return await reader.read(keys.user_key(tenant_id, user_id), decode_user)


async def read_record(reader: Reader, tenant_id: str, account_id: str) -> EntitlementRecord | None:
    return await reader.read(keys.account_key(tenant_id, account_id), decode_record)


async def read_key(reader: Reader, key_id: str) -> KeyEntry | None:
    return await reader.read(keys.api_key_key(key_id), decode_key_entry)


async def read_session(reader: Reader, ref: SessionRef) -> SessionEntry | None:
    return await reader.read(ref.key, decode_session)


class EntitlementStore:
    def __init__(self, client: RedisClient, cache: NearCache, *, subscriber: RedisClient) -> None:
        self._client = client
        #: A connection without the short read timeout, for the long-lived subscription.
        self._subscriber = subscriber
        self.cache = cache
        self.batcher = KeyBatcher(client)
        self.live = LiveReader(cache, self.batcher)
        #: Called when the worker announces a rebuilt view (Redis had lost its data).
        self.on_rebuilt: list[Callable[[], None]] = []
        #: Called with each key the worker announces changed (after it is forgotten here).
        self.on_changed: list[Callable[[str], None]] = []

    def last_known(self) -> LastKnownReader:
        return LastKnownReader(self.cache)

    async def ping(self) -> bool:
        try:
            return bool(await self._client.ping())
        except (RedisError, OSError):
            return False

    async def view_present(self) -> bool:
        try:
            return bool(await self._client.exists(keys.VIEW_KEY))
        except (RedisError, OSError):
            return False

    def _announced(self, key: bytes) -> None:
        if key == keys.FORGET_ALL.encode():
            self.cache.clear()  # a rebuild: whatever was cached may predate it
            for callback in self.on_rebuilt:
                callback()
        else:
            name = key.decode()
            self.cache.invalidate(name)
            for changed in self.on_changed:
                changed(name)

    async def _forget_everything(self) -> None:
        """A gap in the subscription: announcements (a rebuild's too) may have been missed."""
        self.cache.clear()
        for callback in self.on_rebuilt:
            callback()

    async def follow_invalidations(self, stop: asyncio.Event) -> None:
        """Drop announced keys; after any gap in the subscription, drop everything."""
        await follow_channel(
            self._subscriber,
            keys.INVALIDATION_CHANNEL,
            on_message=self._announced,
            on_subscribed=self._forget_everything,
            stop=stop,
        )
