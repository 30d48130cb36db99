"""What an operator scraping /metrics sees after some decisions."""

from __future__ import annotations

from prometheus_client import CollectorRegistry
from prometheus_client.exposition import generate_latest
from prometheus_client.parser import text_string_to_metric_families

from gateway.metrics import GatewayMetrics


def scrape(metrics: GatewayMetrics) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    text = generate_latest(metrics.registry).decode()
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def test_decisions_are_counted_by_endpoint_outcome_and_reason() -> None:
    metrics = GatewayMetrics(CollectorRegistry(auto_describe=True))
    for _ in range(3):
        metrics.decided("authorize", "allow", "in_good_standing", 0.0002)
    metrics.decided("authorize", "deny", "suspended", 0.0002)
    samples = scrape(metrics)
    allow = (("endpoint", "authorize"), ("outcome", "allow"), ("reason", "in_good_standing"))
    deny = (("endpoint", "authorize"), ("outcome", "deny"), ("reason", "suspended"))
    assert samples["tollgate_gateway_decisions_total", allow] == 3
    assert samples["tollgate_gateway_decisions_total", deny] == 1


def test_latency_buckets_are_cumulative_and_bounds_inclusive() -> None:
    metrics = GatewayMetrics(CollectorRegistry(auto_describe=True))
    for seconds in (0.00005, 0.0005, 0.0005, 3.0):  # 0.0005 sits exactly on a bound
        metrics.decided("auth", "allow", "in_good_standing", seconds)
    samples = scrape(metrics)

    def bucket(le: str) -> float:
        return samples[
            "tollgate_gateway_request_seconds_bucket", (("endpoint", "auth"), ("le", le))
        ]

    assert bucket("0.0001") == 1
    assert bucket("0.00025") == 1
    assert bucket("0.0005") == 3
    assert bucket("1.0") == 3
    assert bucket("+Inf") == 4
    assert samples["tollgate_gateway_request_seconds_count", (("endpoint", "auth"),)] == 4
    assert (
        abs(samples["tollgate_gateway_request_seconds_sum", (("endpoint", "auth"),)] - 3.00105)
        < 1e-9
    )
