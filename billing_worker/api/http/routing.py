"""Declares each route once: its handler, who may call it, and its body types.

The OpenAPI document is generated from these declarations, so it cannot drift from
what the server actually accepts.
"""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, TypeVar

import msgspec
from aiohttp import web

from billing_worker.api.http.appkeys import CLOCK, SETTINGS
from billing_worker.api.http.bounds import (
    DateWindow,
    allowed_values,
    control_characters,
    web_addresses,
)
from billing_worker.api.http.errors import every_field_error, from_validation_error
from billing_worker.domain.card_data import card_data_fields
from billing_worker.notifications.destinations import Destinations
from billing_worker.services.errors import BodyTooLarge, FieldError, InvalidRequest, MalformedBody
from shared.problem import read_body

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
T = TypeVar("T")

MAX_BODY = 64 * 1024


class Role(StrEnum):
    PUBLIC = "public"
    OPERATOR = "operator"
    TENANT = "tenant"
    #: The operator key or any tenant's admin key (test-mode endpoints).
    ANY = "any"


@dataclass(frozen=True, slots=True)
class RouteSpec:
    method: str
    path: str
    handler: Handler
    summary: str
    role: Role
    request: type | None = None
    response: type | None = None
    status: int = 200
    errors: tuple[int, ...] = field(default=())
    #: The OpenAPI ``requestBody.content`` of a body that is not a JSON-decoded type.
    raw_body: dict[str, Any] | None = None
    #: The OpenAPI success ``content`` of an answer that is not JSON (a PDF).
    raw_response: dict[str, Any] | None = None


class Router:
    def __init__(self) -> None:
        self.specs: list[RouteSpec] = []

    def route(
        self,
        method: str,
        path: str,
        *,
        summary: str,
        role: Role,
        request: type | None = None,
        response: type | None = None,
        status: int = 200,
        errors: tuple[int, ...] = (),
        raw_body: dict[str, Any] | None = None,
        raw_response: dict[str, Any] | None = None,
    ) -> Callable[[Handler], Handler]:
        def register(handler: Handler) -> Handler:
            self.specs.append(
                RouteSpec(
                    method, path, handler, summary, role, request, response, status, errors,
                    raw_body, raw_response,
                )
            )  # fmt: skip
            return handler

        return register

    def install(self, app: web.Application) -> None:
        for spec in self.specs:
            app.router.add_route(spec.method, spec.path, spec.handler)

    def role_of(self, request: web.Request) -> Role:
        info = request.match_info.route.resource
        canonical = info.canonical if info is not None else ""
        for spec in self.specs:
            if spec.path == canonical and spec.method == request.method:
                return spec.role
        return Role.PUBLIC


async def read_limited(request: web.Request, limit: int = MAX_BODY) -> bytes:
    """The request body, or 413 when it is over ``limit`` bytes (as declared or as sent)."""
    if request.content_length is not None and request.content_length > limit:
        raise BodyTooLarge(f"the body is {request.content_length} bytes; at most {limit} here")
    raw = await read_body(request)
    if len(raw) > limit:
        raise BodyTooLarge(f"the body is over {limit} bytes; at most {limit} here")
    return raw


async def decode(request: web.Request, kind: type[T], *, refuse_card_data: bool = False) -> T:
    """Read and validate a JSON body; errors name the field and the reason.

    With ``refuse_card_data`` (payment endpoints) a body holding anything shaped like card
    data is refused before it is validated, let alone stored.
    """
    raw = await read_limited(request)
    if not raw.strip():
        raw = b"{}"
    try:
        # Untyped first: the typed decode can stop at a wrong type before it reaches
        # bytes that are not JSON at all ("1T…" is "expected an object", not "not JSON").
        document = msgspec.json.decode(raw)
    except msgspec.DecodeError as exc:
        raise MalformedBody(f"body is not valid JSON: {exc}") from exc
    if refuse_card_data:
        _refuse_card_data(document)
    try:
        body = msgspec.json.decode(raw, type=kind)
    except msgspec.ValidationError as exc:
        allowed = functools.partial(allowed_values, kind)
        every = (
            every_field_error(document, kind, allowed)
            if isinstance(kind, type) and issubclass(kind, msgspec.Struct)
            else []
        )
        if len(every) > 1:
            raise InvalidRequest.fields(every) from exc
        raise from_validation_error(exc, allowed) from exc
    errors = control_characters(body)
    if isinstance(body, msgspec.Struct):
        settings = request.app[SETTINGS]
        window = DateWindow(
            settings.max_backdate_days, settings.max_ahead_days, settings.max_target_days
        )
        errors += window.errors(body, request.app[CLOCK].now().date())
        errors += web_addresses(body, Destinations(settings.webhook_allowed_networks))
    if errors:
        raise InvalidRequest.fields(errors)
    return body


CARD_DATA_REASON = (
    "looks like card data, which Tollgate never accepts: tokenize the card with your "
    "payment provider and send its token"
)


def _refuse_card_data(document: Any) -> None:
    fields = list(card_data_fields(document))
    if fields:
        raise InvalidRequest(
            f"{', '.join(fields)}: {CARD_DATA_REASON}",
            errors=[FieldError(f, CARD_DATA_REASON) for f in fields],
        )


def respond(payload: Any, status: int = 200) -> web.Response:
    """A JSON answer, ending in a newline (a shell prompt after curl starts on its own line)."""
    body = msgspec.json.encode(payload) + b"\n"
    return web.Response(body=body, status=status, content_type="application/json")


#: The largest id a database's BIGINT holds.
_LARGEST_ID = 2**63 - 1


def serial_id(text: str) -> int | None:
    """A row's number from a path or query (``"812"``), or None when it cannot name one (not
    a whole number, or larger than any id): the caller answers 404 or names the field."""
    if not text.isascii() or not text.isdigit() or len(text) > 19:
        return None
    number = int(text)
    return number if number <= _LARGEST_ID else None
