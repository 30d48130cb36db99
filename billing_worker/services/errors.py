"""What a request can fail with, for the HTTP edge and the services alike: each error
is a problem type (``code``) with its HTTP status, a detail in words and, where fields are
at fault, every bad field with its reason. ``api.http.errors`` renders them as
``application/problem+json``."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class FieldError:
    field: str
    reason: str


class ApiError(Exception):
    """Request failed."""

    status = 400
    code = "bad_request"

    def __init__(self, detail: str | None = None, *, errors: list[FieldError] | None = None):
        super().__init__(detail or self.__doc__ or self.code)
        self.detail = detail or (self.__doc__ or self.code).strip()
        self.errors = errors or []


class InvalidRequest(ApiError):
    """The request has invalid fields."""

    status = 422
    code = "invalid_request"

    @classmethod
    def field(cls, field: str, reason: str) -> InvalidRequest:
        return cls.fields([FieldError(field, reason)])

    @classmethod
    def fields(cls, errors: Sequence[FieldError]) -> InvalidRequest:
        """Every bad field of a request at once, each with its reason."""
        return cls("; ".join(f"{e.field}: {e.reason}" for e in errors), errors=list(errors))


class MalformedBody(ApiError):
    """The request body is not valid JSON."""

    status = 400
    code = "malformed_body"


class TooMuchAtOnceError(ApiError):
    """The request would bill more at once than a request may."""

    status = 422
    code = "too_much_at_once"


class BodyTooLarge(ApiError):
    """The request body is larger than this endpoint takes."""

    status = 413
    code = "body_too_large"


class MalformedDocument(MalformedBody):
    """The request body is neither valid YAML nor JSON."""


class Unauthorized(ApiError):
    """Missing or invalid API key."""

    status = 401
    code = "unauthorized"


class BadSignature(ApiError):
    """Missing or invalid webhook signature."""

    status = 401
    code = "bad_signature"


class Forbidden(ApiError):
    """This key may not do that."""

    status = 403
    code = "forbidden"


class NotFound(ApiError):
    """No such resource."""

    status = 404
    code = "not_found"


class Unavailable(ApiError):
    """This server cannot do that now."""

    status = 503
    code = "unavailable"


class Busy(Unavailable):
    """The request waited its whole time limit for the database; nothing was changed."""

    code = "busy"
    #: Sent as Retry-After: a request waits behind others' transactions, which end soon.
    retry_after = 1


class Conflict(ApiError):
    """The request conflicts with existing data."""

    status = 409
    code = "conflict"

    @classmethod
    def field(cls, field: str, reason: str) -> Conflict:
        return cls(f"{field}: {reason}", errors=[FieldError(field, reason)])


class ChangesBlocked(ApiError):
    """The account's dunning stage blocks changes until it pays."""

    status = 409
    code = "changes_blocked"
