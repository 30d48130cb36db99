"""How many connections the gateway holds, and for how long one may keep it waiting.

A client that opens connections and sends its headers a byte a second (slowloris) costs a
file descriptor each for as long as it likes; with the descriptors gone, every real
request is refused. So the gateway holds connections to three limits:

- **headers in time**: a request's headers must all arrive within ``header_timeout``
  seconds of the connection's start, or of the read that brought their first part
  (otherwise it is closed);
- **per peer**: one address holds at most ``per_peer`` connections, except the trusted
  proxies (an nginx in front keeps many on purpose);
- **in all**: at most ``total``, a margin below the process's file-descriptor limit, so
  Redis and the log always have descriptors left.

A connection over a limit is aborted at once, before anything is read from it; the first
refusal of each kind in a minute is logged and every one counted
(``tollgate_gateway_connections_refused_total{reason}``). An idle kept-alive connection is
closed after ``idle_timeout`` (aiohttp's keep-alive timeout).
"""

from __future__ import annotations

import asyncio
import logging
import resource
import time
from collections import Counter
from collections.abc import Container
from dataclasses import dataclass
from typing import Any, cast

from aiohttp import web
from aiohttp.web_protocol import RequestHandler

log = logging.getLogger(__name__)
#: Descriptors kept free below the limit: Redis connections, the log, a metrics scrape.
RESERVED_DESCRIPTORS = 64


@dataclass(frozen=True, kw_only=True, slots=True)
class ConnectionLimits:
    total: int
    per_peer: int
    header_timeout: float
    idle_timeout: float
    #: The trusted proxies' addresses (``decisions.trusted.TrustedProxies``).
    trusted: Container[object] = ()


def descriptor_limit() -> int:
    """Raise this process's open-file limit to its hard limit; the limit now in force."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY or hard > soft:
        wanted = hard if hard != resource.RLIM_INFINITY else max(soft, 65536)
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))
            soft = wanted
        except (ValueError, OSError):  # a container may forbid it: keep what we have
            pass
    return soft


def default_total() -> int:
    return max(16, descriptor_limit() - RESERVED_DESCRIPTORS)


class Refusals:
    """Connections refused, by reason; a log line for the first of each a minute."""

    def __init__(self) -> None:
        self.counts: Counter[str] = Counter()
        self._logged: dict[str, float] = {}

    def refused(self, reason: str, peer: str | None, limit: float) -> None:
        self.counts[reason] += 1
        now = time.monotonic()
        if now - self._logged.get(reason, -60.0) >= 60.0:
            self._logged[reason] = now
            log.warning(
                "gateway.connections_refused reason=%s peer=%s limit=%s refused_so_far=%d",
                reason, peer, limit, self.counts[reason],
            )  # fmt: skip


class GuardedHandler(RequestHandler):
    """aiohttp's connection handler, closed when a request's headers come too slowly."""

    def __init__(self, manager: GuardedServer, **kwargs: Any) -> None:
        super().__init__(manager, **kwargs)
        self._guard = manager
        self._headers_due: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        stream = cast(asyncio.Transport, transport)
        if not self._guard.admit(self, stream):
            stream.abort()  # nothing read or written: the descriptor is freed at once
            return
        super().connection_made(transport)
        self._arm()

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        # Most requests arrive whole in one read: no timer is made for them. Only headers
        # still incomplete after a read start the clock (or keep the first one's running).
        if self._messages or self._request_in_progress:  # its headers are in
            if self._headers_due is not None:
                self._disarm()
        elif self._headers_due is None:
            self._arm()

    def connection_lost(self, exc: BaseException | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def _arm(self) -> None:
        self._disarm()
        limits = self._guard.limits
        self._headers_due = self._loop.call_later(limits.header_timeout, self._too_slow)

    def _disarm(self) -> None:
        if self._headers_due is not None:
            self._headers_due.cancel()
            self._headers_due = None

    def _too_slow(self) -> None:
        self._headers_due = None
        if self._request_in_progress or self.transport is None:
            return
        transport = self.transport
        peer = transport.get_extra_info("peername")
        self._guard.refusals.refused(
            "slow_headers", peer[0] if peer else None, self._guard.limits.header_timeout
        )
        self.force_close()  # aiohttp's own close: the start task ends with it
        if not transport.is_closing():
            transport.close()


class GuardedServer(web.Server):
    """aiohttp's low-level server, holding its connections to :class:`ConnectionLimits`."""

    def __init__(self, *args: Any, limits: ConnectionLimits, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.limits = limits
        self.refusals = Refusals()
        self._peers: Counter[str] = Counter()
        self._peer_of: dict[RequestHandler, str] = {}

    def __call__(self) -> RequestHandler:
        return GuardedHandler(self, loop=self._loop, **self._kwargs)

    def admit(self, handler: RequestHandler, transport: asyncio.Transport) -> bool:
        """Count a new connection in, or refuse it (False) when it is over a limit."""
        peername = transport.get_extra_info("peername")
        peer = str(peername[0]) if peername else ""
        if len(self._peer_of) >= self.limits.total:
            self.refusals.refused("total", peer, self.limits.total)
            return False
        if self._peers[peer] >= self.limits.per_peer and peer not in self.limits.trusted:
            self.refusals.refused("per_peer", peer, self.limits.per_peer)
            return False
        self._peers[peer] += 1
        self._peer_of[handler] = peer
        return True

    def connection_lost(self, handler: RequestHandler, exc: BaseException | None = None) -> None:
        peer = self._peer_of.pop(handler, None)
        if peer is not None:
            self._peers[peer] -= 1
            if not self._peers[peer]:
                del self._peers[peer]
        super().connection_lost(handler, exc)
