"""The standing loop across real `tollgate worker` and `tollgate gateway` processes, on a
Redis Cluster named by a ``redis+cluster://`` URL, as an operator would run them."""

from __future__ import annotations

import pytest

from tests.e2e.test_processes import http, test_standing_follows_billing_across_processes

pytestmark = pytest.mark.e2e
__all__ = ["http", "test_standing_follows_billing_across_processes"]


@pytest.fixture
def redis_url(cluster_url: str) -> str:
    return cluster_url
