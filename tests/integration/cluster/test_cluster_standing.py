"""On a Redis Cluster: the standing loop (suspension on day 31, reinstatement, a flushed
view healing), as on one Redis."""

from tests.integration.dunning.test_standing_loop import (
    test_a_flushed_redis_heals_itself_and_a_rebuild_restores_it_too,
    test_unpaid_invoice_suspends_on_day_31_and_payment_reinstates,
)

__all__ = [
    "test_a_flushed_redis_heals_itself_and_a_rebuild_restores_it_too",
    "test_unpaid_invoice_suspends_on_day_31_and_payment_reinstates",
]
