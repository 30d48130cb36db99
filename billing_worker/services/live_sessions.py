"""An account's live login sessions, read from the Redis view the gateways keep them in."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import cast

from billing_worker.db.models import Account
from shared import keys
from shared.entitlement import RecordError
from shared.redis_connection import RedisClient
from shared.sessions import decode_session

#: At most this many sessions are listed, most recently used first.
LISTED = 200


@dataclass(frozen=True, slots=True)
class LiveSession:
    #: As the gateway's session API names it: ``<account id>.<session id>``.
    id: str
    user_id: str
    created_at: datetime
    last_used_at: datetime


def _instant(ms: float) -> datetime:
    return datetime.fromtimestamp(ms / 1000, UTC)


async def live_sessions(client: RedisClient, account: Account) -> list[LiveSession]:
    """The account's live sessions, most recently used first."""
    ranked = cast(
        list[tuple[bytes, float]],
        await client.zrevrange(
            keys.sessions_key(account.tenant_id, account.id), 0, LISTED - 1, withscores=True
        ),
    )
    prefix = keys.session_prefix(account.tenant_id, account.id)
    sids = [sid.decode() for sid, _ in ranked]
    entries = cast(
        list[bytes | None], await client.mget([prefix + s for s in sids]) if sids else []
    )
    out = []
    for sid, (_, used_ms), raw in zip(sids, ranked, entries, strict=True):
        if raw is None:
            continue  # expired since it was last used: the gateway forgets it
        try:
            entry = decode_session(raw)
        except RecordError:
            continue
        out.append(LiveSession(id=f"{account.id}.{sid}", user_id=entry.user_id,
                               created_at=_instant(entry.created_ms),
                               last_used_at=_instant(float(used_ms))))  # fmt: skip
    return out
