"""Webhook destinations: public addresses only, unless the operator allows a network."""

from __future__ import annotations

import ipaddress

import pytest

from billing_worker.notifications.destinations import Destinations


@pytest.mark.parametrize(
    "host",
    ["127.0.0.1", "10.0.0.7", "192.168.1.1", "172.16.0.1", "169.254.169.254", "::1",
     "[fd00::1]", "0.0.0.0", "localhost", "LOCALHOST.", "api.localhost"],
)  # fmt: skip
def test_private_and_local_hosts_are_refused(host: str) -> None:
    reason = Destinations().refusal(host)
    assert reason is not None
    assert "TOLLGATE_WEBHOOK_ALLOWED_NETWORKS" in reason


@pytest.mark.parametrize("host", ["93.184.216.34", "2606:4700::1111", "hooks.example.com", None])
def test_public_hosts_and_names_pass_where_entered(host: str | None) -> None:
    assert Destinations().refusal(host) is None  # names are checked again when sent to


def test_an_operator_may_allow_a_private_network() -> None:
    allowed = Destinations([ipaddress.ip_network("10.0.0.0/8")])
    assert allowed.refusal("10.1.2.3") is None
    assert allowed.refusal("192.168.0.1") is not None
    assert allowed.permits(ipaddress.ip_address("10.9.9.9"))
