"""How a request reaches its handler: the decision endpoints below the router.

``/v1/authorize``, ``/v1/auth`` and the Envoy prefix are asked on every login and every
proxied request. aiohttp's ``web.Application`` resolves every request through its router
(match info, the app stack, middleware checks) before the handler runs; for these three
that costs about as much as deciding. :class:`GatewayRunner` serves the application as
usual but puts :class:`Dispatch` in front of it, aiohttp's low-level server handler: a
decision request goes straight to its handler with the :class:`Gate`; every other request
(the login API, health, metrics, a 404 or 405) goes through the application's router
unchanged. The decision handlers are also on the router, so both ways give one answer.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from aiohttp import hdrs, web

from gateway.appkeys import GATE, METRICS
from gateway.connections import ConnectionLimits, GuardedServer, default_total
from gateway.decisions.authorize import answer
from gateway.decisions.gate import Gate
from gateway.decisions.proxy import check_envoy, check_session

Handler = Callable[[web.BaseRequest], Awaitable[web.StreamResponse]]
Decider = Callable[[Gate, web.BaseRequest], Awaitable[web.StreamResponse]]


class Dispatch:
    def __init__(self, app: web.Application, routed: Handler) -> None:
        self._gate = app[GATE]
        self._routed = routed
        self._direct: dict[tuple[str, str], Decider] = {
            ("POST", "/v1/authorize"): answer,
            ("GET", "/v1/auth"): check_session,
            ("HEAD", "/v1/auth"): check_session,
        }
        self._envoy = self._gate.settings.envoy_prefix
        self._below_envoy = self._envoy + "/"

    async def __call__(self, request: web.BaseRequest) -> web.StreamResponse:
        path = request.path
        decider = self._direct.get((request.method, path))
        if decider is None and (path == self._envoy or path.startswith(self._below_envoy)):
            decider = check_envoy
        if decider is None or hdrs.EXPECT in request.headers:
            # Expect: 100-continue is answered by the router's expect handler.
            return await self._routed(request)
        return await decider(self._gate, request)


class GatewayRunner(web.AppRunner):
    """An ``AppRunner`` whose server hands requests to :class:`Dispatch` first, and holds
    its connections to the settings' limits (:mod:`gateway.connections`)."""

    async def _make_server(self) -> web.Server:
        routed = await super()._make_server()  # starts the app: the Gate exists from here
        settings = self.app[GATE].settings
        limits = ConnectionLimits(
            total=settings.max_connections or default_total(),
            per_peer=settings.max_connections_per_peer,
            header_timeout=settings.header_timeout,
            idle_timeout=settings.idle_timeout,
            trusted=self.app[GATE].trusted,
        )
        # the same server as the application's, with what its handlers were to be given
        server = GuardedServer(
            Dispatch(self.app, routed.request_handler),
            request_factory=routed.request_factory,
            handler_cancellation=routed.handler_cancellation,
            loop=routed._loop,
            limits=limits,
            **{"keepalive_timeout": limits.idle_timeout, **routed._kwargs},
        )
        self.app[METRICS].watch_connections(server)
        return server
