"""Where the worker may send a tenant's webhooks: public addresses only, by default.

A webhook address is chosen by a tenant, and the delivery log tells the tenant how each
attempt went: without a guard, a tenant could make the worker probe services on its own
network (server-side request forgery). So a destination must be a public address, unless
the operator allows listed networks (``TOLLGATE_WEBHOOK_ALLOWED_NETWORKS``, e.g. a private
ingress). The check is made where an address is entered (an IP literal, ``localhost``) and
again at send time on the address actually connected to: the resolver below filters what
DNS answers, so a name that resolves (or re-resolves) to a private address is refused too.
"""

from __future__ import annotations

import errno
import ipaddress
import socket
from collections.abc import Sequence
from typing import Any

from aiohttp.abc import AbstractResolver, ResolveResult
from aiohttp.resolver import DefaultResolver

from shared.settings import Network

Address = ipaddress.IPv4Address | ipaddress.IPv6Address
SETTING = "TOLLGATE_WEBHOOK_ALLOWED_NETWORKS"


class Destinations:
    def __init__(self, allowed: Sequence[Network] = ()) -> None:
        self._allowed = tuple(allowed)

    def permits(self, address: Address) -> bool:
        return address.is_global or any(address in network for network in self._allowed)

    def refusal(self, host: str | None) -> str | None:
        """Why a webhook host is refused where it is entered (an IP literal or a name that
        always means this machine), or None: other names are checked when sent to."""
        if not host:
            return None
        if host.lower().rstrip(".") == "localhost" or host.lower().endswith(".localhost"):
            address: Address = ipaddress.ip_address("127.0.0.1")
        else:
            try:
                address = ipaddress.ip_address(host.strip("[]"))
            except ValueError:
                return None
        if self.permits(address):
            return None
        return f"{host} is not a public address; the operator may allow it with {SETTING}"


class GuardedResolver(AbstractResolver):
    """DNS as usual, without the addresses ``Destinations`` does not permit."""

    def __init__(self, destinations: Destinations, inner: AbstractResolver | None = None) -> None:
        self._destinations = destinations
        self._inner = inner or DefaultResolver()

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        found = await self._inner.resolve(host, port, family)
        permitted = [
            entry for entry in found if self._destinations.permits(_address(entry["host"]))
        ]
        if not permitted:
            # (errno, text): aiohttp quotes the text in the error the delivery log shows
            raise OSError(errno.EACCES, f"{host} resolves to no public address; see {SETTING}")
        return permitted

    async def close(self) -> None:
        await self._inner.close()


def _address(text: Any) -> Address:
    return ipaddress.ip_address(str(text).split("%", 1)[0])
