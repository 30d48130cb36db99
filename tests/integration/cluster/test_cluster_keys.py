"""On a Redis Cluster: gateway keys issued, rotated and revoked reach the gateway, as on one
Redis."""

from tests.integration.api.test_keys import (
    test_a_revoked_gateway_key_stops_working_on_the_gateway,
    test_admin_keys_rotate_but_the_last_one_cannot_be_revoked,
)

__all__ = [
    "test_a_revoked_gateway_key_stops_working_on_the_gateway",
    "test_admin_keys_rotate_but_the_last_one_cannot_be_revoked",
]
