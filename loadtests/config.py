"""Load-test configuration, read from the environment.

``TOLLGATE_LOADTEST_KEYS`` names the key file: by default the demo written by ``tollgate up``
(``.tollgate/demo.json``).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True, kw_only=True, slots=True)
class LoadConfig:
    gateway_key: str
    allowed_users: tuple[str, ...]
    denied_users: tuple[str, ...]
    unknown_users: tuple[str, ...]


def load_config() -> LoadConfig:
    path = Path(os.environ.get("TOLLGATE_LOADTEST_KEYS", ".tollgate/demo.json"))
    try:
        demo = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise SystemExit(
            f"cannot read the key file {path}: {exc}; run `./dev.sh run` first"
        ) from exc
    return LoadConfig(
        gateway_key=demo["gateway_key"],
        allowed_users=(demo["allowed_user"],),
        denied_users=(demo["denied_user"],),
        unknown_users=("nobody@nowhere.test",),
    )
