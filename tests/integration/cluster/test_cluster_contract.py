"""On a Redis Cluster: the worker's versioned compare-and-set and its announcements,
as on one Redis."""

from tests.integration.gateway.test_redis_contract import (
    test_a_write_is_announced_on_the_invalidation_channel,
    test_reordered_writes_never_roll_the_record_back,
)

__all__ = [
    "test_a_write_is_announced_on_the_invalidation_channel",
    "test_reordered_writes_never_roll_the_record_back",
]
