from gateway.cache import MISS, NearCache


class FakeTime:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_entries_expire_after_the_staleness_bound() -> None:
    clock = FakeTime()
    cache = NearCache(ttl=5, max_size=10, clock=clock)
    cache.put("k", "v", cache.generation)
    assert cache.get("k") == "v"
    clock.now = 5.0
    assert cache.get("k") is MISS


def test_invalidation_drops_the_entry() -> None:
    cache = NearCache(ttl=5, max_size=10)
    cache.put("k", None, cache.generation)  # a cached absence
    assert cache.get("k") is None
    cache.invalidate("k")
    assert cache.get("k") is MISS


def test_a_read_that_raced_an_invalidation_is_not_cached() -> None:
    cache = NearCache(ttl=5, max_size=10)
    generation = cache.generation
    cache.invalidate("k")  # arrives while the read was in flight
    cache.put("k", "stale", generation)
    assert cache.get("k") is MISS


def test_size_is_bounded_oldest_first() -> None:
    cache = NearCache(ttl=5, max_size=2)
    for key in ("a", "b", "c"):
        cache.put(key, key, cache.generation)
    assert len(cache) == 2
    assert cache.get("a") is MISS
    assert cache.get("c") == "c"


def test_disabled_cache_keeps_nothing() -> None:
    cache = NearCache(ttl=0, max_size=10)
    cache.put("k", "v", cache.generation)
    assert cache.get("k") is MISS


def test_checking_freshness_counts_no_hit_or_miss() -> None:
    clock = FakeTime()
    cache = NearCache(ttl=5, max_size=10, clock=clock)
    cache.put("k", "v", cache.generation)
    assert cache.is_fresh("k")
    assert not cache.is_fresh("other")
    clock.now = 5.0
    assert not cache.is_fresh("k")
    assert (cache.hits, cache.misses) == (0, 0)  # /metrics counts real lookups only
