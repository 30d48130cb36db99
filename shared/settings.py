"""Helpers for reading one frozen settings object per process from the environment.

Settings are built once, in ``__main__`` (or by a test from a plain dict); errors name
the environment variable; secrets are wrapped so a ``repr`` never shows them.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from typing import Final

ENV_PREFIX: Final = "TOLLGATE_"
#: The database every command uses unless told otherwise: the one ``tollgate up`` (and
#: ``./dev.sh run``) creates in its default state directory.
DEFAULT_DATABASE_URL: Final = "sqlite:///.tollgate/tollgate.db"


class SettingsError(ValueError):
    """A setting is missing or malformed."""


class Secret:
    """A string that never shows itself in ``repr`` or ``str``."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "Secret('**********')"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)

    def __bool__(self) -> bool:
        return bool(self._value)


Network = ipaddress.IPv4Network | ipaddress.IPv6Network


class Env:
    """Typed reads of ``TOLLGATE_*`` variables from a mapping."""

    def __init__(self, environ: Mapping[str, str], prefix: str = ENV_PREFIX) -> None:
        self._environ = environ
        self._prefix = prefix

    def name(self, key: str) -> str:
        return f"{self._prefix}{key}"

    def text(self, key: str, default: str | None = None) -> str:
        value = self._environ.get(self.name(key))
        if value is None or value == "":
            if default is None:
                raise SettingsError(f"{self.name(key)} is required")
            return default
        return value

    def networks(self, key: str, default: str = "") -> tuple[Network, ...]:
        """A comma-separated list of CIDR networks (``10.0.0.0/8, ::1/128``)."""
        text = self._environ.get(self.name(key)) or default
        try:
            return tuple(ipaddress.ip_network(p.strip()) for p in text.split(",") if p.strip())
        except ValueError as exc:
            raise SettingsError(f"{self.name(key)}: {exc}") from None

    def optional(self, key: str) -> str | None:
        value = self._environ.get(self.name(key))
        return value or None

    def integer(self, key: str, default: int, *, minimum: int = 0, maximum: int = 2**31) -> int:
        raw = self._environ.get(self.name(key))
        if raw is None or raw == "":
            return default
        try:
            value = int(raw)
        except ValueError:
            raise SettingsError(f"{self.name(key)} must be an integer, got {raw!r}") from None
        if not minimum <= value <= maximum:
            raise SettingsError(f"{self.name(key)} must be between {minimum} and {maximum}")
        return value

    def number(self, key: str, default: float, *, minimum: float = 0.0) -> float:
        raw = self._environ.get(self.name(key))
        if raw is None or raw == "":
            return default
        try:
            value = float(raw)
        except ValueError:
            raise SettingsError(f"{self.name(key)} must be a number, got {raw!r}") from None
        if value < minimum:
            raise SettingsError(f"{self.name(key)} must be >= {minimum}")
        return value

    def flag(self, key: str, default: bool = False) -> bool:
        raw = self._environ.get(self.name(key))
        if raw is None or raw == "":
            return default
        lowered = raw.strip().lower()
        if lowered in ("1", "true", "yes", "on"):
            return True
        if lowered in ("0", "false", "no", "off"):
            return False
        raise SettingsError(f"{self.name(key)} must be true or false, got {raw!r}")

    def secret(self, key: str, default: str | None = None) -> Secret:
        return Secret(self.text(key, default))
