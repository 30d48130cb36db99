"""The management calls an application makes with its tenant's admin key: accounts, users,
subscriptions and usage. Every POST carries an ``Idempotency-Key`` that stays the same
across its retries, so a retried call after a lost answer never creates a thing twice.
"""

from __future__ import annotations

import asyncio
import secrets
import time
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote

import httpx

from tollgate_client.results import TollgateError, Unavailable

#: Worth another try: no answer, or an answer saying "not now".
_RETRY_STATUSES = frozenset({429, 502, 503, 504})


def _delays(retries: int, backoff: float) -> Iterator[float]:
    for attempt in range(retries):
        yield backoff * (2**attempt)


def _answer(response: httpx.Response) -> Any:
    if response.status_code >= 400:
        try:
            problem = response.json()
        except ValueError:
            problem = {"detail": response.text[:200]}
        if response.status_code == 503:
            raise Unavailable(str(problem.get("detail", "unavailable")))
        raise TollgateError(response.status_code, problem if isinstance(problem, dict) else {})
    return response.json() if response.content else None


_PATHS = {
    "account": "/v1/accounts/{}",
    "users": "/v1/accounts/{}/users",
    "subscriptions": "/v1/accounts/{}/subscriptions",
    "usage": "/v1/subscriptions/{}/usage",
}


def _path(kind: str, ident: str) -> str:
    return _PATHS[kind].format(quote(ident, safe=""))


class Management:
    """A synchronous client of the management API (a tenant's admin key)."""

    def __init__(
        self,
        url: str,
        key: str,
        *,
        timeout: float = 10.0,
        retries: int = 2,
        backoff: float = 0.2,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self._http = httpx.Client(base_url=url, timeout=timeout, transport=transport,
                                  headers={"Authorization": f"Bearer {key}"})  # fmt: skip
        self._retries, self._backoff = retries, backoff

    def request(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        """Any call; a POST is retried with the same Idempotency-Key."""
        headers = {"Idempotency-Key": secrets.token_hex(16)} if method == "POST" else {}
        delays = _delays(self._retries if method in ("GET", "POST") else 0, self._backoff)
        response: httpx.Response | None = None
        while True:
            try:
                response = self._http.request(method, path, json=body, headers=headers)
                if response.status_code not in _RETRY_STATUSES:
                    return _answer(response)
            except httpx.TransportError:
                response = None
            delay = next(delays, None)
            if delay is None:
                return _answer(response) if response is not None else _unreachable(path)
            time.sleep(delay)

    def create_account(self, name: str, **fields: Any) -> dict[str, Any]:
        result: dict[str, Any] = self.request("POST", "/v1/accounts", {"name": name, **fields})
        return result

    def account(self, account_id: str) -> dict[str, Any]:
        result: dict[str, Any] = self.request("GET", _path("account", account_id))
        return result

    def create_user(self, account_id: str, external_id: str, **fields: Any) -> dict[str, Any]:
        body = {"external_id": external_id, **fields}
        result: dict[str, Any] = self.request("POST", _path("users", account_id), body)
        return result

    def subscribe(self, account_id: str, plan: str, **fields: Any) -> dict[str, Any]:
        body = {"plan": plan, **fields}
        result: dict[str, Any] = self.request("POST", _path("subscriptions", account_id), body)
        return result

    def record_usage(
        self, subscription_id: str, name: str, units: int, *, record_id: str, **fields: Any
    ) -> dict[str, Any]:
        """``record_id`` is yours: sending the same one twice records the usage once."""
        body = {"name": name, "units": units, "record_id": record_id, **fields}
        result: dict[str, Any] = self.request("POST", _path("usage", subscription_id), body)
        return result

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> Management:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()


class AsyncManagement:
    """An asynchronous client of the management API (a tenant's admin key)."""

    def __init__(
        self,
        url: str,
        key: str,
        *,
        timeout: float = 10.0,
        retries: int = 2,
        backoff: float = 0.2,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self._http = httpx.AsyncClient(base_url=url, timeout=timeout, transport=transport,
                                       headers={"Authorization": f"Bearer {key}"})  # fmt: skip
        self._retries, self._backoff = retries, backoff

    async def request(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        """Any call; a POST is retried with the same Idempotency-Key."""
        headers = {"Idempotency-Key": secrets.token_hex(16)} if method == "POST" else {}
        delays = _delays(self._retries if method in ("GET", "POST") else 0, self._backoff)
        response: httpx.Response | None = None
        while True:
            try:
                response = await self._http.request(method, path, json=body, headers=headers)
                if response.status_code not in _RETRY_STATUSES:
                    return _answer(response)
            except httpx.TransportError:
                response = None
            delay = next(delays, None)
            if delay is None:
                return _answer(response) if response is not None else _unreachable(path)
            await asyncio.sleep(delay)

    async def create_account(self, name: str, **fields: Any) -> dict[str, Any]:
        body = {"name": name, **fields}
        result: dict[str, Any] = await self.request("POST", "/v1/accounts", body)
        return result

    async def account(self, account_id: str) -> dict[str, Any]:
        result: dict[str, Any] = await self.request("GET", _path("account", account_id))
        return result

    async def create_user(self, account_id: str, external_id: str, **fields: Any) -> dict[str, Any]:
        body = {"external_id": external_id, **fields}
        result: dict[str, Any] = await self.request("POST", _path("users", account_id), body)
        return result

    async def subscribe(self, account_id: str, plan: str, **fields: Any) -> dict[str, Any]:
        body = {"plan": plan, **fields}
        path = _path("subscriptions", account_id)
        result: dict[str, Any] = await self.request("POST", path, body)
        return result

    async def record_usage(
        self, subscription_id: str, name: str, units: int, *, record_id: str, **fields: Any
    ) -> dict[str, Any]:
        """``record_id`` is yours: sending the same one twice records the usage once."""
        body = {"name": name, "units": units, "record_id": record_id, **fields}
        path = _path("usage", subscription_id)
        result: dict[str, Any] = await self.request("POST", path, body)
        return result

    async def aclose(self) -> None:
        await self._http.aclose()

    async def __aenter__(self) -> AsyncManagement:
        return self

    async def __aexit__(self, *_: object) -> None:
        await self.aclose()


def _unreachable(path: str) -> Any:
    raise Unavailable(f"the management API did not answer {path}")
