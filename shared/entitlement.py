"""The entitlement record: what one account may do, as the gateway reads it from Redis.

One record per account, msgpack-encoded as a map (schema v1). The billing worker
builds it; the gateway only decodes it. ``version`` increases with every change so
that the compare-and-set in Redis never lets an older record replace a newer one.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import msgpack

from shared.states import SessionPolicy, Standing, UserStatus

SCHEMA = 1


class RecordError(ValueError):
    """A stored record could not be decoded."""


@dataclass(frozen=True, kw_only=True, slots=True)
class EntitlementRecord:
    """What one account may do right now, and until when.

    ``valid_until`` is a UNIX timestamp (seconds) after which the record must not be
    trusted to allow anything: the end of the paid or trial period, or the moment the
    account's standing would worsen with no further event. ``None`` means no bound.
    """

    tenant_id: str
    account_id: str
    version: int
    standing: Standing
    reason: str
    valid_until: int | None = None
    seat_limit: int | None = None
    session_policy: SessionPolicy = SessionPolicy.DENY_NEW
    features: tuple[str, ...] = field(default_factory=tuple)
    plan: str | None = None
    #: In ``degraded`` standing, allow only safe methods (GET, HEAD, OPTIONS) at the proxy.
    read_only: bool = False
    #: Sessions expire after this long without use.
    session_idle_seconds: int = 1800
    #: With Redis unreachable, a gateway may serve this record for so long (0: fail closed).
    fail_open_seconds: int = 0
    #: What the account becomes at ``valid_until`` as far as the worker knows (None: not
    #: known): a gateway reports it when it enforces ``valid_until`` before the worker's
    #: next record arrives.
    lapse_standing: Standing | None = None
    lapse_reason: str | None = None

    def __post_init__(self) -> None:
        if self.version < 1:
            raise RecordError("version must be >= 1")
        if self.seat_limit is not None and self.seat_limit < 0:
            raise RecordError("seat_limit must be >= 0")
        if self.session_idle_seconds < 1 or self.fail_open_seconds < 0:
            raise RecordError("session_idle_seconds must be >= 1, fail_open_seconds >= 0")


@dataclass(frozen=True, kw_only=True, slots=True)
class UserEntry:
    """The user index: which account an end user belongs to, and the user's own status."""

    tenant_id: str
    user_id: str
    account_id: str
    status: UserStatus
    version: int


def encode_record(record: EntitlementRecord) -> bytes:
    payload: dict[str, Any] = {
        "schema": SCHEMA,
        "tenant": record.tenant_id,
        "account": record.account_id,
        "version": record.version,
        "standing": record.standing.value,
        "reason": record.reason,
        "valid_until": record.valid_until,
        "seat_limit": record.seat_limit,
        "session_policy": record.session_policy.value,
        "features": list(record.features),
        "plan": record.plan,
        "read_only": record.read_only,
        "session_idle": record.session_idle_seconds,
        "fail_open": record.fail_open_seconds,
    }
    if record.lapse_standing is not None:
        payload["lapse"] = [record.lapse_standing.value, record.lapse_reason]
    return bytes(msgpack.packb(payload, use_bin_type=True))


def decode_record(data: bytes) -> EntitlementRecord:
    try:
        raw = msgpack.unpackb(data, raw=False)
        if raw.get("schema") != SCHEMA:
            raise RecordError(f"unsupported record schema {raw.get('schema')!r}")
        return EntitlementRecord(
            tenant_id=raw["tenant"],
            account_id=raw["account"],
            version=int(raw["version"]),
            standing=Standing(raw["standing"]),
            reason=raw["reason"],
            valid_until=raw["valid_until"],
            seat_limit=raw["seat_limit"],
            session_policy=SessionPolicy(raw["session_policy"]),
            features=tuple(raw["features"]),
            plan=raw.get("plan"),
            read_only=bool(raw.get("read_only", False)),
            session_idle_seconds=int(raw.get("session_idle", 1800)),
            fail_open_seconds=int(raw.get("fail_open", 0)),
            lapse_standing=Standing(lapse[0]) if (lapse := raw.get("lapse")) else None,
            lapse_reason=lapse[1] if lapse else None,
        )
    except (KeyError, TypeError, ValueError, AttributeError, msgpack.UnpackException) as exc:
        raise RecordError(f"undecodable entitlement record: {exc}") from exc


def encode_user(entry: UserEntry) -> bytes:
    payload = {
        "schema": SCHEMA,
        "tenant": entry.tenant_id,
        "user": entry.user_id,
        "account": entry.account_id,
        "status": entry.status.value,
        "version": entry.version,
    }
    return bytes(msgpack.packb(payload, use_bin_type=True))


def decode_user(data: bytes) -> UserEntry:
    try:
        raw = msgpack.unpackb(data, raw=False)
        if raw.get("schema") != SCHEMA:
            raise RecordError(f"unsupported user entry schema {raw.get('schema')!r}")
        return UserEntry(
            tenant_id=raw["tenant"],
            user_id=raw["user"],
            account_id=raw["account"],
            status=UserStatus(raw["status"]),
            version=int(raw["version"]),
        )
    except (KeyError, TypeError, ValueError, AttributeError, msgpack.UnpackException) as exc:
        raise RecordError(f"undecodable user entry: {exc}") from exc
