"""On a Redis Cluster: the nginx ``auth_request`` contract, as on one Redis."""

from tests.integration.gateway.test_nginx import (
    scene,
    test_upstream_sees_exactly_the_allowed_requests,
    test_with_the_gateway_stopped_the_proxy_refuses,
    upstream,
)

__all__ = [
    "scene",
    "test_upstream_sees_exactly_the_allowed_requests",
    "test_with_the_gateway_stopped_the_proxy_refuses",
    "upstream",
]
