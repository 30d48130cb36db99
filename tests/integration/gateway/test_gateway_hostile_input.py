"""Malformed credentials get the normal 401 at once: bytes no key or session token holds
never reach Redis, and a batch that fails fails every waiter instead of leaving one
hanging."""

from __future__ import annotations

import asyncio
import time

import pytest
import redis.asyncio as aioredis
from redis.exceptions import RedisError

from gateway.view.batcher import KeyBatcher, ScriptBatcher
from shared import problem
from tests.integration.conftest import Stack


async def _raw(port: int, request: bytes) -> bytes:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(request)
        await writer.drain()
        async with asyncio.timeout(5):
            return await reader.read(65536)
    finally:
        writer.close()


async def test_credentials_with_bytes_no_key_holds_are_refused_at_once(stack: Stack) -> None:
    tenant = await stack.new_tenant()
    await stack.wait_key(tenant)
    port = stack.gateway.server.port
    assert port is not None
    body = b'{"user": "ann"}'
    bad_key = (
        b"POST /v1/authorize HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
        b"Authorization: Bearer tgk_\xe9\xe9.\xff\r\nContent-Type: application/json\r\n"
        b"Content-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body
    )
    bad_cookie = (
        b"GET /v1/auth?tenant=ten_1 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
        b"Cookie: tollgate_session=tgs_ten_1.acc_2.\xc3\xa9\xc3\xa9.\xff\xfe\r\n\r\n"
    )
    # Answered side by side with a well-formed request, none of them hangs.
    answers = await asyncio.gather(
        _raw(port, bad_key),
        _raw(port, bad_cookie),
        stack.gateway.post("/v1/authorize", json={"user": "ann"}, headers=tenant.gateway),
    )
    assert answers[0].startswith(b"HTTP/1.1 401"), answers[0][:200]
    assert answers[1].startswith(b"HTTP/1.1 401"), answers[1][:200]
    assert answers[2].status == 200


async def test_a_batch_that_fails_for_any_reason_fails_every_waiter(
    redis_client: aioredis.Redis,
) -> None:
    keys = KeyBatcher(redis_client)
    waiting = [keys.get("fine"), keys.get("bad\udcff")]  # the second cannot be encoded
    results = await asyncio.wait_for(asyncio.gather(*waiting, return_exceptions=True), 5)
    assert all(isinstance(r, RedisError) for r in results)
    assert await asyncio.wait_for(keys.get("fine"), 5) is None  # nothing left in flight

    scripts = ScriptBatcher(redis_client, "return ARGV[1]")
    calls = [scripts.call([], ["ok"]), scripts.call(["bad\udcff"], ["x"])]
    results = await asyncio.wait_for(asyncio.gather(*calls, return_exceptions=True), 5)
    assert all(isinstance(r, RedisError) for r in results)


async def test_a_body_that_never_finishes_is_answered_408(
    stack: Stack, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(problem, "BODY_SECONDS", 0.5)
    tenant = await stack.new_tenant()
    await stack.wait_key(tenant)
    for port, path, key in (
        (stack.gateway.server.port, b"/v1/authorize", tenant.gateway),
        (stack.api.server.port, b"/v1/accounts", tenant.admin),
    ):
        token = key["Authorization"].encode()
        assert port is not None
        started = time.monotonic()
        answer = await _raw(
            port,
            b"POST " + path + b" HTTP/1.1\r\nHost: x\r\nAuthorization: " + token + b"\r\n"
            b'Content-Type: application/json\r\nContent-Length: 100\r\n\r\n{"user": ',
        )
        assert answer.startswith(b"HTTP/1.1 408"), answer[:300]
        assert time.monotonic() - started < 4
