"""Runs a scenario against a running stack over HTTP, day by day on the test clock.

Between two steps the clock moves one day at a time (noon UTC) and the worker is settled
each day, so invoices, standing changes and their publication happen on the day they
would in production. Everything observed is printed as a timeline; the first expectation
that does not hold stops the scenario with what was expected and what happened.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping
from datetime import date, datetime, timedelta
from typing import Any

from tollgate.simulate.actions import Actions, Outcome, SimAccount
from tollgate.simulate.compare import (
    ACCOUNT_FACTS,
    MESSAGE_FIELDS,
    Mismatch,
    check_counts,
    check_error,
    check_fields,
    check_invoice,
    check_invoices,
    invoice_facts,
    item_line,
    message_facts,
    plain,
    problem,
)
from tollgate.simulate.scenario import NOON, Step

#: How long a decision may take to reach the gateway after the worker has published it.
DECISION_WITHIN = 2.0


class Simulation(Actions):
    # -- time -----------------------------------------------------------------------------

    async def _move_to(self, moment: datetime, *, outage: bool = False) -> None:
        status, body = await self._call(
            "POST",
            self._api + "/v1/test/clock",
            self._operator,
            # settled next, and observed
            {"set_to": moment.isoformat(), "settle": False, "outage": outage},
        )
        if status != 200:
            raise Mismatch(f"the test clock did not move ({status}): {problem(body)}")
        self._now = moment
        await self._settle(moment.date())

    async def _settle(self, day: date) -> None:
        status, body = await self._call("POST", self._api + "/v1/test/settle", self._operator)
        if status != 200:
            raise Mismatch(f"the worker did not settle ({status}): {problem(body)}")
        if body["evaluated"]:
            await self._observe(day)
        else:  # the worker's own scheduler may have run the day: messages say so
            await self._observe_messages(day)
            await self._sample(day)

    async def _sample(self, day: date) -> None:
        """Each account's standing and balance on a day nothing was printed (for charts)."""
        if self.points is None:
            return
        for name, account in self._accounts.items():
            found = await self._ok("GET", f"/v1/accounts/{account.id}")
            self._point(day, name, found)

    def _point(self, day: date, name: str, found: dict[str, Any]) -> None:
        if self.points is None:
            return
        self.points.append(
            {"day": day.isoformat(), "account": name, "standing": found["standing"],
             "balance": found["balance_due"]}
        )  # fmt: skip

    async def _advance(self, step: Step) -> None:
        assert self._now is not None
        day = self._now.date()
        if (step.jump or step.outage) and step.at > self._now:
            await self._move_to(step.at, outage=step.outage)
            return
        while day < step.day:
            day += timedelta(days=1)
            await self._move_to(step.at if day == step.day else datetime.combine(day, NOON))
        if step.at > self._now:
            await self._move_to(step.at)

    # -- setup ----------------------------------------------------------------------------

    async def _setup(self) -> None:
        scenario = self.scenario
        await self._move_to(scenario.start)
        status, tenant = await self._call(
            "POST",
            self._api + "/v1/tenants",
            self._operator,
            {"name": scenario.name[:200], **scenario.tenant},
        )
        if status != 201:
            raise Mismatch(f"tenant refused ({status}): {problem(tenant)}")
        self._admin = {"Authorization": f"Bearer {tenant['admin_key']}"}
        self._gate = {"Authorization": f"Bearer {tenant['gateway_key']}"}
        if scenario.catalog is not None:
            await self._ok("PUT", "/v1/catalog", scenario.catalog)
        for name, spec in scenario.accounts.items():
            fields = {k: v for k, v in spec.fields.items() if k != "payment_method"}
            body = {"name": name, "external_id": name, **fields}
            if spec.parent is not None:
                body["parent_id"] = self._accounts[spec.parent].id
            account = await self._ok("POST", "/v1/accounts", body)
            self._accounts[name] = SimAccount(account["id"])
            if "payment_method" in spec.fields:
                token = {"token": spec.fields["payment_method"]}
                await self._ok("POST", f"/v1/accounts/{account['id']}/payment-methods", token)
            for user in spec.users:
                await self._ok("POST", f"/v1/accounts/{account['id']}/users", {"external_id": user})
        self._say(scenario.start.date(), f"start: {len(scenario.accounts)} account(s)")

    # -- observation ----------------------------------------------------------------------

    async def _observe(self, day: date) -> None:
        """Print what changed: new invoices, and each account's standing and balances."""
        for name, account in self._accounts.items():
            invoices = await self._ok("GET", f"/v1/accounts/{account.id}/invoices")
            for invoice in sorted(
                invoices["data"], key=lambda i: (i["invoice_date"], i["issued_at"])
            ):
                if invoice["id"] in self._seen_invoices:
                    continue
                self._seen_invoices.add(invoice["id"])
                self._new_invoices.append({**invoice, "account": name})
                self._say(
                    day,
                    f"  invoice {invoice['invoice_date']} for {name}: total {invoice['total']}, "
                    f"balance {invoice['balance']} ({invoice['status']})",
                )
                for item in invoice["items"]:
                    self._say(day, "    " + item_line(item))
            found = await self._ok("GET", f"/v1/accounts/{account.id}")
            self._point(day, name, found)
            state = (found["standing"], found["balance_due"], found["credit"])
            if state != account.state:
                account.state = state
                self._say(
                    day,
                    f"  {name}: {state[0]} ({found['standing_reason']}), "
                    f"balance {state[1]}, credit {state[2]}",
                )
        await self._observe_messages(day)

    async def _observe_messages(self, day: date) -> None:
        """Print the advisory messages written since the last look."""
        if not self._admin:
            return  # the tenant does not exist yet
        names = {a.id: n for n, a in self._accounts.items()}
        messages = await self._ok("GET", "/v1/messages")
        for message in reversed(messages["data"]):
            if message["id"] in self._seen_messages:
                continue
            self._seen_messages.add(message["id"])
            self._new_messages.append(message)
            payload = message["payload"]
            self._say(
                day,
                f"  message {message['kind']} for {names.get(message['account_id'])}: "
                + ", ".join(f"{k} {payload[k]}" for k in MESSAGE_FIELDS if k in payload),
            )

    # -- expectations ---------------------------------------------------------------------

    async def _check(self, step: Step, outcome: Outcome) -> None:
        expect = step.expect
        if "error" in expect:
            check_error(expect["error"], outcome.status, outcome.body)
        elif outcome.status >= 300:
            raise Mismatch(f"{step.action} answered {outcome.status}: {problem(outcome.body)}")
        if "preview" in expect:
            body = outcome.body or {}
            # an invoice action answers the invoice; a dry-run change carries it in "invoice"
            preview = body if "items" in body else body.get("invoice")
            if preview is None:
                raise Mismatch("preview: the action billed and credited nothing")
            check_invoice("preview", plain(expect["preview"]), preview)
        if "invoices" in expect:
            check_invoices(plain(expect["invoices"]), self._new_invoices)
        for user, wanted in plain(expect.get("logins") or {}).items():
            got = outcome.logins.get(user)
            if got != wanted and not (wanted == "denied" and got not in (None, "allowed")):
                raise Mismatch(f"login of {user}: expected {wanted}, got {got}")
        await self._check_state(step)
        if expect:
            self._say(step.day, f"  ✓ {', '.join(expect)}")

    async def _check_state(self, step: Step) -> None:
        """Expectations read from the API and the gateway after the step."""
        expect = step.expect
        accounts = dict(plain(expect.get("accounts") or {}))
        if "account" in expect:
            accounts[step.args.get("account") or self._only_account()] = plain(expect["account"])
        for name, wanted in accounts.items():
            await self._check_account(name, wanted)
        for name, wanted in plain(expect.get("subscription") or {}).items():
            found = await self._ok("GET", f"/v1/subscriptions/{self._subscriptions[name]}")
            check_fields(f"subscription {name}", wanted, found)
        for user, wanted in plain(expect.get("authorize") or {}).items():
            await self._check_decision(user, wanted)
        if "messages" in expect:
            check_counts("messages", plain(expect["messages"]),
                          [m["kind"] for m in self._new_messages])  # fmt: skip
        wanted = plain(expect.get("attempts") or {})
        # counts for the step's account, or {account name: counts}
        by_account = all(isinstance(v, dict) for v in wanted.values()) and bool(wanted)
        for name, counts in wanted.items() if by_account else [(None, wanted)] if wanted else []:
            account = self._accounts[name or step.args.get("account") or self._only_account()]
            attempts = await self._ok("GET", f"/v1/accounts/{account.id}/payment-attempts")
            check_counts(f"attempts{f' of {name}' if name else ''}", counts,
                         [a["status"] for a in attempts["data"]])  # fmt: skip
        if "standing_history" in expect:
            await self._check_history(step, plain(expect["standing_history"]))
        if "dunning" in expect:
            account = self._accounts[step.args.get("account") or self._only_account()]
            found = await self._ok("GET", f"/v1/accounts/{account.id}/dunning")
            check_fields("dunning", plain(expect["dunning"]), found)

    async def _clock_now(self) -> str:
        _status, body = await self._call("GET", self._api + "/v1/test/clock", self._operator)
        return str(body["now"])

    async def _check_history(self, step: Step, wanted: list[Mapping[str, Any]]) -> None:
        """The step's account's changes of standing since the previous step, one for one,
        each with the local date it took effect (``date``), ``standing`` and ``reason``."""
        account = self._accounts[step.args.get("account") or self._only_account()]
        history = await self._ok("GET", f"/v1/accounts/{account.id}/standing-history")
        found = [
            {"date": c["effective_at"][:10], "standing": c["standing"], "reason": c["reason"]}
            for c in history["data"]
            if parse_instant(c["effective_at"]) > parse_instant(self._step_began)
        ]
        if len(found) != len(wanted) or any(
            any(f.get(k) != v for k, v in w.items()) for w, f in zip(wanted, found, strict=False)
        ):
            raise Mismatch(f"standing_history: expected {wanted}, found {found}")

    def _only_account(self) -> str:
        if len(self._accounts) != 1:
            raise Mismatch("expect.account needs the step's account; use expect.accounts")
        return next(iter(self._accounts))

    async def _check_account(self, name: str, wanted: Mapping[str, Any]) -> None:
        if name not in self._accounts:
            raise Mismatch(f"expect.accounts: no account {name!r}")
        found = await self._ok("GET", f"/v1/accounts/{self._accounts[name].id}")
        renamed = {"balance": "balance_due", "reason": "standing_reason"}
        check_fields(f"account {name}", {renamed.get(k, k): v for k, v in wanted.items()}, found)

    async def _check_decision(self, user: str, wanted: Any) -> None:
        fields = {"allow": wanted == "allow"} if isinstance(wanted, str) else dict(wanted)
        if isinstance(wanted, str) and wanted not in ("allow", "deny"):
            raise Mismatch(f"authorize {user}: say allow, deny, or a mapping of fields")
        deadline = time.monotonic() + DECISION_WITHIN
        while True:
            status, body = await self._call(
                "POST", self._gateway + "/v1/authorize", self._gate, {"user": user}
            )
            try:
                if status != 200:
                    raise Mismatch(f"authorize {user} answered {status}: {problem(body)}")
                check_fields(f"authorize {user}", fields, body)
                break
            except Mismatch:
                if time.monotonic() > deadline:
                    raise
                await asyncio.sleep(0.02)
        verdict = "allow" if body["allow"] else f"deny ({body['reason']})"
        assert self._now is not None
        self._say(self._now.date(), f"  authorize {user}: {verdict}")

    # -- snapshot -------------------------------------------------------------------------

    async def snapshot(self) -> dict[str, Any]:
        """Everything a user can observe of each account, with ids left out (they differ
        from run to run) and every date kept: invoices and their items, charges, payments,
        the standing history, advisory messages, the account, and the gateway's decision
        for each user. Two runs of one story must give equal snapshots, however time
        moved between their steps."""
        out: dict[str, Any] = {}
        for name, account in self._accounts.items():
            base = f"/v1/accounts/{account.id}"
            invoices = (await self._ok("GET", base + "/invoices"))["data"]
            attempts = (await self._ok("GET", base + "/payment-attempts"))["data"]
            payments = (await self._ok("GET", base + "/payments"))["data"]
            history = (await self._ok("GET", base + "/standing-history"))["data"]
            messages = (await self._ok("GET", f"/v1/messages?account_id={account.id}"))["data"]
            found = await self._ok("GET", base)
            out[name] = {
                "invoices": sorted(invoice_facts(i) for i in invoices),
                "attempts": sorted(
                    (a["created_at"], a["status"], a["amount"], a["reason"]) for a in attempts
                ),
                "payments": sorted((p["received_at"], p["amount"]) for p in payments),
                "standing_history": [
                    (c["effective_at"], c["standing"], c["reason"]) for c in history
                ],
                "messages": sorted(message_facts(m) for m in messages),
                "account": {k: found[k] for k in ACCOUNT_FACTS},
                "decisions": {
                    user: await self._decision(user) for user in self.scenario.accounts[name].users
                },
            }
        return out

    async def _decision(self, user: str) -> tuple[bool, str | None, str | None]:
        status, body = await self._call(
            "POST", self._gateway + "/v1/authorize", self._gate, {"user": user}
        )
        if status != 200:
            raise Mismatch(f"authorize {user} answered {status}: {problem(body)}")
        return body["allow"], body.get("standing"), body.get("reason")

    # -- the run --------------------------------------------------------------------------

    async def run(self) -> bool:
        """Run every step; False (with the reason printed) at the first mismatch."""
        scenario = self.scenario
        self._out.write(f"== {scenario.name}  ({scenario.source})\n")
        step: Step | None = None
        try:
            await self._setup()
            for step in scenario.steps:
                # Expectations on invoices see those issued since the previous step.
                self._new_invoices, self._new_messages = [], []
                self._step_began = await self._clock_now()
                await self._advance(step)
                if step.note:
                    self._say(step.day, f"# {step.note}")
                self._say(step.day, f"{self._describe(step)}")
                outcome = await self._act(step) if step.action else Outcome(200, None)
                await self._settle(step.day)
                await self._observe(step.day)
                await self._check(step, outcome)
        except Mismatch as exc:
            where = f"steps[{step.index}] on {step.day}" if step else "setup"
            self._out.write(f"FAILED at {where}: {exc}\n")
            return False
        self._out.write(f"passed: {len(scenario.steps)} steps\n")
        return True


def parse_instant(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))
