"""The gateway's settings, read once from ``TOLLGATE_*`` variables."""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from dataclasses import dataclass

from shared.settings import Env, SettingsError

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def _networks(variable: str, text: str) -> tuple[Network, ...]:
    try:
        return tuple(ipaddress.ip_network(part.strip()) for part in text.split(",") if part.strip())
    except ValueError as exc:
        raise SettingsError(f"{variable}: {exc}") from None


@dataclass(frozen=True, kw_only=True, slots=True)
class GatewaySettings:
    redis_url: str
    host: str
    port: int
    test_mode: bool
    #: Longest a near-cache entry is trusted without a push invalidation (0: no near-cache).
    near_cache_ttl: float
    near_cache_size: int
    #: Redis socket timeout: a slow Redis gives a quick "unavailable", never a hang.
    redis_timeout: float
    access_log: bool
    #: Only these peers may tell /v1/auth the original method and URI.
    trusted_proxies: tuple[Network, ...]
    session_cookie: str
    #: Envoy ext_authz (HTTP) sends the original request below this path prefix.
    envoy_prefix: str
    processes: int
    #: /v1/auth and Envoy accept an unbound check (no gateway key, no tenant named): for a
    #: proxy in front of several tenants' applications, on purpose.
    proxy_any_tenant: bool = False
    #: Connections: at most this many (0: the open-file limit less a reserve), this many
    #: from one address (trusted proxies excepted), headers within this many seconds, and
    #: an idle kept-alive connection closed after this many (see ``gateway.connections``).
    max_connections: int = 0
    max_connections_per_peer: int = 256
    header_timeout: float = 10.0
    idle_timeout: float = 75.0

    @classmethod
    def from_env(cls, environ: Mapping[str, str]) -> GatewaySettings:
        env = Env(environ)
        return cls(
            redis_url=env.text("REDIS_URL", "redis://127.0.0.1:6379/0"),
            host=env.text("GATEWAY_HOST", "127.0.0.1"),
            port=env.integer("GATEWAY_PORT", 8080, maximum=65535),
            test_mode=env.flag("TEST_MODE", False),
            near_cache_ttl=env.number("NEAR_CACHE_TTL", 5.0),
            near_cache_size=env.integer("NEAR_CACHE_SIZE", 100_000, minimum=0),
            redis_timeout=env.number("REDIS_TIMEOUT", 0.25, minimum=0.001),
            access_log=env.flag("ACCESS_LOG", False),
            trusted_proxies=_networks(
                env.name("TRUSTED_PROXIES"), env.text("TRUSTED_PROXIES", "127.0.0.1/32,::1/128")
            ),
            session_cookie=env.text("SESSION_COOKIE", "tollgate_session"),
            envoy_prefix="/" + env.text("ENVOY_PREFIX", "/v1/envoy").strip("/"),
            processes=env.integer("GATEWAY_PROCESSES", 1, minimum=1, maximum=256),
            proxy_any_tenant=env.flag("PROXY_ANY_TENANT", False),
            max_connections=env.integer("GATEWAY_MAX_CONNECTIONS", 0),
            max_connections_per_peer=env.integer(
                "GATEWAY_MAX_CONNECTIONS_PER_PEER", 256, minimum=1
            ),
            header_timeout=env.number("GATEWAY_HEADER_TIMEOUT", 10.0, minimum=0.1),
            idle_timeout=env.number("GATEWAY_IDLE_TIMEOUT", 75.0, minimum=0.1),
        )
