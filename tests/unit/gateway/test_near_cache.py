from hypothesis import given, settings
from hypothesis import strategies as st

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


def test_a_snapshot_holds_until_a_source_is_announced_changed_or_grows_old() -> None:
    clock = FakeTime()
    cache = NearCache(ttl=5, max_size=10, clock=clock)
    for key in ("key", "user", "record", "other"):
        cache.put(key, key.upper(), cache.generation)
    clock.now = 1.0
    cache.put("user", "USER2", cache.generation)  # re-read later: the oldest source decides
    reads = [
        ("key", cache.get("key")),
        ("user", cache.get("user")),
        ("record", cache.get("record")),
    ]
    snapshot = cache.snapshot(reads)
    assert snapshot is not None
    assert snapshot.fresh_until == 5.0
    cache.invalidate("other")  # an announcement about something else
    assert cache.holds(snapshot)
    assert snapshot.generation == cache.generation
    clock.now = 4.9
    assert cache.holds(snapshot)
    clock.now = 5.0
    assert not cache.holds(snapshot)
    clock.now = 1.0
    cache.invalidate("record")
    assert not cache.holds(snapshot)


def test_no_snapshot_of_a_value_the_cache_does_not_hold() -> None:
    cache = NearCache(ttl=5, max_size=10)
    generation = cache.generation
    cache.invalidate("user")  # arrives while the read was in flight: not cached
    cache.put("user", "stale", generation)
    assert cache.snapshot([("user", "stale")]) is None
    cache.put("record", "R", cache.generation)
    assert cache.snapshot([("record", "another object")]) is None
    assert cache.snapshot([]) is None


@settings(max_examples=300)
@given(
    st.lists(
        st.one_of(
            st.tuples(st.just("put"), st.sampled_from("abcd")),
            st.tuples(st.just("invalidate"), st.sampled_from("abcd")),
            st.tuples(st.just("clear"), st.just("")),
            st.tuples(st.just("wait"), st.sampled_from("12")),
        ),
        max_size=12,
    )
)
def test_a_snapshot_never_outlives_an_announcement_or_its_staleness_bound(
    operations: list[tuple[str, str]],
) -> None:
    clock = FakeTime()
    cache = NearCache(ttl=5, max_size=3, clock=clock)  # small: puts evict
    for key in "abc":
        cache.put(key, object(), cache.generation)
    snapshot = cache.snapshot([(key, cache.get(key)) for key in "ab"])
    assert snapshot is not None
    announced = False
    for operation, key in operations:
        if operation == "put":
            cache.put(key, object(), cache.generation)
        elif operation == "invalidate":
            cache.invalidate(key)
            announced = announced or key in "ab"
        elif operation == "clear":
            cache.clear()
            announced = True
        else:
            clock.now += int(key)
        if cache.holds(snapshot):
            assert not announced
            assert clock.now < 5
