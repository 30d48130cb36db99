"""Reading fields of a plain document (parsed YAML or JSON) with their paths: each read
checks one field and, when it is wrong, records a :class:`Problem` naming it and goes on,
so a whole document is checked in one pass (``CatalogError`` carries every problem)."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from enum import StrEnum
from typing import Any, TypeVar

from billing_worker.domain.catalog.model import (
    NAME,
    Prices,
)
from shared.money import Money, MoneyError


@dataclass(frozen=True, slots=True)
class Problem:
    path: str
    message: str

    def __str__(self) -> str:
        return f"{self.path}: {self.message}"


class CatalogError(ValueError):
    """The document is not a valid catalog; ``problems`` names each field and why."""

    def __init__(self, problems: Sequence[Problem]) -> None:
        self.problems = tuple(problems)
        super().__init__("; ".join(str(p) for p in self.problems[:5]))


E = TypeVar("E", bound=StrEnum)
T = TypeVar("T")


class FieldReader:
    """Walks the document, collecting problems instead of stopping at the first."""

    def __init__(self) -> None:
        self.problems: list[Problem] = []

    def fail(self, path: str, message: str) -> None:
        self.problems.append(Problem(path, message))

    def mapping(self, value: object, path: str, *, required: bool = True) -> Mapping[str, Any]:
        if value is None and not required:
            return {}
        if not isinstance(value, Mapping):
            self.fail(path, "must be a mapping" if value is not None else "is required")
            return {}
        return value

    def sequence(self, value: object, path: str) -> Sequence[Any]:
        if value is None:
            return ()
        if isinstance(value, str) or not isinstance(value, Sequence):
            self.fail(path, "must be a list")
            return ()
        return value

    def known_keys(self, node: Mapping[str, Any], path: str, allowed: Iterable[str]) -> None:
        allowed = set(allowed)
        for key in node:
            if key not in allowed:
                self.fail(
                    f"{path}.{key}",
                    f"is not a known field (expected one of: {', '.join(sorted(allowed))})",
                )

    def enum(self, kind: type[E], value: object, path: str, *, required: bool = True) -> E | None:
        if value is None:
            if required:
                self.fail(path, "is required")
            return None
        if isinstance(value, str) and value in kind._value2member_map_:
            return kind(value)
        choices = ", ".join(m.value for m in kind)
        self.fail(path, f"{value!r} is not one of: {choices}")
        return None

    def name(self, value: object, path: str) -> str | None:
        if not isinstance(value, str) or not NAME.match(value):
            self.fail(path, "must be a name of lowercase letters, digits, '_', '-' or '.'")
            return None
        return value

    def integer(self, value: object, path: str, *, minimum: int) -> int | None:
        if isinstance(value, bool) or not isinstance(value, int):
            self.fail(path, "must be a whole number")
            return None
        if value < minimum:
            self.fail(path, f"must be at least {minimum}")
            return None
        return value

    def prices(self, value: object, path: str, currencies: Sequence[str]) -> Prices | None:
        if value is None:
            return None
        node = self.mapping(value, path)
        prices: dict[str, Decimal] = {}
        for currency, amount in node.items():
            where = f"{path}.{currency}"
            if currency not in currencies:
                self.fail(where, f"{currency!r} is not one of the catalog's currencies")
                continue
            if isinstance(amount, float):
                self.fail(where, 'write the amount as a string or integer, e.g. "9.99"')
                continue
            try:
                money = Money.parse(str(amount), currency)
            except (MoneyError, InvalidOperation) as exc:
                self.fail(where, str(exc))
                continue
            if money.amount < 0:
                self.fail(where, "must not be negative")
                continue
            prices[currency] = money.amount
        return prices

    def each(
        self, value: object, path: str, read: Callable[[Mapping[str, Any], str], T | None]
    ) -> list[T]:
        out: list[T] = []
        for i, item in enumerate(self.sequence(value, path)):
            where = f"{path}[{i}]"
            parsed = read(self.mapping(item, where), where)
            if parsed is not None:
                out.append(parsed)
        return out
