"""The near-cache: decoded records held in process memory.

Entries are dropped when the worker announces a change on the invalidation channel,
and are never trusted longer than ``ttl`` seconds, so a lost announcement costs at
most ``ttl`` of staleness. The size is bounded; the oldest entries go first.

An entry past its ``ttl`` is no longer served as fresh, but stays as the *last known*
value (with its age) until evicted or invalidated: the fail policy may use it while
Redis is unreachable.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, Final

MISS: Final = object()
#: How many invalidated keys are remembered for reads in flight (a read lasts at most the
#: Redis timeout; past this many, every read in flight is refused instead).
_REMEMBERED_INVALIDATIONS = 4096


@dataclass(slots=True)
class Snapshot:
    """The entries something was derived from, to tell later whether they still hold."""

    #: (key, the cache's own entry object) for each value read
    sources: tuple[tuple[str, tuple[float, Any]], ...]
    #: The cache's generation when last seen unchanged
    generation: int
    #: When the oldest source stops being fresh (the cache's clock)
    fresh_until: float


class NearCache:
    def __init__(
        self, *, ttl: float, max_size: int, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._ttl = ttl
        self._max_size = max_size
        self._clock = clock
        self._entries: dict[str, tuple[float, Any]] = {}
        #: Bumped by every invalidation; a read that raced one of its key is not cached.
        self.generation = 0
        #: The generation at which each recently invalidated key was last invalidated.
        self._invalidated: dict[str, int] = {}
        #: Reads begun before this generation are not cached at all (after a clear).
        self._floor = 0
        self.hits = 0
        self.misses = 0

    @property
    def enabled(self) -> bool:
        return self._ttl > 0 and self._max_size > 0

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, key: str) -> Any:
        """The fresh cached value (``None`` is a cached absence), or :data:`MISS`."""
        entry = self._entries.get(key)
        if entry is None or self._clock() - entry[0] >= self._ttl:
            self.misses += 1
            return MISS
        self.hits += 1
        return entry[1]

    def is_fresh(self, key: str) -> bool:
        """Whether ``get`` would serve ``key`` from memory; counts nothing."""
        entry = self._entries.get(key)
        return entry is not None and self._clock() - entry[0] < self._ttl

    def last_known(self, key: str) -> tuple[Any, float]:
        """The last value read for ``key`` and its age in seconds, or (MISS, inf)."""
        entry = self._entries.get(key)
        if entry is None:
            return MISS, float("inf")
        return entry[1], self._clock() - entry[0]

    def put(self, key: str, value: Any, generation: int) -> None:
        """Cache ``value`` read when the cache was at ``generation``, unless ``key`` was
        invalidated (or everything cleared) since: the value may predate the change."""
        if not self.enabled or generation < self._floor:
            return
        if self._invalidated.get(key, -1) > generation:
            return
        if key not in self._entries and len(self._entries) >= self._max_size:
            del self._entries[next(iter(self._entries))]
        self._entries[key] = (self._clock(), value)

    def snapshot(self, reads: Iterable[tuple[str, Any]]) -> Snapshot | None:
        """The entries holding the values ``reads`` returned, or None when one of them
        is not what the cache holds now (a read the cache refused, or one since replaced)."""
        sources = []
        for key, value in reads:
            entry = self._entries.get(key)
            if entry is None or entry[1] is not value:
                return None
            sources.append((key, entry))
        if not sources:
            return None
        oldest = min(entry[0] for _, entry in sources)
        return Snapshot(tuple(sources), self.generation, oldest + self._ttl)

    def holds(self, snapshot: Snapshot) -> bool:
        """Whether every source is still the fresh entry for its key.

        No announcement since the snapshot was checked (the generation is unchanged) makes
        that one comparison; after any, each source is looked up once and the snapshot is
        stamped with the generation it held at. A source replaced with no announcement (evicted
        for size, then read again) is noticed by ``fresh_until``: within the TTL, as ever."""
        if self._clock() >= snapshot.fresh_until:
            return False
        if snapshot.generation != self.generation:
            entries = self._entries
            for key, entry in snapshot.sources:
                if entries.get(key) is not entry:
                    return False
            snapshot.generation = self.generation
        return True

    def invalidate(self, key: str) -> None:
        self.generation += 1
        self._entries.pop(key, None)
        if len(self._invalidated) >= _REMEMBERED_INVALIDATIONS:
            # Forget them, and refuse every read already in flight instead.
            self._invalidated.clear()
            self._floor = self.generation
        self._invalidated[key] = self.generation

    def clear(self) -> None:
        self.generation += 1
        self._floor = self.generation
        self._invalidated.clear()
        self._entries.clear()
