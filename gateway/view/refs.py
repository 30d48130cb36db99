"""What the view and the session layer above it share: a session's place in Redis, and the
error a store raises when Redis does not answer in time."""

from __future__ import annotations

from dataclasses import dataclass

from shared import keys


class StoreUnavailable(Exception):
    """Redis could not be reached in time."""


@dataclass(frozen=True, slots=True)
class SessionRef:
    tenant_id: str
    account_id: str
    sid: str

    @property
    def key(self) -> str:
        return keys.session_prefix(self.tenant_id, self.account_id) + self.sid

    @property
    def index(self) -> str:
        return keys.sessions_key(self.tenant_id, self.account_id)

    @property
    def public_id(self) -> str:
        """What the API calls the session: unique within the tenant."""
        return f"{self.account_id}.{self.sid}"
