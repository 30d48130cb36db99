"""Everything the decision endpoints read, in one object the request path reaches directly.

The decision endpoints run below aiohttp's router (see :mod:`gateway.server`), where a
request has no ``request.app``; they are handed a :class:`Gate` instead, and reading its
attributes is cheaper than the application's mapping on every request anyway.
"""

from __future__ import annotations

from dataclasses import dataclass

from gateway.decisions.answers import Answers
from gateway.decisions.trusted import TrustedProxies
from gateway.decisions.verified import VerifiedSecrets
from gateway.logins.writeback import WriteBack
from gateway.metrics import GatewayMetrics
from gateway.settings import GatewaySettings
from gateway.view.refs import SessionRef
from gateway.view.store import EntitlementStore
from shared.clock import Clock

#: ``/v1/authorize`` answers (the bodies) by (Authorization header, raw body)
AuthorizeAnswers = Answers[tuple[str | None, bytes], bytes]
#: ``/v1/auth`` and Envoy allows (the upstream's headers, the session) by (Cookie header,
#: Authorization header, method, tenant scope, gateway key)
ProxyPasses = Answers[
    tuple[str | None, str | None, str, str | None, str | None],
    tuple[dict[str, str], SessionRef],
]


@dataclass(frozen=True, slots=True)
class Gate:
    settings: GatewaySettings
    store: EntitlementStore
    verified: VerifiedSecrets
    metrics: GatewayMetrics
    writeback: WriteBack
    clock: Clock
    trusted: TrustedProxies
    answers: AuthorizeAnswers
    passes: ProxyPasses
