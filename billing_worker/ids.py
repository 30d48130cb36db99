"""Prefixed random identifiers (``acc_3f9c...``): unguessable, sortable by nothing."""

from __future__ import annotations

import secrets


def new_id(prefix: str) -> str:
    return f"{prefix}_{secrets.token_hex(10)}"
