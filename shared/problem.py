"""RFC 9457 problem details, rendered the same way by the gateway and the billing API."""

from __future__ import annotations

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
    return web.Response(
        status=status,
        body=orjson.dumps(body),
        content_type=PROBLEM_TYPE,
        headers=headers,
    )
