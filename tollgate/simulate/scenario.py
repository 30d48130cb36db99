"""The scenario format: a catalog, accounts and dated steps with expectations.

A scenario is read whole and every problem is reported with its path (``steps[3].do``),
like a catalog upload, so an author fixes a file in one pass. See ``docs/scenarios.md``.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, time
from pathlib import Path
from typing import Any

import yaml

#: Each action, the arguments it requires and the ones it also accepts.
ACTIONS: Mapping[str, tuple[frozenset[str], frozenset[str]]] = {
    "subscribe": (
        frozenset({"account", "plan"}),
        frozenset(
            {
                "as",
                "price_list",
                "quantity",
                "start_date",
                "entitlement_start",
                "billing_start",
                "cycle_day",
                "base",
                "price_overrides",
                "dry_run",
            }
        ),
    ),
    "change_plan": (
        frozenset({"subscription", "plan"}),
        frozenset({"price_list", "policy", "price_overrides", "dry_run"}),
    ),
    "cancel": (
        frozenset({"subscription"}),
        frozenset({"entitlement_policy", "entitlement_date", "billing_policy", "dry_run"}),
    ),
    "uncancel": (frozenset({"subscription"}), frozenset()),
    "pause": (frozenset({"subscription"}), frozenset({"start_date", "resume_date", "dry_run"})),
    "resume": (frozenset({"subscription"}), frozenset({"resume_date", "dry_run"})),
    "set_quantity": (
        frozenset({"subscription", "quantity"}),
        frozenset({"effective_date", "dry_run"}),
    ),
    "record_usage": (
        frozenset({"subscription", "name", "units"}),
        frozenset({"day", "record_id"}),
    ),
    "invoice": (frozenset({"account"}), frozenset({"target_date", "dry_run"})),
    "commit_draft": (frozenset({"account"}), frozenset()),
    "pay": (frozenset({"account", "amount"}), frozenset({"method", "reference"})),
    "upload_catalog": (frozenset({"catalog"}), frozenset()),
    "update_tenant": (frozenset({"settings"}), frozenset()),
    "update_account": (frozenset({"account", "settings"}), frozenset()),
    "login": (frozenset({"users"}), frozenset()),
    "set_dunning_policy": (frozenset({"name", "policy"}), frozenset()),
    "add_payment_method": (frozenset({"account", "token"}), frozenset({"label", "default"})),
    "payment_fails": (frozenset({"account"}), frozenset({"reason"})),
    "suspend": (frozenset({"account"}), frozenset({"reason"})),
    "reinstate": (frozenset({"account"}), frozenset()),
    "exempt": (frozenset({"account"}), frozenset({"exempt"})),
    "exempt_subscription": (frozenset({"subscription"}), frozenset({"exempt"})),
    "write_off": (frozenset({"account"}), frozenset({"reason"})),
    "undo_write_off": (frozenset({"account"}), frozenset({"reason"})),
    "void": (frozenset({"account"}), frozenset({"reason"})),
    "credit": (frozenset({"account", "amount"}), frozenset({"reason"})),
    "charge": (frozenset({"account", "amount", "description"}), frozenset({"draft"})),
    "adjust_item": (frozenset({"account", "amount"}), frozenset({"kind", "period", "reason"})),
    "refund": (frozenset({"account", "amount"}), frozenset({"reason", "adjust"})),
}

EXPECTATIONS = frozenset(
    {"invoices", "preview", "account", "accounts", "authorize", "subscription", "logins", "error",
     "messages", "attempts", "dunning", "standing_history"}
)  # fmt: skip

ACCOUNT_FIELDS = frozenset(
    {"currency", "timezone", "cycle_day", "kind", "parent", "payment_delegated", "price_list",
     "net_terms_days", "users", "email", "collection", "invoicing", "dunning_policy",
     "payment_method"}
)  # fmt: skip

#: Steps given as a date run at noon UTC: the same local date from UTC-11 to UTC+11.
NOON = time(12, tzinfo=UTC)


class ScenarioError(ValueError):
    def __init__(self, source: str, problems: list[str]) -> None:
        super().__init__(f"{source}: " + "; ".join(problems))
        self.source = source
        self.problems = problems


@dataclass(frozen=True, slots=True)
class AccountSpec:
    name: str
    fields: Mapping[str, Any]
    parent: str | None
    users: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Step:
    index: int
    at: datetime
    action: str | None
    args: Mapping[str, Any]
    expect: Mapping[str, Any]
    note: str | None
    #: Move the clock to this step in one go, with the worker awake all along (as a test
    #: clock does), rather than a day at a time.
    jump: bool = False
    #: Move the clock to this step in one go with the worker *down* meanwhile: what it
    #: missed is billed as if on time, but the customer hears of it from now.
    outage: bool = False

    @property
    def day(self) -> date:
        return self.at.date()


@dataclass(frozen=True, slots=True)
class Scenario:
    name: str
    source: str
    start: datetime
    tenant: Mapping[str, Any]
    catalog: Mapping[str, Any] | None
    accounts: Mapping[str, AccountSpec]
    steps: tuple[Step, ...]
    description: str = ""


def load_scenario(path: Path, *, include_root: Path | None = None) -> Scenario:
    """Read a scenario file. A catalog may be named as a file (``catalog: plans.yaml``) that
    lies inside ``include_root``: the scenario's own folder unless another is given."""
    return _load(path, include_root or path.parent)


def read_inline_scenario(path: Path) -> Scenario:
    """Read a scenario that may name no other file (one submitted through the console):
    every catalog is written inline."""
    return _load(path, None)


def _load(path: Path, include_root: Path | None) -> Scenario:
    try:
        document = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        raise ScenarioError(str(path), [f"not valid YAML ({yaml_problem(exc)})"]) from exc
    except (OSError, UnicodeDecodeError) as exc:
        raise ScenarioError(str(path), [f"cannot be read ({_os_problem(exc)})"]) from exc
    if isinstance(document, dict):
        problems: list[str] = []
        if isinstance(document.get("catalog"), str):
            document["catalog"] = _included(
                path, document["catalog"], "catalog", include_root, problems
            )
        for n, step in enumerate(document.get("steps") or []):
            if isinstance(step, dict) and isinstance(step.get("catalog"), str):
                step["catalog"] = _included(
                    path, step["catalog"], f"steps[{n}].catalog", include_root, problems
                )
        if problems:
            raise ScenarioError(str(path), problems)
    return parse_scenario(document, str(path))


def _included(scenario: Path, name: str, where: str, root: Path | None, problems: list[str]) -> Any:
    """The document a catalog file holds. Errors name the file as the scenario wrote it —
    never the path it resolved to, and never a line of what it holds."""
    if root is None:
        problems.append(f"{where}: name no file here; write the catalog inline (a mapping)")
        return None
    included = (scenario.parent / name).resolve()
    if not included.is_relative_to(root.resolve()):
        problems.append(
            f"{where}: {name!r} is outside the scenario's folder; a catalog file lies beside "
            "the scenario (tollgate simulate --include-root DIR allows another folder)"
        )
        return None
    try:
        return yaml.safe_load(included.read_text())
    except yaml.YAMLError as exc:
        problems.append(f"{where}: {name!r} is not valid YAML ({yaml_problem(exc, lines=False)})")
    except (OSError, UnicodeDecodeError) as exc:
        problems.append(f"{where}: cannot read {name!r} ({_os_problem(exc)})")
    return None


def yaml_problem(exc: yaml.YAMLError, *, lines: bool = True) -> str:
    """Where a YAML document breaks and, with ``lines``, what the parser found there — never
    the file's name or a quoted line of it."""
    mark = getattr(exc, "problem_mark", None)
    where = f"line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
    problem = getattr(exc, "problem", None)
    if lines and problem:
        return f"{where}: {problem}" if where else str(problem)
    return where or "it does not parse"


def _os_problem(exc: OSError | UnicodeDecodeError) -> str:
    if isinstance(exc, UnicodeDecodeError):
        return "not UTF-8 text"
    return os.strerror(exc.errno).lower() if exc.errno else "unreadable"


def _moment(value: Any) -> datetime | None:
    if isinstance(value, str):
        try:
            value = date.fromisoformat(value) if len(value) == 10 else datetime.fromisoformat(value)
        except ValueError:
            return None
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    if isinstance(value, date):
        return datetime.combine(value, NOON)
    return None


def parse_scenario(document: Any, source: str) -> Scenario:
    problems: list[str] = []
    if not isinstance(document, dict):
        raise ScenarioError(source, ["a scenario is a mapping with name, start, accounts, steps"])
    unknown = set(document) - {"name", "description", "start", "tenant", "catalog", "accounts",
                               "steps"}  # fmt: skip
    problems += [f"{key}: unknown key" for key in sorted(unknown)]
    name = document.get("name")
    if not isinstance(name, str) or not name:
        problems.append("name: required, a short title")
    start = _moment(document.get("start"))
    if start is None:
        problems.append("start: required, a date (YYYY-MM-DD) or a timestamp")
    tenant = document.get("tenant") or {}
    if not isinstance(tenant, dict):
        problems.append("tenant: must be a mapping of tenant settings")
        tenant = {}
    catalog = document.get("catalog")
    if catalog is not None and not isinstance(catalog, dict):
        problems.append("catalog: must be a catalog document (a mapping)")
        catalog = None
    accounts = _accounts(document.get("accounts"), problems)
    steps = _steps(document.get("steps"), start, accounts, problems)
    if problems:
        raise ScenarioError(source, problems)
    assert isinstance(name, str)
    assert start is not None
    return Scenario(
        name=name,
        source=source,
        start=start,
        tenant=tenant,
        catalog=catalog,
        accounts=accounts,
        steps=tuple(steps),
        description=str(document.get("description") or "").strip(),
    )


def _accounts(raw: Any, problems: list[str]) -> dict[str, AccountSpec]:
    if not isinstance(raw, dict) or not raw:
        problems.append("accounts: required, a mapping of account name to its settings")
        return {}
    accounts: dict[str, AccountSpec] = {}
    for name, spec in raw.items():
        where = f"accounts.{name}"
        spec = spec or {}
        if not isinstance(spec, dict):
            problems.append(f"{where}: must be a mapping")
            continue
        problems += [f"{where}.{k}: unknown key" for k in sorted(set(spec) - ACCOUNT_FIELDS)]
        users = spec.get("users", [])
        if not isinstance(users, list) or not all(isinstance(u, str) for u in users):
            problems.append(f"{where}.users: must be a list of user ids")
            users = []
        parent = spec.get("parent")
        fields = {k: v for k, v in spec.items() if k not in {"users", "parent"}}
        accounts[str(name)] = AccountSpec(str(name), fields, parent, tuple(users))
    order = list(accounts)
    for name, spec in accounts.items():
        if spec.parent is None:
            continue
        if spec.parent not in accounts:
            problems.append(f"accounts.{name}.parent: no account {spec.parent!r} in this scenario")
        elif order.index(spec.parent) > order.index(name):
            problems.append(f"accounts.{name}.parent: declare {spec.parent!r} before its children")
    seen: dict[str, str] = {}
    for name, spec in accounts.items():
        for user in spec.users:
            if user in seen:
                problems.append(f"accounts.{name}.users: {user!r} already belongs to {seen[user]}")
            seen[user] = name
    return accounts


def _steps(
    raw: Any, start: datetime | None, accounts: Mapping[str, AccountSpec], problems: list[str]
) -> list[Step]:
    if not isinstance(raw, list) or not raw:
        problems.append("steps: required, a list of dated steps")
        return []
    steps: list[Step] = []
    previous = start
    for index, entry in enumerate(raw):
        where = f"steps[{index}]"
        if not isinstance(entry, dict):
            problems.append(f"{where}: must be a mapping")
            continue
        entry = dict(entry)
        if True in entry:  # YAML 1.1 reads a bare ``on`` key as the boolean true
            entry["on"] = entry.pop(True)
        when_raw = entry.pop("at", None) if "at" in entry else entry.pop("on", None)
        entry.pop("on", None)
        at = _moment(when_raw)
        if at is None:
            problems.append(f"{where}.on: required, the step's date (or 'at' with a timestamp)")
            continue
        if previous is not None and at < previous:
            problems.append(f"{where}.on: {at:%Y-%m-%d %H:%M} is before the previous step")
        previous = at
        action = entry.pop("do", None)
        expect = entry.pop("expect", None) or {}
        note = entry.pop("note", None)
        jump = _flag(entry.pop("jump", False), f"{where}.jump", problems)
        outage = _flag(entry.pop("outage", False), f"{where}.outage", problems)
        if jump and outage:
            problems.append(f"{where}: a step is a jump or an outage, not both")
        if not isinstance(expect, dict):
            problems.append(f"{where}.expect: must be a mapping")
            expect = {}
        problems += [
            f"{where}.expect.{k}: unknown expectation (one of {', '.join(sorted(EXPECTATIONS))})"
            for k in sorted(set(expect) - EXPECTATIONS)
        ]
        problems += [
            f"{path}: a float; write amounts as quoted decimals such as '31.00'"
            for path in _floats(expect, f"{where}.expect")
        ]
        if action is None:
            problems += [f"{where}.{k}: only an action takes arguments" for k in sorted(entry)]
        else:
            problems += _arguments(where, action, entry, accounts)
        steps.append(Step(index, at, action, entry, expect, note, jump, outage))
    return steps


def _arguments(
    where: str, action: Any, entry: Mapping[str, Any], accounts: Mapping[str, AccountSpec]
) -> list[str]:
    """What is wrong with one step's action and its arguments."""
    if action not in ACTIONS:
        return [f"{where}.do: unknown action {action!r} (one of {', '.join(ACTIONS)})"]
    required, optional = ACTIONS[action]
    problems = [f"{where}.{k}: required by {action}" for k in sorted(required - set(entry))]
    problems += [
        f"{where}.{k}: {action} takes no {k!r}" for k in sorted(set(entry) - required - optional)
    ]
    account = entry.get("account")
    if account is not None and account not in accounts:
        problems.append(f"{where}.account: no account {account!r} in this scenario")
    if action == "upload_catalog" and not isinstance(entry.get("catalog"), dict):
        problems.append(f"{where}.catalog: a catalog document (a mapping)")
    if action == "pay" and not isinstance(entry.get("amount"), str):
        problems.append(f"{where}.amount: a quoted decimal such as '49.00', or 'balance'")
    return problems


def _flag(value: Any, where: str, problems: list[str]) -> bool:
    if not isinstance(value, bool):
        problems.append(f"{where}: true or false")
        return False
    return value


def _floats(value: Any, path: str) -> list[str]:
    """Paths of float values: YAML reads an unquoted 31.00 as a float, never money."""
    if isinstance(value, float):
        return [path]
    if isinstance(value, dict):
        return [p for k, v in value.items() for p in _floats(v, f"{path}.{k}")]
    if isinstance(value, list):
        return [p for n, v in enumerate(value) for p in _floats(v, f"{path}[{n}]")]
    return []
