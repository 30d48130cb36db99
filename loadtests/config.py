"""Load-test configuration, read from the environment.

``TOLLGATE_LOADTEST_KEYS`` names the key file: the one ``tollgate seed`` writes
(``loadtests/keys.json``) or the demo's (``.tollgate/demo.json``), whichever exists first
when unset.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

CANDIDATES = ("loadtests/keys.json", ".tollgate/demo.json")


@dataclass(frozen=True, kw_only=True, slots=True)
class TenantUsers:
    gateway_key: str
    #: Sample users by standing: active, grace, degraded, suspended, cancelled.
    users: dict[str, tuple[str, ...]]

    def allowed(self) -> tuple[str, ...]:
        """Users whose logins and page views are allowed (degraded ones read-only)."""
        return sum((self.users.get(s, ()) for s in ("active", "grace", "degraded")), ())

    def denied(self) -> tuple[str, ...]:
        return self.users.get("suspended", ()) + self.users.get("cancelled", ())


@dataclass(frozen=True, kw_only=True, slots=True)
class LoadConfig:
    tenants: tuple[TenantUsers, ...]


def _path() -> Path:
    named = os.environ.get("TOLLGATE_LOADTEST_KEYS")
    if named:
        return Path(named)
    for candidate in CANDIDATES:
        if Path(candidate).exists():
            return Path(candidate)
    raise SystemExit(
        "no key file: run `tollgate seed` (or `./dev.sh run` for the demo), "
        "or set TOLLGATE_LOADTEST_KEYS"
    )


def load_config() -> LoadConfig:
    path = _path()
    try:
        document = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise SystemExit(f"cannot read the key file {path}: {exc}") from exc
    if "tenants" in document:  # written by `tollgate seed`
        tenants = tuple(
            TenantUsers(
                gateway_key=t["gateway_key"],
                users={k: tuple(v) for k, v in t["users"].items() if ":" not in k},
            )
            for t in document["tenants"]
        )
    else:  # the demo of `tollgate up`
        tenants = (
            TenantUsers(
                gateway_key=document["gateway_key"],
                users={
                    "active": (document["allowed_user"],),
                    "suspended": (document["denied_user"],),
                },
            ),
        )
    if not all(t.allowed() for t in tenants):
        raise SystemExit(f"{path} lists no allowed users to log in with")
    return LoadConfig(tenants=tenants)
