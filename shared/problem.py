"""RFC 9457 problem details, rendered the same way by the gateway and the billing API."""

from __future__ import annotations

import asyncio
from typing import Any

import orjson
from aiohttp import web

PROBLEM_TYPE = "application/problem+json"
TYPE_BASE = "https://tollgate.dev/problems/"


def problem_response(
    status: int,
    code: str,
    title: str,
    detail: str | None = None,
    *,
    headers: dict[str, str] | None = None,
    **extra: Any,
) -> web.Response:
    body: dict[str, Any] = {
        "type": TYPE_BASE + code,
        "title": title,
        "status": status,
        "code": code,
    }
    if detail:
        body["detail"] = detail
    body.update({k: v for k, v in extra.items() if v is not None})
    try:
        encoded = orjson.dumps(body, option=orjson.OPT_APPEND_NEWLINE)
    except TypeError:  # a detail quoting input that is not valid UTF-8 (a lone surrogate)
        encoded = orjson.dumps(_readable(body), option=orjson.OPT_APPEND_NEWLINE)
    return web.Response(
        status=status,
        body=encoded,
        content_type=PROBLEM_TYPE,
        headers=headers,
    )


#: A client has this long to send its whole body; a slower one holds a connection and a
#: handler for nothing (a "slow body" attack) and is answered 408.
BODY_SECONDS = 10.0


class SlowBody(Exception):
    """The client did not send its body within ``BODY_SECONDS``."""


async def read_body(request: web.BaseRequest) -> bytes:
    """The request body, read within ``BODY_SECONDS``; ``SlowBody`` when it is not."""
    try:
        async with asyncio.timeout(BODY_SECONDS):
            return await request.read()
    except TimeoutError:
        raise SlowBody from None


def slow_body_response() -> web.Response:
    return problem_response(
        408,
        "request_timeout",
        "The request body did not arrive in time.",
        f"Send the whole body within {BODY_SECONDS:.0f} seconds.",
        headers={"Connection": "close"},
    )


def _readable(value: Any) -> Any:
    """``value`` with every string made encodable (unencodable characters replaced)."""
    if isinstance(value, str):
        return value.encode("utf-8", "replace").decode("utf-8")
    if isinstance(value, dict):
        return {_readable(k): _readable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_readable(v) for v in value]
    return value
