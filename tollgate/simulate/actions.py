"""The scenario runner's side of the stack: an HTTP client of the management API and the
gateway, and the scenario actions (``do:``), each one or a few API calls."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from typing import Any, TextIO

import aiohttp

from tollgate.simulate.compare import Mismatch, json_default, problem, short
from tollgate.simulate.scenario import Scenario, Step

#: Actions that are one POST to the subscription's own endpoint, with the step's arguments.
_SUBSCRIPTION_PATHS = {
    "change_plan": "change",
    "cancel": "cancel",
    "uncancel": "uncancel",
    "pause": "pause",
    "resume": "resume",
    "set_quantity": "quantity",
    "record_usage": "usage",
}


@dataclass
class SimAccount:
    id: str
    state: tuple[str, str, str] = ("", "", "")


@dataclass
class Outcome:
    status: int
    body: Any
    logins: dict[str, str] = field(default_factory=dict)


class StackClient:
    """What a simulation knows of the stack it drives, and the HTTP calls it makes."""

    def __init__(
        self,
        scenario: Scenario,
        http: aiohttp.ClientSession,
        *,
        api: str,
        gateway: str,
        operator_key: str,
        out: TextIO,
    ) -> None:
        self.scenario = scenario
        self._http = http
        self._api = api
        self._gateway = gateway
        self._operator = {"Authorization": f"Bearer {operator_key}"}
        self._admin: dict[str, str] = {}
        self._gate: dict[str, str] = {}
        self._out = out
        self._accounts: dict[str, SimAccount] = {}
        self._subscriptions: dict[str, str] = {}
        self._seen_invoices: set[str] = set()
        self._new_invoices: list[dict[str, Any]] = []
        self._seen_messages: set[str] = set()
        self._new_messages: list[dict[str, Any]] = []
        self._printed_day: date | None = None
        self._now: datetime | None = None
        self._step_began = ""
        #: Each account's standing and balance day by day, when a chart is wanted (a list).
        self.points: list[dict[str, str]] | None = None

    # -- output ---------------------------------------------------------------------------

    def _say(self, day: date, text: str) -> None:
        stamp = f"{day:%Y-%m-%d}" if day != self._printed_day else " " * 10
        self._printed_day = day
        self._out.write(f"{stamp}  {text}\n")

    # -- HTTP -----------------------------------------------------------------------------

    async def _call(
        self, method: str, url: str, headers: Mapping[str, str], body: Any = None
    ) -> tuple[int, Any]:
        data = None if body is None else json.dumps(body, default=json_default)
        async with self._http.request(
            method, url, data=data, headers={**headers, "Content-Type": "application/json"}
        ) as response:
            text = await response.text()
            return response.status, (json.loads(text) if text else None)

    async def _admin_call(self, method: str, path: str, body: Any = None) -> tuple[int, Any]:
        return await self._call(method, self._api + path, self._admin, body)

    async def _ok(self, method: str, path: str, body: Any = None) -> Any:
        status, payload = await self._admin_call(method, path, body)
        if status >= 300:
            raise Mismatch(f"{method} {path} answered {status}: {problem(payload)}")
        return payload


class Actions(StackClient):
    """The scenario actions: ``_do_<action>`` for each ``do:``."""

    # -- actions --------------------------------------------------------------------------

    def _sub(self, step: Step) -> str:
        name = step.args["subscription"]
        if name not in self._subscriptions:
            raise Mismatch(f"no subscription named {name!r} yet (name one with 'as:')")
        return self._subscriptions[name]

    def _account_id(self, step: Step) -> str:
        return self._accounts[step.args["account"]].id

    def _body(self, step: Step, *drop: str) -> dict[str, Any]:
        return {k: v for k, v in step.args.items() if k not in drop}

    async def _act(self, step: Step) -> Outcome:
        assert step.action is not None
        if step.action in _SUBSCRIPTION_PATHS:
            body = self._body(step, "subscription")
            if step.action == "record_usage":
                body.setdefault("record_id", f"step-{step.index}")
            path = f"/v1/subscriptions/{self._sub(step)}/{_SUBSCRIPTION_PATHS[step.action]}"
            return Outcome(*await self._admin_call("POST", path, body))
        act: Callable[[Step], Awaitable[Outcome]] = getattr(self, f"_do_{step.action}")
        return await act(step)

    async def _do_subscribe(self, step: Step) -> Outcome:
        body = self._body(step, "account", "as", "base")
        if "base" in step.args:
            body["base_subscription_id"] = self._subscriptions.get(
                step.args["base"], step.args["base"]
            )
        status, payload = await self._admin_call(
            "POST", f"/v1/accounts/{self._account_id(step)}/subscriptions", body
        )
        if status == 201 and not step.args.get("dry_run"):
            name = str(step.args.get("as", f"sub{len(self._subscriptions) + 1}"))
            self._subscriptions[name] = payload["subscription"]["id"]
        return Outcome(status, payload)

    async def _do_invoice(self, step: Step) -> Outcome:
        path = f"/v1/accounts/{self._account_id(step)}/invoices"
        return Outcome(*await self._admin_call("POST", path, self._body(step, "account")))

    async def _do_commit_draft(self, step: Step) -> Outcome:
        invoices = await self._ok("GET", f"/v1/accounts/{self._account_id(step)}/invoices")
        drafts = [i for i in invoices["data"] if i["status"] == "draft"]
        if not drafts:
            raise Mismatch("commit_draft: the account has no draft invoice")
        results = [await self._admin_call("POST", f"/v1/invoices/{d['id']}/commit") for d in drafts]
        self._seen_invoices -= {d["id"] for d in drafts}  # shown again, as issued
        return Outcome(*results[-1])

    async def _do_pay(self, step: Step) -> Outcome:
        account = await self._ok("GET", f"/v1/accounts/{self._account_id(step)}")
        amount = step.args["amount"]
        if amount == "balance" and not Decimal(account["balance_due"]):
            self._say(step.day, "  nothing is owed: no payment")
            return Outcome(200, None)
        body = {
            "amount": account["balance_due"] if amount == "balance" else amount,
            "currency": account["currency"],
            **self._body(step, "account", "amount"),
        }
        path = f"/v1/accounts/{self._account_id(step)}/payments"
        return Outcome(*await self._admin_call("POST", path, body))

    async def _do_upload_catalog(self, step: Step) -> Outcome:
        return Outcome(*await self._admin_call("PUT", "/v1/catalog", step.args["catalog"]))

    async def _do_update_tenant(self, step: Step) -> Outcome:
        return Outcome(*await self._admin_call("PATCH", "/v1/tenant", step.args["settings"]))

    async def _do_update_account(self, step: Step) -> Outcome:
        path = f"/v1/accounts/{self._account_id(step)}"
        return Outcome(*await self._admin_call("PATCH", path, step.args["settings"]))

    async def _account_post(self, step: Step, action: str, body: Any = None) -> Outcome:
        path = f"/v1/accounts/{self._account_id(step)}/{action}"
        return Outcome(*await self._admin_call("POST", path, body))

    async def _do_set_dunning_policy(self, step: Step) -> Outcome:
        path = f"/v1/tenant/dunning-policies/{step.args['name']}"
        return Outcome(*await self._admin_call("PUT", path, step.args["policy"]))

    async def _do_add_payment_method(self, step: Step) -> Outcome:
        return await self._account_post(step, "payment-methods", self._body(step, "account"))

    async def _do_payment_fails(self, step: Step) -> Outcome:
        """From now on the account's charges fail: its card becomes a failing sandbox token."""
        token = f"tok_sandbox_{step.args.get('reason', 'insufficient_funds')}"
        return await self._account_post(step, "payment-methods", {"token": token})

    async def _do_suspend(self, step: Step) -> Outcome:
        return await self._account_post(step, "suspend", self._body(step, "account"))

    async def _do_reinstate(self, step: Step) -> Outcome:
        return await self._account_post(step, "reinstate")

    async def _do_exempt(self, step: Step) -> Outcome:
        return await self._account_post(step, "exempt", self._body(step, "account"))

    async def _do_exempt_subscription(self, step: Step) -> Outcome:
        path = f"/v1/subscriptions/{self._sub(step)}/exempt"
        return Outcome(*await self._admin_call("POST", path, self._body(step, "subscription")))

    async def _do_write_off(self, step: Step) -> Outcome:
        open_ones = await self._invoices_of(step, "open")
        if not open_ones:
            raise Mismatch("write_off: the account has no open invoice")
        body = self._body(step, "account")
        results = [await self._admin_call("POST", f"/v1/invoices/{i['id']}/write-off", body)
                   for i in open_ones]  # fmt: skip
        return Outcome(*results[-1])

    async def _invoices_of(self, step: Step, *statuses: str) -> list[dict[str, Any]]:
        """The account's invoices in these statuses, newest first."""
        invoices = await self._ok("GET", f"/v1/accounts/{self._account_id(step)}/invoices")
        found = [i for i in invoices["data"] if i["status"] in statuses]
        return sorted(found, key=lambda i: (i["invoice_date"], i["issued_at"]), reverse=True)

    async def _do_undo_write_off(self, step: Step) -> Outcome:
        written_off = await self._invoices_of(step, "written_off")
        if not written_off:
            raise Mismatch("undo_write_off: the account has no written-off invoice")
        path = f"/v1/invoices/{written_off[0]['id']}/write-off/undo"
        return Outcome(*await self._admin_call("POST", path, self._body(step, "account")))

    async def _do_void(self, step: Step) -> Outcome:
        """Void the account's newest unpaid invoice."""
        unpaid = await self._invoices_of(step, "open", "draft")
        if not unpaid:
            raise Mismatch("void: the account has no unpaid invoice")
        path = f"/v1/invoices/{unpaid[0]['id']}/void"
        return Outcome(*await self._admin_call("POST", path, self._body(step, "account")))

    async def _money_post(self, step: Step, path: str) -> Outcome:
        account = await self._ok("GET", f"/v1/accounts/{self._account_id(step)}")
        body = {"currency": account["currency"], **self._body(step, "account")}
        return await self._account_post(step, path, body)

    async def _do_credit(self, step: Step) -> Outcome:
        return await self._money_post(step, "credits")

    async def _do_charge(self, step: Step) -> Outcome:
        return await self._money_post(step, "charges")

    async def _do_adjust_item(self, step: Step) -> Outcome:
        """Adjust the account's newest item of ``kind`` (default recurring), or the one
        for ``period``."""
        kind, period = step.args.get("kind", "recurring"), step.args.get("period")
        for invoice in await self._invoices_of(step, "open", "paid", "written_off"):
            for item in invoice["items"]:
                if item["kind"] == kind and period in (None, _period(item)):
                    path = f"/v1/invoices/{invoice['id']}/items/{item['id']}/adjustments"
                    body = {k: v for k, v in step.args.items() if k in ("amount", "reason")}
                    return Outcome(*await self._admin_call("POST", path, body))
        raise Mismatch(f"adjust_item: no {kind} item{f' for {period}' if period else ''}")

    async def _do_refund(self, step: Step) -> Outcome:
        payments = await self._ok("GET", f"/v1/accounts/{self._account_id(step)}/payments")
        if not payments["data"]:
            raise Mismatch("refund: the account has no payment")
        path = f"/v1/payments/{payments['data'][0]['id']}/refunds"
        return Outcome(*await self._admin_call("POST", path, self._body(step, "account")))

    async def _do_login(self, step: Step) -> Outcome:
        logins: dict[str, str] = {}
        for user in step.args["users"]:
            status, payload = await self._call(
                "POST", self._gateway + "/v1/sessions", self._gate, {"user": user}
            )
            logins[user] = "allowed" if status == 201 else str(payload.get("reason"))
            self._say(step.day, f"  login {user}: {logins[user]}")
        return Outcome(200, None, logins)

    def _describe(self, step: Step) -> str:
        words = [step.action or "check"]
        words += [f"{k}={short(v)}" for k, v in step.args.items()]
        return " ".join(words)


def _period(item: Mapping[str, Any]) -> str:
    return f"{item['start_date']}..{item['end_date']}"
