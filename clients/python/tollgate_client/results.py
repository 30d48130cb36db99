"""What the gateway answers, as plain values, and the errors the clients raise."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


class TollgateError(Exception):
    """Tollgate answered with an error; ``problem`` is its problem+json body."""

    def __init__(self, status: int, problem: dict[str, Any]) -> None:
        self.status = status
        self.problem = problem
        detail = problem.get("detail") or problem.get("title") or f"HTTP {status}"
        super().__init__(f"{status} {problem.get('code', 'error')}: {detail}")


class Unavailable(TollgateError):
    """Tollgate could not be reached, or said it cannot answer now (503)."""

    def __init__(self, reason: str) -> None:
        super().__init__(503, {"code": "unavailable", "detail": reason})


@dataclass(frozen=True, slots=True)
class Decision:
    """The answer to "may this user log in (or use this feature) now?"."""

    allow: bool
    reason: str
    user: str
    account: str | None = None
    standing: str | None = None
    plan: str | None = None
    features: tuple[str, ...] = ()
    valid_until: str | None = None
    #: Served from the client's memory while the gateway was unreachable (seconds old).
    stale_seconds: float | None = None

    @classmethod
    def from_body(cls, body: dict[str, Any]) -> Decision:
        return cls(
            allow=bool(body["allow"]),
            reason=str(body["reason"]),
            user=str(body["user"]),
            account=body.get("account"),
            standing=body.get("standing"),
            plan=body.get("plan"),
            features=tuple(body.get("features") or ()),
            valid_until=body.get("valid_until"),
        )


@dataclass(frozen=True, slots=True)
class Login:
    """A login attempt: a session (``token`` to hand to the browser) or the reason why not."""

    created: bool
    reason: str | None = None
    token: str | None = None
    session_id: str | None = None
    live_sessions: int | None = None
    body: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Check:
    """A session checked as the reverse-proxy endpoint checks it: 200, 401 or 403."""

    status: int
    reason: str | None = None
    #: ``X-Tollgate-*`` identity headers of an allowed session, by lower-case name.
    identity: dict[str, str] = field(default_factory=dict)

    @property
    def allowed(self) -> bool:
        return self.status == 200

    @property
    def user(self) -> str | None:
        return self.identity.get("x-tollgate-user")

    @property
    def read_only(self) -> bool:
        return self.identity.get("x-tollgate-read-only") == "true"
