"""The management calls an application makes with its tenant's admin key: accounts, users,
subscriptions and usage. Every POST carries an ``Idempotency-Key`` that stays the same
across its retries, so a retried call after a lost answer never creates a thing twice.
"""

from __future__ import annotations

import asyncio
import secrets
import time
from collections.abc import Iterator, Sequence
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


def _at(template: str, ident: str) -> str:
    return template.format(quote(ident, safe=""))


class _Calls:
    """What each management call sends (method, path, body), shared by both clients."""

    @staticmethod
    def create_account(name: str, fields: dict[str, Any]) -> tuple[str, str, dict[str, Any]]:
        return "POST", "/v1/accounts", {"name": name, **fields}

    @staticmethod
    def account(account_id: str) -> tuple[str, str, None]:
        return "GET", _at("/v1/accounts/{}", account_id), None

    @staticmethod
    def create_user(
        account_id: str, external_id: str, fields: dict[str, Any]
    ) -> tuple[str, str, dict[str, Any]]:
        body = {"external_id": external_id, **fields}
        return "POST", _at("/v1/accounts/{}/users", account_id), body

    @staticmethod
    def subscribe(
        account_id: str, plan: str, fields: dict[str, Any]
    ) -> tuple[str, str, dict[str, Any]]:
        return "POST", _at("/v1/accounts/{}/subscriptions", account_id), {"plan": plan, **fields}

    @staticmethod
    def record_usage(
        subscription_id: str, name: str, units: int, record_id: str, fields: dict[str, Any]
    ) -> tuple[str, str, dict[str, Any]]:
        body = {"name": name, "units": units, "record_id": record_id, **fields}
        return "POST", _at("/v1/subscriptions/{}/usage", subscription_id), body

    @staticmethod
    def record_payment(
        account_id: str, amount: str, currency: str, invoices: Sequence[str], fields: dict[str, Any]
    ) -> tuple[str, str, dict[str, Any]]:
        body = {"amount": amount, "currency": currency, "invoices": list(invoices), **fields}
        return "POST", _at("/v1/accounts/{}/payments", account_id), body


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
        # follow_redirects: a retried POST whose first answer was lost is sent (303) to
        # read what it made
        self._http = httpx.Client(base_url=url, timeout=timeout, transport=transport,
                                  headers={"Authorization": f"Bearer {key}"},
                                  follow_redirects=True)  # fmt: skip
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
        return self.request(*_Calls.create_account(name, fields))  # type: ignore[no-any-return]

    def account(self, account_id: str) -> dict[str, Any]:
        return self.request(*_Calls.account(account_id))  # type: ignore[no-any-return]

    def create_user(self, account_id: str, external_id: str, **fields: Any) -> dict[str, Any]:
        call = _Calls.create_user(account_id, external_id, fields)
        return self.request(*call)  # type: ignore[no-any-return]

    def subscribe(self, account_id: str, plan: str, **fields: Any) -> dict[str, Any]:
        return self.request(*_Calls.subscribe(account_id, plan, fields))  # type: ignore[no-any-return]

    def record_usage(
        self, subscription_id: str, name: str, units: int, *, record_id: str, **fields: Any
    ) -> dict[str, Any]:
        """``record_id`` is yours: sending the same one twice records the usage once."""
        call = _Calls.record_usage(subscription_id, name, units, record_id, fields)
        return self.request(*call)  # type: ignore[no-any-return]

    def record_payment(
        self,
        account_id: str,
        amount: str,
        currency: str,
        *,
        invoices: Sequence[str] = (),
        **fields: Any,
    ) -> dict[str, Any]:
        """A payment received another way (a wire, a check); it pays ``invoices`` first."""
        call = _Calls.record_payment(account_id, amount, currency, invoices, fields)
        return self.request(*call)  # type: ignore[no-any-return]

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
                                       headers={"Authorization": f"Bearer {key}"},
                                       follow_redirects=True)  # fmt: skip
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
        return await self.request(*_Calls.create_account(name, fields))  # type: ignore[no-any-return]

    async def account(self, account_id: str) -> dict[str, Any]:
        return await self.request(*_Calls.account(account_id))  # type: ignore[no-any-return]

    async def create_user(self, account_id: str, external_id: str, **fields: Any) -> dict[str, Any]:
        call = _Calls.create_user(account_id, external_id, fields)
        return await self.request(*call)  # type: ignore[no-any-return]

    async def subscribe(self, account_id: str, plan: str, **fields: Any) -> dict[str, Any]:
        call = _Calls.subscribe(account_id, plan, fields)
        return await self.request(*call)  # type: ignore[no-any-return]

    async def record_usage(
        self, subscription_id: str, name: str, units: int, *, record_id: str, **fields: Any
    ) -> dict[str, Any]:
        """``record_id`` is yours: sending the same one twice records the usage once."""
        call = _Calls.record_usage(subscription_id, name, units, record_id, fields)
        return await self.request(*call)  # type: ignore[no-any-return]

    async def record_payment(
        self,
        account_id: str,
        amount: str,
        currency: str,
        *,
        invoices: Sequence[str] = (),
        **fields: Any,
    ) -> dict[str, Any]:
        """A payment received another way (a wire, a check); it pays ``invoices`` first."""
        call = _Calls.record_payment(account_id, amount, currency, invoices, fields)
        return await self.request(*call)  # type: ignore[no-any-return]

    async def aclose(self) -> None:
        await self._http.aclose()

    async def __aenter__(self) -> AsyncManagement:
        return self

    async def __aexit__(self, *_: object) -> None:
        await self.aclose()


def _unreachable(path: str) -> Any:
    raise Unavailable(f"the management API did not answer {path}")
