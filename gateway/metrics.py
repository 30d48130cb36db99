"""Prometheus metrics of one gateway process, in the app's own registry."""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from gateway.store import EntitlementStore

LATENCY_BUCKETS = (
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0,
)  # fmt: skip


class GatewayMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.registry = registry
        self._decisions = Counter(
            "tollgate_gateway_decisions",
            "Decisions by endpoint, outcome (allow, deny, unauthorized, error) and reason.",
            ["endpoint", "outcome", "reason"],
            registry=registry,
        )
        self._latency = Histogram(
            "tollgate_gateway_request_seconds",
            "Time to decide, by endpoint.",
            ["endpoint"],
            buckets=LATENCY_BUCKETS,
            registry=registry,
        )
        self._children: dict[tuple[str, str, str], Counter] = {}
        self._timers: dict[str, Histogram] = {}

    def decided(self, endpoint: str, outcome: str, reason: str, seconds: float) -> None:
        labels = (endpoint, outcome, reason)
        child = self._children.get(labels)
        if child is None:
            child = self._children[labels] = self._decisions.labels(*labels)
        child.inc()
        timer = self._timers.get(endpoint)
        if timer is None:
            timer = self._timers[endpoint] = self._latency.labels(endpoint)
        timer.observe(seconds)

    def watch(self, store: EntitlementStore) -> None:
        self.registry.register(_StoreCollector(store))


class _StoreCollector(Collector):
    """Reads the store's own counters at scrape time: nothing is added to the hot path."""

    def __init__(self, store: EntitlementStore) -> None:
        self._store = store

    def collect(self) -> Iterator[Metric]:
        cache = self._store.cache
        hits = CounterMetricFamily(
            "tollgate_gateway_near_cache_hits", "Near-cache lookups served from memory."
        )
        hits.add_metric([], cache.hits)
        misses = CounterMetricFamily(
            "tollgate_gateway_near_cache_misses", "Near-cache lookups that went to Redis."
        )
        misses.add_metric([], cache.misses)
        size = GaugeMetricFamily("tollgate_gateway_near_cache_entries", "Entries held.")
        size.add_metric([], len(cache))
        trips = CounterMetricFamily(
            "tollgate_gateway_redis_round_trips", "Batched reads sent to Redis."
        )
        trips.add_metric([], self._store.batcher.round_trips)
        errors = CounterMetricFamily(
            "tollgate_gateway_redis_errors", "Reads that failed or timed out."
        )
        errors.add_metric([], self._store.live.redis_errors)
        yield from (hits, misses, size, trips, errors)
