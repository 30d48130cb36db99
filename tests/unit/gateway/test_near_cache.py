from gateway.view.cache import MISS, NearCache


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


def test_an_invalidation_of_another_key_does_not_stop_caching() -> None:
    """Session evictions are announced on every login: they must not empty the cache."""
    cache = NearCache(ttl=5, max_size=10)
    generation = cache.generation
    cache.invalidate("session:1")
    cache.put("account:a", "record", generation)
    assert cache.get("account:a") == "record"


def test_a_read_that_raced_a_clear_is_not_cached() -> None:
    cache = NearCache(ttl=5, max_size=10)
    generation = cache.generation
    cache.clear()  # the invalidation feed was re-established: anything may have changed
    cache.put("k", "stale", generation)
    assert cache.get("k") is MISS


def test_past_the_remembered_invalidations_reads_in_flight_are_refused() -> None:
    cache = NearCache(ttl=5, max_size=10)
    generation = cache.generation
    cache.invalidate("k")
    for n in range(5000):  # the memory of "k" is given up on the way
        cache.invalidate(f"other:{n}")
    cache.put("k", "stale", generation)
    assert cache.get("k") is MISS
    cache.put("k", "fresh", cache.generation)
    assert cache.get("k") == "fresh"
