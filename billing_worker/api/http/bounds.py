"""Bounds every request body keeps, whatever its type: dates within a window, and text
without control characters.

The window is a bound on the work one request causes.
A subscription back-dated a century bills a century of periods; an invoice target in the
year 9872 bills millennia ahead (and one in 9999 overflows the calendar). So every date
and timestamp in a request body must lie within ``back_days`` before today and
``ahead_days`` after it; a date that sets how far ahead the worker bills (a *target*,
declared with ``TARGET``) within the shorter ``target_days``. Operators set all three.

Control characters (line breaks, NUL, escape) have no place in a name, an email address
or an identifier: a CR/LF in a name becomes a header injection in an email built from it,
and PostgreSQL refuses NUL where SQLite stores it. Every string in a body, at any depth,
is refused if it holds one, the same on every database.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Annotated, Any
from urllib.parse import urlsplit

import msgspec
import msgspec.inspect as mi
from yarl import URL

from billing_worker.notifications.destinations import Destinations
from billing_worker.services.errors import FieldError

#: A date up to which the worker bills ahead: bounded by ``DateWindow.target_days``.
TARGET = msgspec.Meta(
    extra={"window": "target"},
    description="Bill up to this day (at most TOLLGATE_MAX_TARGET_DAYS ahead, 730 by default)",
)
TargetDate = Annotated[date, TARGET]


@dataclass(frozen=True, slots=True)
class DateWindow:
    back_days: int = 3650
    ahead_days: int = 3650
    target_days: int = 730

    def errors(self, body: msgspec.Struct, today: date) -> list[FieldError]:
        """A reason for each date of ``body`` (a decoded request) outside the window."""
        found = []
        for path, value, kind, extra in leaves(body, _info(type(body))):
            if not isinstance(kind, mi.DateType | mi.DateTimeType):
                continue
            target = extra.get("window") == "target"
            day = value.date() if isinstance(value, datetime) else value
            ahead = self.target_days if target else self.ahead_days
            setting = "TOLLGATE_MAX_TARGET_DAYS" if target else "TOLLGATE_MAX_AHEAD_DAYS"
            if day < today - timedelta(days=self.back_days):
                found.append(
                    FieldError(
                        path,
                        f"{day} is more than {self.back_days} days before today ({today}); "
                        f"dates reach back at most that far (TOLLGATE_MAX_BACKDATE_DAYS)",
                    )
                )
            elif day > today + timedelta(days=ahead):
                found.append(
                    FieldError(
                        path,
                        f"{day} is more than {ahead} days after today ({today}); "
                        f"{'billing targets' if target else 'dates'} reach ahead at most "
                        f"that far ({setting})",
                    )
                )
        return found


@functools.cache
def _info(kind: Any) -> mi.Type:
    return mi.type_info(kind)


def leaves(
    value: Any, kind: mi.Type, path: str = "", extra: dict[str, Any] | None = None
) -> Iterator[tuple[str, Any, mi.Type, dict[str, Any]]]:
    """Each scalar in ``value`` (of msgspec type ``kind``): its path, value, type and the
    ``Meta(extra=...)`` declared on it."""
    extra = dict(extra or {})
    while isinstance(kind, mi.Metadata):
        extra.update(kind.extra or {})
        kind = kind.type
    if isinstance(kind, mi.UnionType):
        for member in kind.types:
            if _matches(value, member):
                yield from leaves(value, member, path, extra)
                return
    elif isinstance(kind, mi.StructType) and isinstance(value, msgspec.Struct):
        for field in kind.fields:
            name = f"{path}.{field.encode_name}" if path else field.encode_name
            yield from leaves(getattr(value, field.name, None), field.type, name)
    elif isinstance(kind, mi.ListType | mi.VarTupleType) and isinstance(value, list | tuple):
        for index, item in enumerate(value):
            yield from leaves(item, kind.item_type, f"{path}[{index}]")
    elif value is not None and value is not msgspec.UNSET:
        yield path or "body", value, kind, extra


def _matches(value: Any, kind: mi.Type) -> bool:
    while isinstance(kind, mi.Metadata):
        kind = kind.type
    checks: list[tuple[type[mi.Type], type | tuple[type, ...]]] = [
        (mi.NoneType, type(None)),
        (mi.StrType, str),
        (mi.DateTimeType, datetime),
        (mi.DateType, date),
        (mi.StructType, msgspec.Struct),
        (mi.ListType, list),
        (mi.BoolType, bool),
        (mi.IntType, int),
    ]
    for info, python in checks:
        if isinstance(kind, info):
            return isinstance(value, python)
    return True


def web_addresses(body: msgspec.Struct, destinations: Destinations) -> list[FieldError]:
    """A reason for each address declared ``Meta(extra={"check": "url"})`` that does not
    parse (a bracket left open, a port past 65535), whose host no resolver could look up
    (an empty label, a label over 63 characters, a name over 253), or that
    ``destinations`` refuses (a private address)."""
    found = []
    for path, value, _kind, extra in leaves(body, _info(type(body))):
        if extra.get("check") == "url" and isinstance(value, str):
            host, reason = _host_of(value)
            reason = reason or _host_problem(host) or destinations.refusal(host)
            if reason:
                found.append(FieldError(path, reason))
    return found


def _host_of(url: str) -> tuple[str | None, str | None]:
    """The host of ``url`` as the sender will read it, or why it cannot be read."""
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 -- reading it is the check: a bad port raises
        URL(url)  # what aiohttp sends to: it must parse the same address
    except ValueError as exc:
        return None, f"not a valid address ({_plain(exc)})"
    if parts.username is not None or parts.password is not None:
        return None, "the address may not hold a user name or password"
    return parts.hostname, None


def _plain(exc: ValueError) -> str:
    """A parser's complaint, without the address it quotes back."""
    return str(exc).split(":", 1)[0].rstrip(".") or "it does not parse"


def _host_problem(host: str | None) -> str | None:
    if not host:
        return "the address has no host name"
    try:
        encoded = host.encode("idna")
    except UnicodeError:
        return "the host name is not a valid DNS name (each label 1 to 63 characters)"
    if len(encoded) > 253:
        return "the host name is longer than 253 characters"
    return None


_CONTROL = re.compile(r"[\x00-\x1f\x7f\ud800-\udfff]")


def control_characters(value: Any, path: str = "") -> list[FieldError]:
    """A reason for each string in ``value`` (a decoded request) holding a control
    character."""
    found: list[FieldError] = []
    if isinstance(value, str):
        match = _CONTROL.search(value)
        if match:
            found.append(
                FieldError(
                    path or "body",
                    f"contains the character U+{ord(match.group()):04X} at position "
                    f"{match.start()}; text may not hold line breaks, tabs, other control "
                    "characters or unpaired surrogates",
                )
            )
    elif isinstance(value, msgspec.Struct):
        for name in value.__struct_fields__:
            found += control_characters(getattr(value, name), f"{path}.{name}" if path else name)
    elif isinstance(value, list | tuple):
        for index, item in enumerate(value):
            found += control_characters(item, f"{path}[{index}]")
    elif isinstance(value, dict):
        for key, item in value.items():
            name = f"{path}.{key}" if path else str(key)
            found += control_characters(key, name) + control_characters(item, name)
    return found


def allowed_values(kind: type, path: str) -> list[Any] | None:
    """The values a ``Literal`` or enum field at ``path`` (``a.b[0].c``) accepts, if any."""
    info: mi.Type = _info(kind)
    for part in re.findall(r"[^.\[\]]+", path):
        info = _unwrap(info)
        if isinstance(info, mi.StructType):
            found = [f.type for f in info.fields if f.encode_name == part]
            if not found:
                return None
            info = found[0]
        elif isinstance(info, mi.ListType | mi.VarTupleType) and part.isdigit():
            info = info.item_type
        else:
            return None
    info = _unwrap(info)
    if isinstance(info, mi.LiteralType):
        return list(info.values)
    if isinstance(info, mi.EnumType):
        return [member.value for member in info.cls]
    return None


def _unwrap(info: mi.Type) -> mi.Type:
    """Past metadata, and to the one member of an optional (``X | None``) that is not None."""
    while True:
        if isinstance(info, mi.Metadata):
            info = info.type
        elif isinstance(info, mi.UnionType):
            members = [t for t in info.types if type(t).__name__ not in ("NoneType", "UnsetType")]
            if len(members) != 1:
                return info
            info = members[0]
        else:
            return info
