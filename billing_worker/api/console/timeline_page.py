"""The console's timeline: a scenario (docs/scenarios.md) run on a private simulation — a
``tollgate simulate`` process with its own new SQLite database and its own redis-server, so
the tenant's live data is never touched — shown day by day as the command prints it, with a
chart of each account's balance and standing over time.

A run is queued (``timeline_runs``): the form's answer is the run's place in the queue,
which the page polls until the result replaces it.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import aiohttp_jinja2
from aiohttp import web

from billing_worker.api.console.signin import checked_form, signed_in
from billing_worker.api.console.timeline_runs import (
    QueueFull,
    RunState,
    TimelineQueue,
    simulate_in_sandbox,
)
from billing_worker.api.http.appkeys import SESSIONS
from billing_worker.db.models import Tenant

routes = web.RouteTableDef()
#: A scenario is a page of YAML.
MAX_SCENARIO_BYTES = 64 * 1024
QUEUE = web.AppKey("timeline_queue", TimelineQueue)

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
        error = "Write a scenario first (docs/scenarios.md)."
    elif len(scenario.encode()) > MAX_SCENARIO_BYTES:
        error = f"A scenario is at most {MAX_SCENARIO_BYTES // 1024} KiB."
    else:
        assert found.tenant_id is not None
        try:
            run = request.app[QUEUE].submit(found.tenant_id, scenario)
        except QueueFull:
            error = "Runs of yours are already waiting; this one can start when they have."
        else:
            raise web.HTTPSeeOther(f"/console/timeline/runs/{run.id}")
    return aiohttp_jinja2.render_template("timeline_result.html", request, {"error": error})


@routes.get("/console/timeline/runs/{run_id}")
async def timeline_run(request: web.Request) -> web.StreamResponse:
    """A run's place in the queue while it waits or runs, then its result."""
    found = await signed_in(request)
    assert found.tenant_id is not None
    queue = request.app[QUEUE]
    run = queue.get(found.tenant_id, request.match_info["run_id"])
    if run is None:
        raise web.HTTPNotFound(text="No such run (a result is kept for 15 minutes).")
    if run.state is RunState.FINISHED:
        return aiohttp_jinja2.render_template("timeline_result.html", request, run.result)
    place = queue.place(run) if run.state is RunState.WAITING else None
    return aiohttp_jinja2.render_template(
        "timeline_waiting.html", request, {"run": run, "place": place, "path": request.path}
    )


async def timeline_queue(app: web.Application) -> AsyncIterator[None]:
    """The API process's queue of timeline runs; runs under way are stopped with it."""
    app[QUEUE] = TimelineQueue(simulate_in_sandbox)
    yield
    await app[QUEUE].stop()
