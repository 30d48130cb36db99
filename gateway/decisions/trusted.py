"""The proxies whose word on the original method is taken, checked once per address."""

from __future__ import annotations

import ipaddress

from gateway.settings import GatewaySettings


class TrustedProxies:
    def __init__(self, settings: GatewaySettings) -> None:
        self._networks = settings.trusted_proxies
        self._verdicts: dict[str, bool] = {}

    def __contains__(self, remote: object) -> bool:
        if not isinstance(remote, str):  # None: no peer address (a Unix socket)
            return False
        verdict = self._verdicts.get(remote)
        if verdict is None:
            try:
                address = ipaddress.ip_address(remote)
                verdict = any(address in network for network in self._networks)
            except ValueError:
                verdict = False
            if len(self._verdicts) < 10_000:
                self._verdicts[remote] = verdict
        return verdict
