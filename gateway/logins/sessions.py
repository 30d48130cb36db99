"""Login sessions: tokens, the atomic seat-limited login, touches and logout.

A session lives in the account's hash slot: ``<prefix><sid>`` holds the session (user,
hash of its secret), and a sorted set of the account's sessions scored by last use
counts seats. A token reads ``tgs_<tenant>.<account>.<sid>.<secret>``: the ids route a
lookup straight to the account's keys; only the secret's hash is stored.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import secrets
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib.resources import files
from typing import ParamSpec, TypeVar

from redis.exceptions import RedisError

from gateway.view.batcher import ScriptBatcher
from gateway.view.refs import SessionRef, StoreUnavailable
from shared import keys
from shared.credentials import hash_secret
from shared.entitlement import EntitlementRecord, RecordError, UserEntry, decode_user
from shared.redis_connection import RedisClient, RedisPipeline
from shared.sessions import SessionEntry, encode_session, end_session
from shared.states import UserStatus

TOKEN_PREFIX = "tgs_"
P = ParamSpec("P")
R = TypeVar("R")


def _translated(method: Callable[P, Awaitable[R]]) -> Callable[P, Awaitable[R]]:
    """Redis and socket errors become :class:`StoreUnavailable`."""

    @functools.wraps(method)
    async def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return await method(*args, **kwargs)
        except (RedisError, OSError) as exc:
            raise StoreUnavailable(str(exc)) from exc

    return wrapper


log = logging.getLogger(__name__)
USAGE_RETENTION_SECONDS = 35 * 86400
LOGIN_SCRIPT = files("gateway").joinpath("lua", "login.lua").read_text(encoding="utf-8")
END_USER_SESSIONS_SCRIPT = (
    files("gateway").joinpath("lua", "end_user_sessions.lua").read_text(encoding="utf-8")
)


def _valid_id(text: str, prefix: str) -> bool:
    return text.startswith(prefix) and 4 < len(text) <= 40 and text[len(prefix) :].isalnum()


def parse_token(token: str) -> tuple[SessionRef, str] | None:
    if not token.startswith(TOKEN_PREFIX) or len(token) > 300 or not token.isascii():
        return None
    parts = token[len(TOKEN_PREFIX) :].split(".")
    if len(parts) != 4:
        return None
    tenant_id, account_id, sid, secret = parts
    if not (_valid_id(tenant_id, "ten_") and _valid_id(account_id, "acc_")):
        return None
    if not (sid.isalnum() and 0 < len(sid) <= 40 and secret):
        return None
    return SessionRef(tenant_id, account_id, sid), secret


def parse_public_id(tenant_id: str, public_id: str) -> SessionRef | None:
    account_id, dot, sid = public_id.partition(".")
    if (
        not public_id.isascii()
        or not dot
        or not _valid_id(account_id, "acc_")
        or not sid.isalnum()
        or len(sid) > 40
    ):
        return None
    return SessionRef(tenant_id, account_id, sid)


def utc_day(now: float) -> str:
    return _day(int(now // 86400))


@functools.lru_cache(maxsize=8)
def _day(days_since_epoch: int) -> str:
    """Formatting a date costs more than a login's other bookkeeping: once per day."""
    return datetime.fromtimestamp(days_since_epoch * 86400, UTC).strftime("%Y-%m-%d")


@dataclass(frozen=True, kw_only=True, slots=True)
class LoginResult:
    created: bool
    live_sessions: int
    evicted: tuple[str, ...]
    ref: SessionRef | None = None
    token: str | None = None


class SessionStore:
    def __init__(self, client: RedisClient) -> None:
        self._client = client
        self._login = ScriptBatcher(client, LOGIN_SCRIPT)
        self._end_user = client.register_script(END_USER_SESSIONS_SCRIPT)

    @_translated
    async def login(self, record: EntitlementRecord, user_id: str, now: float) -> LoginResult:
        """Create a session if the account has a free seat (or may evict the oldest)."""
        ref = SessionRef(record.tenant_id, record.account_id, secrets.token_hex(12))
        secret = secrets.token_urlsafe(24)
        now_ms = int(now * 1000)
        day = utc_day(now)
        entry = SessionEntry(user_id=user_id, secret_hash=hash_secret(secret), created_ms=now_ms)
        limit = -1 if record.seat_limit is None else record.seat_limit
        result = await self._login.call(
            [
                ref.index,
                ref.key,
                keys.usage_key(ref.tenant_id, ref.account_id, day),
                keys.active_users_key(ref.tenant_id, ref.account_id, day),
            ],
            [
                now_ms,
                record.session_idle_seconds * 1000,
                limit,
                record.session_policy.value,
                ref.sid,
                encode_session(entry),
                keys.session_prefix(ref.tenant_id, ref.account_id),
                keys.INVALIDATION_CHANNEL,
                user_id,
                USAGE_RETENTION_SECONDS,
            ],
        )
        created, live, *evicted = (x.decode() if isinstance(x, bytes) else x for x in result)
        if not created:
            return LoginResult(created=False, live_sessions=int(live), evicted=())
        token = f"{TOKEN_PREFIX}{ref.tenant_id}.{ref.account_id}.{ref.sid}.{secret}"
        return LoginResult(
            created=True,
            live_sessions=int(live),
            evicted=tuple(f"{ref.account_id}.{sid}" for sid in evicted),
            ref=ref,
            token=token,
        )

    @_translated
    async def end(self, ref: SessionRef) -> bool:
        """Log out: free the seat and tell every gateway to forget the session."""
        return await end_session(self._client, ref.tenant_id, ref.account_id, ref.sid)

    @_translated
    async def end_user(self, user: UserEntry) -> int:
        """End the sessions of a user who may no longer sign in (disabled or removed)."""
        ended = await self._end_user(
            keys=[keys.sessions_key(user.tenant_id, user.account_id)],
            args=[
                keys.session_prefix(user.tenant_id, user.account_id),
                user.user_id,
                keys.INVALIDATION_CHANNEL,
            ],
        )
        return int(ended)

    @_translated
    async def touch(self, ref: SessionRef, idle_seconds: int, now: float) -> bool:
        """Extend the session's idle expiry now; False if it has already expired."""
        async with self._client.pipeline(transaction=False) as pipe:
            queue_touch(pipe, ref, idle_seconds, now)
            alive, *_ = await pipe.execute()
        return bool(alive)


def queue_touch(pipe: RedisPipeline, ref: SessionRef, idle_seconds: int, now: float) -> None:
    idle_ms = idle_seconds * 1000
    pipe.pexpire(ref.key, idle_ms)
    pipe.zadd(ref.index, {ref.sid: int(now * 1000)}, xx=True, gt=True)
    pipe.pexpire(ref.index, idle_ms)


class StoppedUsers:
    """Ends a user's sessions as soon as the worker publishes the user disabled or removed,
    so their seats are free at once (their next check would refuse them anyway)."""

    def __init__(self, client: RedisClient, sessions: SessionStore) -> None:
        self._client = client
        self._sessions = sessions
        self._tasks: set[asyncio.Task[None]] = set()

    def announced(self, key: str) -> None:
        """Called for each key the worker announces changed."""
        if not key.endswith(":user"):
            return
        task = asyncio.get_running_loop().create_task(self._check(key))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _check(self, key: str) -> None:
        try:
            raw = await self._client.get(key)
            if not isinstance(raw, bytes):
                return  # gone (a flush): nothing to end
            user = decode_user(raw)
            if user.status is UserStatus.ACTIVE:
                return
            ended = await self._sessions.end_user(user)
            if ended:
                log.info("sessions.ended_for_user user=%s sessions=%d", user.user_id, ended)
        except (RedisError, OSError, RecordError, StoreUnavailable) as exc:
            log.warning("sessions.end_user_failed key=%s error=%s", key, exc)
