"""The gateway, from an application: authorize a user, log in and out, check a session.

``Gateway`` is synchronous and ``AsyncGateway`` asynchronous; both build the same requests
(:class:`_Calls`) and read the same answers. When the gateway cannot be reached (or
answers 503), ``authorize`` applies a fail policy on the client's side: closed by default
(a deny with reason ``unavailable``); with ``fail_open_seconds`` an allow the client saw
for that user at most that long ago is served again, marked stale.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any
from urllib.parse import quote

import httpx

from tollgate_client.results import Check, Decision, Login, TollgateError, Unavailable

#: Errors meaning "the gateway did not answer": the fail policy decides.
_UNREACHABLE = (httpx.TransportError,)


@dataclass(frozen=True, slots=True)
class _Request:
    method: str
    path: str
    json: dict[str, Any] | None = None
    headers: dict[str, str] | None = None


def _json(response: httpx.Response) -> dict[str, Any]:
    try:
        body = response.json()
    except ValueError:
        body = None
    return body if isinstance(body, dict) else {"detail": response.text[:200]}


def _raise_for(response: httpx.Response) -> None:
    if response.status_code == 503:
        raise Unavailable(_json(response).get("detail", "the gateway is unavailable"))
    if response.status_code >= 400:
        raise TollgateError(response.status_code, _json(response))


class _Calls:
    """What each call sends and how its answer reads, shared by both clients."""

    def __init__(self, key: str, fail_open_seconds: float, clock: Callable[[], float]) -> None:
        self.auth = {"Authorization": f"Bearer {key}"}
        #: A proxy check sends the key here: the gateway then accepts only its tenant's
        #: sessions (the Authorization header carries the session token).
        self.binding = {"X-Tollgate-Key": key}
        self.tenant: str | None = None
        self.fail_open_seconds = fail_open_seconds
        self.clock = clock
        self.last_allowed: dict[tuple[str, str | None], tuple[float, Decision]] = {}

    def authorize(self, user: str, feature: str | None) -> _Request:
        body: dict[str, Any] = {"user": user}
        if feature is not None:
            body["feature"] = feature
        return _Request("POST", "/v1/authorize", body, self.auth)

    def decision(self, user: str, feature: str | None, response: httpx.Response) -> Decision:
        _raise_for(response)
        decision = Decision.from_body(response.json())
        if decision.allow:
            self.last_allowed[(user, feature)] = (self.clock(), decision)
        else:
            self.last_allowed.pop((user, feature), None)
        return decision

    def unreachable(self, user: str, feature: str | None) -> Decision:
        seen = self.last_allowed.get((user, feature))
        if seen is not None and self.fail_open_seconds > 0:
            age = self.clock() - seen[0]
            if age <= self.fail_open_seconds:
                return replace(seen[1], stale_seconds=round(age, 1))
        return Decision(allow=False, reason="unavailable", user=user)

    def login(self, user: str) -> _Request:
        return _Request("POST", "/v1/sessions", {"user": user}, self.auth)

    @staticmethod
    def login_result(response: httpx.Response) -> Login:
        body = _json(response)
        if response.status_code == 201:
            return Login(True, token=body["token"], session_id=body["session_id"],
                         live_sessions=body.get("live_sessions"), body=body)  # fmt: skip
        if response.status_code == 403:
            return Login(False, reason=body.get("reason"), body=body)
        _raise_for(response)
        raise TollgateError(response.status_code, body)

    def refresh(self, session_id: str) -> _Request:
        return _Request("POST", f"/v1/sessions/{quote(session_id, safe='')}/refresh", None,
                        self.auth)  # fmt: skip

    def logout(self, session_id: str) -> _Request:
        return _Request("DELETE", f"/v1/sessions/{quote(session_id, safe='')}", None, self.auth)

    @staticmethod
    def ended(response: httpx.Response) -> bool:
        """True when the call ended or refreshed a session, False when there was none."""
        if response.status_code == 404:
            return False
        _raise_for(response)
        return True

    def check(self, token: str, method: str, path: str, envoy_prefix: str) -> _Request:
        # The Envoy form of the proxy check: the original method and path are the request's
        # own, so no proxy trust is needed to hold a read-only account to safe methods.
        target = envoy_prefix.rstrip("/") + "/" + quote(path.lstrip("/"), safe="/")
        return _Request(method, target, None, {"Authorization": f"Bearer {token}", **self.binding})

    def whoami(self) -> _Request:
        return _Request("GET", "/v1/key", None, self.auth)

    def tenant_result(self, response: httpx.Response) -> str:
        _raise_for(response)
        self.tenant = str(response.json()["tenant"])
        return self.tenant

    @staticmethod
    def check_result(response: httpx.Response) -> Check:
        if response.status_code in (200, 401, 403):
            identity = {k.lower(): v for k, v in response.headers.items()
                        if k.lower().startswith("x-tollgate-")}  # fmt: skip
            reason = response.headers.get("X-Tollgate-Reason")
            return Check(response.status_code, reason, identity if response.is_success else {})
        _raise_for(response)
        raise TollgateError(response.status_code, _json(response))


def _send(client: httpx.Client, request: _Request) -> httpx.Response:
    return client.request(request.method, request.path, json=request.json,
                          headers=request.headers)  # fmt: skip


async def _asend(client: httpx.AsyncClient, request: _Request) -> httpx.Response:
    return await client.request(request.method, request.path, json=request.json,
                                headers=request.headers)  # fmt: skip


class Gateway:
    """A synchronous client of one tenant's gateway (its gateway key)."""

    def __init__(
        self,
        url: str,
        key: str,
        *,
        timeout: float = 2.0,
        fail_open_seconds: float = 0.0,
        envoy_prefix: str = "/v1/envoy",
        clock: Callable[[], float] = time.monotonic,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self._calls = _Calls(key, fail_open_seconds, clock)
        self._envoy_prefix = envoy_prefix
        self._http = httpx.Client(base_url=url, timeout=timeout, transport=transport)

    def authorize(self, user: str, feature: str | None = None) -> Decision:
        try:
            response = _send(self._http, self._calls.authorize(user, feature))
            return self._calls.decision(user, feature, response)
        except (*_UNREACHABLE, Unavailable):
            return self._calls.unreachable(user, feature)

    def login(self, user: str) -> Login:
        return self._calls.login_result(_send(self._http, self._calls.login(user)))

    def refresh(self, session_id: str) -> bool:
        return self._calls.ended(_send(self._http, self._calls.refresh(session_id)))

    def logout(self, session_id: str) -> bool:
        return self._calls.ended(_send(self._http, self._calls.logout(session_id)))

    def check(self, token: str, method: str = "GET", path: str = "/") -> Check:
        """The proxy check of a session token, bound to this key's tenant."""
        request = self._calls.check(token, method, path, self._envoy_prefix)
        return self._calls.check_result(_send(self._http, request))

    def tenant(self) -> str:
        """The tenant this gateway key belongs to (asked once, then remembered)."""
        if self._calls.tenant is None:
            return self._calls.tenant_result(_send(self._http, self._calls.whoami()))
        return self._calls.tenant

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> Gateway:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()


class AsyncGateway:
    """An asynchronous client of one tenant's gateway (its gateway key)."""

    def __init__(
        self,
        url: str,
        key: str,
        *,
        timeout: float = 2.0,
        fail_open_seconds: float = 0.0,
        envoy_prefix: str = "/v1/envoy",
        clock: Callable[[], float] = time.monotonic,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self._calls = _Calls(key, fail_open_seconds, clock)
        self._envoy_prefix = envoy_prefix
        self._http = httpx.AsyncClient(base_url=url, timeout=timeout, transport=transport)

    async def authorize(self, user: str, feature: str | None = None) -> Decision:
        try:
            response = await _asend(self._http, self._calls.authorize(user, feature))
            return self._calls.decision(user, feature, response)
        except (*_UNREACHABLE, Unavailable):
            return self._calls.unreachable(user, feature)

    async def login(self, user: str) -> Login:
        return self._calls.login_result(await _asend(self._http, self._calls.login(user)))

    async def refresh(self, session_id: str) -> bool:
        return self._calls.ended(await _asend(self._http, self._calls.refresh(session_id)))

    async def logout(self, session_id: str) -> bool:
        return self._calls.ended(await _asend(self._http, self._calls.logout(session_id)))

    async def check(self, token: str, method: str = "GET", path: str = "/") -> Check:
        """The proxy check of a session token, bound to this key's tenant."""
        request = self._calls.check(token, method, path, self._envoy_prefix)
        return self._calls.check_result(await _asend(self._http, request))

    async def tenant(self) -> str:
        """The tenant this gateway key belongs to (asked once, then remembered)."""
        if self._calls.tenant is None:
            return self._calls.tenant_result(await _asend(self._http, self._calls.whoami()))
        return self._calls.tenant

    async def aclose(self) -> None:
        await self._http.aclose()

    async def __aenter__(self) -> AsyncGateway:
        return self

    async def __aexit__(self, *_: object) -> None:
        await self.aclose()
