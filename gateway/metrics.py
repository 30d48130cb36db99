"""Prometheus metrics of one gateway process, in the app's own registry."""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Iterator
from itertools import accumulate
from typing import Any

from prometheus_client import CollectorRegistry
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector

from gateway.connections import GuardedServer
from gateway.decisions.answers import Answers
from gateway.view.store import EntitlementStore

LATENCY_BUCKETS = (
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0,
)  # fmt: skip


class GatewayMetrics:
    """Decisions and their latency, counted on the hot path in plain integers.

    prometheus-client's Counter and Histogram take a lock per update, which cost a tenth
    of the warm authorize path's throughput (measured); the counts are kept here and
    handed to prometheus-client as metric families at scrape time instead.
    """

    def __init__(self, registry: CollectorRegistry) -> None:
        self.registry = registry
        self._decisions: dict[tuple[str, str, str], int] = {}
        #: Per endpoint: a count per bucket (the last one is +Inf) and the sum of seconds.
        self._latency: dict[str, tuple[list[int], list[float]]] = {}
        registry.register(_DecisionCollector(self))

    def decided(self, endpoint: str, outcome: str, reason: str, seconds: float) -> None:
        labels = (endpoint, outcome, reason)
        self._decisions[labels] = self._decisions.get(labels, 0) + 1
        latency = self._latency.get(endpoint)
        if latency is None:
            latency = self._latency[endpoint] = ([0] * (len(LATENCY_BUCKETS) + 1), [0.0])
        latency[0][bisect_left(LATENCY_BUCKETS, seconds)] += 1
        latency[1][0] += seconds

    def watch(self, store: EntitlementStore) -> None:
        self.registry.register(_StoreCollector(store))

    def watch_answers(self, **memos: Answers[Any, Any]) -> None:
        self.registry.register(_AnswersCollector(memos))

    def watch_connections(self, server: GuardedServer) -> None:
        self.registry.register(_ConnectionsCollector(server))


class _DecisionCollector(Collector):
    def __init__(self, metrics: GatewayMetrics) -> None:
        self._metrics = metrics

    def collect(self) -> Iterator[Metric]:
        decisions = CounterMetricFamily(
            "tollgate_gateway_decisions",
            "Decisions by endpoint, outcome (allow, deny, unauthorized, error) and reason.",
            labels=["endpoint", "outcome", "reason"],
        )
        for labels, count in list(self._metrics._decisions.items()):
            decisions.add_metric(list(labels), count)
        latency = HistogramMetricFamily(
            "tollgate_gateway_request_seconds", "Time to decide, by endpoint.", labels=["endpoint"]
        )
        for endpoint, (counts, total) in list(self._metrics._latency.items()):
            bounds = [*(repr(bound) for bound in LATENCY_BUCKETS), "+Inf"]
            latency.add_metric(
                [endpoint], list(zip(bounds, accumulate(counts), strict=True)), total[0]
            )
        yield from (decisions, latency)


class _AnswersCollector(Collector):
    def __init__(self, memos: dict[str, Answers[Any, Any]]) -> None:
        self._memos = memos

    def collect(self) -> Iterator[Metric]:
        reused = CounterMetricFamily(
            "tollgate_gateway_answers_reused",
            "Answers handed out again, unchanged, while what they were decided from held.",
            labels=["endpoint"],
        )
        kept = GaugeMetricFamily(
            "tollgate_gateway_answers_kept", "Answers held for reuse.", labels=["endpoint"]
        )
        for endpoint, memo in self._memos.items():
            reused.add_metric([endpoint], memo.reused)
            kept.add_metric([endpoint], len(memo))
        yield from (reused, kept)


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


class _ConnectionsCollector(Collector):
    """Open connections and those refused, read from the server at scrape time."""

    def __init__(self, server: GuardedServer) -> None:
        self._server = server

    def collect(self) -> Iterator[Metric]:
        server = self._server
        open_now = GaugeMetricFamily(
            "tollgate_gateway_connections", "Connections open now.", labels=["limit"]
        )
        open_now.add_metric([str(server.limits.total)], len(server.connections))
        refused = CounterMetricFamily(
            "tollgate_gateway_connections_refused",
            "Connections closed for a limit: total, per_peer or slow_headers.",
            labels=["reason"],
        )
        for reason in ("total", "per_peer", "slow_headers"):
            refused.add_metric([reason], server.refusals.counts[reason])
        yield from (open_now, refused)
