"""The console's timeline: a scenario (docs/scenarios.md) run on a private simulation — a
``tollgate simulate`` process with its own new SQLite database and its own redis-server, so
the tenant's live data is never touched — shown day by day as the command prints it, with a
chart of each account's balance and standing over time."""

from __future__ import annotations

import asyncio
import json
import os
import sys
import tempfile
from pathlib import Path
from typing import Any

import aiohttp_jinja2
from aiohttp import web

from billing_worker.api.console.signin import checked_form, signed_in
from billing_worker.api.http.appkeys import SESSIONS
from billing_worker.db.models import Tenant

routes = web.RouteTableDef()
#: A scenario is a page of YAML; a run is given this long.
MAX_SCENARIO_BYTES = 64 * 1024
RUN_SECONDS = 180
#: One simulation at a time per API process: each is a worker and a gateway of its own.
_ONE_AT_A_TIME = asyncio.Semaphore(1)

EXAMPLE = """\
name: A customer who stops paying, then pays
start: 2027-01-01
catalog:
  effective_date: 2027-01-01
  currencies: [USD]
  products:
    pro: {category: base}
  plans:
    pro-monthly:
      product: pro
      billing_period: monthly
      entitlement: {features: [reports]}
      phases:
        - {type: evergreen, recurring: {USD: "49.00"}}
accounts:
  ann: {currency: USD, users: [ann]}
steps:
  - on: 2027-01-01
    do: subscribe
    account: ann
    plan: pro-monthly
  - on: 2027-02-15
    note: six weeks without paying
  - on: 2027-02-16
    do: pay
    account: ann
    amount: balance
"""


@routes.get("/console/timeline")
async def timeline_page(request: web.Request) -> web.StreamResponse:
    found = await signed_in(request)
    async with request.app[SESSIONS]() as session:
        tenant = await session.get(Tenant, found.tenant_id)
    return aiohttp_jinja2.render_template(
        "timeline.html",
        request,
        {"session": found, "tenant": tenant, "path": request.path, "example": EXAMPLE},
    )


@routes.post("/console/timeline")
async def run_timeline(request: web.Request) -> web.StreamResponse:
    found = await signed_in(request)
    form = await checked_form(request, found)
    scenario = str(form.get("scenario", ""))
    if not scenario.strip():
        result: dict[str, Any] = {"error": "Write a scenario first (docs/scenarios.md)."}
    elif len(scenario.encode()) > MAX_SCENARIO_BYTES:
        result = {"error": f"A scenario is at most {MAX_SCENARIO_BYTES // 1024} KiB."}
    else:
        async with _ONE_AT_A_TIME:
            result = await simulate(scenario)
    return aiohttp_jinja2.render_template("timeline_result.html", request, result)


async def simulate(scenario: str) -> dict[str, Any]:
    """Run the scenario in a ``tollgate simulate`` process of its own; its printed timeline,
    whether it passed, and the chart's points."""
    with tempfile.TemporaryDirectory(prefix="tollgate-timeline-") as scratch:
        path, chart = Path(scratch) / "scenario.yaml", Path(scratch) / "chart.json"
        path.write_text(scenario, encoding="utf-8")
        # nothing of this process's configuration reaches it: its database and Redis are new
        env = {k: v for k, v in os.environ.items() if not k.startswith("TOLLGATE_")}
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "tollgate.cli", "simulate", str(path),
            "--chart-data", str(chart),
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.DEVNULL,
            cwd=scratch, env=env,
        )  # fmt: skip
        try:
            output, _ = await asyncio.wait_for(process.communicate(), RUN_SECONDS)
        except TimeoutError:
            process.kill()
            await process.wait()
            return {"error": f"The scenario ran longer than {RUN_SECONDS} s and was stopped."}
        points = json.loads(chart.read_text())["points"] if chart.exists() else []
    text = output.decode(errors="replace")
    return {"output": text, "passed": process.returncode == 0, "points": points}
