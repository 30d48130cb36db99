"""Secrets Tollgate must be able to read back (webhook signing secrets) are stored sealed.

Keys are stored as hashes; a webhook secret cannot be, since Tollgate signs with it. So
columns typed ``Sealed`` are encrypted with the operator's key (``TOLLGATE_SECRETS_KEY``,
Fernet: AES-128-CBC with an HMAC) before they reach the database, and decrypted when read.
Several comma-separated keys rotate: the first seals, any of them opens. A value stored
before a key was configured stays readable and is sealed when ``seal_existing`` runs (the
worker does at start). Without a key, values are stored as they are and the worker warns.
"""

from __future__ import annotations

import logging

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from sqlalchemy import String, text
from sqlalchemy.engine import Dialect
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlalchemy.types import TypeDecorator

log = logging.getLogger(__name__)

PREFIX = "sealed:v1:"


class SealingError(ValueError):
    """A sealed value could not be opened with the configured keys."""


class _Keyring:
    def __init__(self) -> None:
        self.fernet: MultiFernet | None = None
        self.first: Fernet | None = None

    def configure(self, keys: str | None) -> None:
        """Use these comma-separated Fernet keys (None: store values unsealed)."""
        if not keys:
            self.fernet = self.first = None
            return
        try:
            each = [Fernet(k.strip()) for k in keys.split(",") if k.strip()]
            self.fernet, self.first = MultiFernet(each), each[0]
        except (ValueError, IndexError) as exc:
            raise SealingError(
                "TOLLGATE_SECRETS_KEY must be Fernet keys (32 url-safe base64-encoded bytes; "
                "make one with `tollgate secrets-key`)"
            ) from exc


KEYRING = _Keyring()


def configure(keys: str | None) -> None:
    KEYRING.configure(keys)


def new_key() -> str:
    return Fernet.generate_key().decode()


def seal(value: str) -> str:
    if KEYRING.fernet is None or value.startswith(PREFIX):
        return value
    return PREFIX + KEYRING.fernet.encrypt(value.encode()).decode()


def open_sealed(value: str) -> str:
    if not value.startswith(PREFIX):
        return value  # stored before sealing was configured
    if KEYRING.fernet is None:
        raise SealingError("a sealed secret was read, but TOLLGATE_SECRETS_KEY is not set")
    try:
        return KEYRING.fernet.decrypt(value[len(PREFIX) :].encode()).decode()
    except InvalidToken as exc:
        raise SealingError("a sealed secret does not open with TOLLGATE_SECRETS_KEY") from exc


class Sealed(TypeDecorator[str]):
    """A text column whose values are sealed at rest (see the module)."""

    impl = String(400)
    cache_ok = True

    def process_bind_param(self, value: str | None, dialect: Dialect) -> str | None:
        return None if value is None else seal(value)

    def process_result_value(self, value: str | None, dialect: Dialect) -> str | None:
        return None if value is None else open_sealed(value)


#: The columns ``Sealed`` protects, by table (raw SQL reads them as stored).
SEALED_COLUMNS = {
    "tenants": (
        "webhook_secret",
        "provider_webhook_secret",
        "stripe_secret_key",
        "stripe_webhook_secret",
    ),
    "webhook_endpoints": ("secret",),
}


async def seal_existing(sessions: async_sessionmaker[AsyncSession]) -> int:
    """Seal what was stored before a key was configured (or under a key since rotated
    out of first place); returns how many values were (re)sealed."""
    if KEYRING.fernet is None:
        return 0
    changed = 0
    async with sessions() as session, session.begin():
        for table, columns in SEALED_COLUMNS.items():
            listed = ", ".join(columns)
            rows = (await session.execute(text(f"SELECT id, {listed} FROM {table}"))).all()
            for row in rows:
                for column, stored in zip(columns, row[1:], strict=True):
                    if stored is None or _current(stored):
                        continue
                    await session.execute(
                        text(f"UPDATE {table} SET {column} = :value WHERE id = :id"),
                        {"value": PREFIX + _encrypt(open_sealed(stored)), "id": row[0]},
                    )
                    changed += 1
    if changed:
        log.info("secrets.sealed values=%d", changed)
    return changed


def _current(stored: str) -> bool:
    """Sealed with the first key already."""
    if not stored.startswith(PREFIX) or KEYRING.first is None:
        return False
    try:
        KEYRING.first.decrypt(stored[len(PREFIX) :].encode())
    except InvalidToken:
        return False
    return True


def _encrypt(value: str) -> str:
    assert KEYRING.fernet is not None
    return KEYRING.fernet.encrypt(value.encode()).decode()
