"""On a Redis Cluster: changes pushed to warm near-caches through pub/sub, as on one Redis."""

from tests.integration.gateway.test_invalidation import (
    gateway_env,
    test_a_denial_never_reads_an_allowing_standing,
    test_suspension_and_reinstatement_reach_a_warm_cache,
)

__all__ = [
    "gateway_env",
    "test_a_denial_never_reads_an_allowing_standing",
    "test_suspension_and_reinstatement_reach_a_warm_cache",
]
