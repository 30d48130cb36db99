"""Pure comparisons for the scenario runner: expectations against what the API answered,
and the facts a snapshot keeps of invoices and messages."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from datetime import date
from typing import Any


class Mismatch(Exception):
    """An expectation that did not hold, or an action the API refused unexpectedly."""


def json_default(value: object) -> str:
    if isinstance(value, date):
        return value.isoformat()
    raise TypeError(f"cannot encode {type(value).__name__}")


def plain(value: Any) -> Any:
    """YAML values as the API renders them: dates as ISO strings."""
    return json.loads(json.dumps(value, default=json_default))


MESSAGE_FIELDS = ("standing", "reason", "days_past_due", "balance_due", "decline_reason",
                   "amount")  # fmt: skip
ACCOUNT_FACTS = ("standing", "standing_reason", "balance_due", "credit")


def invoice_facts(invoice: Mapping[str, Any]) -> tuple[Any, ...]:
    items = sorted(
        (i["kind"], i["start_date"], i["end_date"], i["amount"], i.get("plan") or "")
        for i in invoice["items"]
    )
    return (invoice["invoice_date"], invoice["issued_at"], invoice["due_at"], invoice["status"],
            invoice["total"], invoice["balance"], tuple(items))  # fmt: skip


def message_facts(message: Mapping[str, Any]) -> tuple[Any, ...]:
    payload = message["payload"]
    return (message["created_at"], message["kind"],
            *(str(payload.get(k)) for k in MESSAGE_FIELDS))  # fmt: skip


def check_counts(what: str, wanted: Mapping[str, int], found: list[str]) -> None:
    """Each listed kind occurs exactly that many times (kinds not listed: any number)."""
    for kind, count in wanted.items():
        if found.count(kind) != count:
            raise Mismatch(f"{what}: expected {count} {kind}, found {found.count(kind)} "
                           f"(all: {', '.join(found) or 'none'})")  # fmt: skip


def problem(body: Any) -> str:
    if isinstance(body, dict) and "title" in body:
        return f"{body['title']} {body.get('detail', '')}".strip()
    return str(body)


def short(value: Any) -> str:
    text = json.dumps(plain(value)) if not isinstance(value, str) else value
    return text if len(text) <= 40 else text[:37] + "..."


def item_line(item: Mapping[str, Any]) -> str:
    what = item.get("plan") or ""
    if item.get("quantity", 1) != 1:
        what += f" x{item['quantity']}"
    period = f"{item['start_date']}..{item['end_date']}"
    return f"{item['kind']:<17} {what:<24} {period:<22} {item['amount']:>10}"


def issue_order(invoice: Mapping[str, Any]) -> tuple[str, str]:
    return invoice["invoice_date"], invoice["issued_at"]


def item_fields(item: Mapping[str, Any]) -> dict[str, Any]:
    return {**item, "period": f"{item['start_date']}..{item['end_date']}"}


def check_fields(what: str, wanted: Mapping[str, Any], found: Mapping[str, Any]) -> None:
    for key, value in wanted.items():
        if key not in found:
            raise Mismatch(f"{what}: has no field {key!r} (fields: {', '.join(sorted(found))})")
        if key == "features" and isinstance(value, list) and sorted(value) == sorted(found[key]):
            continue  # a set, whatever the order
        if found[key] != value:
            raise Mismatch(f"{what}: {key} expected {value!r}, got {found[key]!r}")


def matches(wanted: Mapping[str, Any], found: Mapping[str, Any]) -> bool:
    fields = item_fields(found)
    return all(fields.get(k) == v for k, v in wanted.items())


def check_items(what: str, wanted: list[Mapping[str, Any]], found: list[Mapping[str, Any]]) -> None:
    """Every expected item matches one actual item, and no actual item is left over."""
    left = list(found)
    missing = []
    for item in wanted:
        match = next((f for f in left if matches(item, f)), None)
        if match is None:
            missing.append(item)
        else:
            left.remove(match)
    if missing or left:
        lines = [f"{what}: items differ"]
        lines += [f"    expected, not found: {plain(m)}" for m in missing]
        lines += [f"    found, not expected: {item_line(f)}" for f in left]
        raise Mismatch("\n".join(lines))


def check_invoice(what: str, wanted: Mapping[str, Any], found: Mapping[str, Any]) -> None:
    renamed = {"date": "invoice_date"}
    for key, value in wanted.items():
        if key == "items":
            check_items(what, list(value), list(found["items"]))
        else:
            check_fields(what, {renamed.get(key, key): value}, found)


def check_invoices(wanted: Sequence[Mapping[str, Any]], found: Sequence[Mapping[str, Any]]) -> None:
    if len(wanted) != len(found):
        issued = ", ".join(f"{i['account']} {i['invoice_date']} {i['total']}" for i in found)
        raise Mismatch(
            f"invoices: expected {len(wanted)} new, found {len(found)} ({issued or 'none'})"
        )
    for n, (expected, invoice) in enumerate(zip(wanted, found, strict=True)):
        check_invoice(f"invoices[{n}]", expected, invoice)


def check_error(wanted: Any, got_status: int, body: Any) -> None:
    wanted = plain(wanted)
    status = wanted.get("status") if isinstance(wanted, dict) else wanted
    if got_status != status:
        raise Mismatch(f"error: expected status {status}, got {got_status}: {body}")
    field_name = wanted.get("field") if isinstance(wanted, dict) else None
    if field_name is not None:
        fields = [e.get("field") for e in (body or {}).get("errors", [])]
        if field_name not in fields:
            raise Mismatch(f"error: expected a problem with {field_name!r}, got {body}")
