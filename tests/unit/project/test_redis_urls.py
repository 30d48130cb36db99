"""``TOLLGATE_REDIS_URL`` names one server or a cluster's nodes."""

from __future__ import annotations

import pytest

from shared.redis_connection import RedisUrlError, cluster_nodes, is_cluster_url


def test_a_cluster_url_names_its_nodes_and_credentials() -> None:
    nodes, options = cluster_nodes("redis+cluster://app:s%40cret@10.0.0.1:7000,10.0.0.2:7001/0")
    assert nodes == [("10.0.0.1", 7000), ("10.0.0.2", 7001)]
    assert options == {"ssl": False, "username": "app", "password": "s@cret"}


def test_tls_ipv6_default_port_and_query_options() -> None:
    nodes, options = cluster_nodes("rediss+cluster://[::1]:7000,cache?ssl_cert_reqs=none")
    assert nodes == [("::1", 7000), ("cache", 6379)]
    assert options == {"ssl": True, "ssl_cert_reqs": "none"}


@pytest.mark.parametrize("url", ["redis+cluster://", "redis+cluster://a:b:c"])
def test_a_cluster_url_without_nodes_or_with_a_bad_port_is_refused(url: str) -> None:
    with pytest.raises(RedisUrlError):
        cluster_nodes(url)


def test_only_cluster_schemes_are_clusters() -> None:
    assert is_cluster_url("REDIS+CLUSTER://h:1")
    assert not is_cluster_url("redis://h:6379/0")
    assert not is_cluster_url("unix:///run/redis.sock")
