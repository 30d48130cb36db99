"""The one middleware that renders every error as problem+json (the error tree is
``services.errors``), and msgspec's validation errors in words, every bad field named."""

from __future__ import annotations

import logging
import re
import secrets
from collections.abc import Awaitable, Callable
from typing import Any

import msgspec
from aiohttp import web

from billing_worker.api.http.appkeys import REQUEST_ID
from billing_worker.services.errors import ApiError, FieldError, InvalidRequest
from shared.problem import SlowBody, problem_response, slow_body_response

log = logging.getLogger(__name__)


#: What each pattern a request field must match means, in words (see ``worded``).
_PATTERN_WORDS: dict[str, str] = {}
_PATTERN_REASON = re.compile(r"^Expected `str` matching regex '(?P<pattern>.*)'$")


def worded(pattern: str, words: str) -> str:
    """Declare ``pattern`` (for ``msgspec.Meta``) with the reason a mismatch is given in."""
    _PATTERN_WORDS[pattern] = words
    return pattern


_AT_PATH = re.compile(r"^(?P<reason>.*) - at `\$(?P<path>[^`]*)`$")
_NAMED = re.compile(r"(?:missing required field|unknown field) `(?P<name>[^`]+)`")


def from_validation_error(
    exc: msgspec.ValidationError, allowed: Callable[[str], list[Any] | None] | None = None
) -> InvalidRequest:
    """Turn msgspec's message into a field name and a reason; ``allowed`` names the values
    an enumerated field accepts."""
    return InvalidRequest.field(*_field_and_reason(str(exc), allowed))


def every_field_error(
    document: object,
    kind: type[msgspec.Struct],
    allowed: Callable[[str], list[Any] | None] | None = None,
) -> list[FieldError]:
    """Every top-level field of ``document`` that ``kind`` refuses, each with its reason.

    msgspec stops at the first bad field; a user fixing a form wants them all at once, so
    each field is checked on its own (its first problem is reported).
    """
    if not isinstance(document, dict):
        return []
    info = {f.encode_name: f for f in msgspec.structs.fields(kind)}
    errors = [
        FieldError(name, "missing required field")
        for name, f in info.items()
        if f.required and name not in document
    ]
    if kind.__struct_config__.forbid_unknown_fields:
        unknown = "unknown field: this request has no such field"
        errors += [FieldError(str(k), unknown) for k in document if k not in info]
    for name, value in document.items():
        if name not in info:
            continue
        try:
            msgspec.convert({name: value}, type=_one_field(kind, name), strict=True)
        except msgspec.ValidationError as exc:
            errors.append(FieldError(*_field_and_reason(str(exc), allowed)))
    return errors


_ONE_FIELD: dict[tuple[type, str], type] = {}


def _one_field(kind: type[msgspec.Struct], name: str) -> type:
    key = (kind, name)
    if key not in _ONE_FIELD:
        field = next(f for f in msgspec.structs.fields(kind) if f.encode_name == name)
        _ONE_FIELD[key] = msgspec.defstruct(
            f"{kind.__name__}_{field.name}", [(field.encode_name, field.type)]
        )
    return _ONE_FIELD[key]


def _field_and_reason(
    message: str, allowed: Callable[[str], list[Any] | None] | None
) -> tuple[str, str]:
    reason, path = message, ""
    match = _AT_PATH.match(message)
    if match:
        reason, path = match["reason"], match["path"]
    named = _NAMED.search(reason)
    if named:
        path = f"{path}.{named['name']}"
    field = path.lstrip(".") or "body"
    pattern = _PATTERN_REASON.match(reason)
    if pattern:
        reason = _PATTERN_WORDS.get(pattern["pattern"].encode().decode("unicode_escape"), reason)
    choices = allowed(field) if allowed and reason.startswith("Invalid enum value") else None
    if choices:
        reason += f"; one of {', '.join(repr(c) for c in choices)}"
    if field.endswith("amount") and reason.startswith("Expected `str`"):
        reason += ' (amounts are decimal strings such as "12.50", never JSON numbers)'
    return field, reason


_STATUS_CODES = {404: "not_found", 405: "method_not_allowed", 413: "body_too_large"}


@web.middleware
async def problem_middleware(
    request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
) -> web.StreamResponse:
    try:
        return await handler(request)
    except ApiError as exc:
        retry = getattr(exc, "retry_after", None)
        return problem_response(
            exc.status,
            exc.code,
            (exc.__doc__ or exc.code).strip(),
            exc.detail,
            errors=[{"field": e.field, "reason": e.reason} for e in exc.errors] or None,
            headers={"Retry-After": str(retry)} if retry else None,
        )
    except SlowBody:
        return slow_body_response()
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        code = _STATUS_CODES.get(exc.status, "http_error")
        return problem_response(exc.status, code, exc.reason, headers=_allow(exc))
    except Exception:
        request_id = request.get(REQUEST_ID) or secrets.token_hex(8)
        log.exception("api.unhandled_error request_id=%s", request_id)
        return problem_response(
            500,
            "internal_error",
            "Internal server error",
            "The error was logged; quote the request id when reporting it.",
            request_id=request_id,
        )


def _allow(exc: web.HTTPException) -> dict[str, str] | None:
    allow = exc.headers.get("Allow")
    return {"Allow": allow} if allow else None
