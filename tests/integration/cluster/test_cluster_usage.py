"""On a Redis Cluster: usage counted by the gateways and folded into SQL, as on one Redis."""

from tests.integration.billing.test_usage import (
    test_logins_active_users_and_peak_sessions_are_billed_from_sql,
    test_usage_never_counts_backwards_when_redis_loses_the_days_counters,
)

__all__ = [
    "test_logins_active_users_and_peak_sessions_are_billed_from_sql",
    "test_usage_never_counts_backwards_when_redis_loses_the_days_counters",
]
