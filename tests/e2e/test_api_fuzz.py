"""Schemathesis against the management API as a user runs it (a `tollgate worker` process,
on SQLite and PostgreSQL): generated requests from the OpenAPI document, valid and not,
never get a server error, every status returned is one the document names, and a request
the document says is invalid is refused."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest

from tests.e2e.conftest import OPERATOR, Processes

pytestmark = pytest.mark.e2e

#: Examples per operation and phase, with a fixed seed: a bounded, repeatable sweep that
#: keeps the suite quick. (A longer, unseeded run found ``grace_days: 0`` making every new
#: account of the tenant a 500; its own test is in tests/unit/billing/test_dunning.py.)
EXAMPLES = "6"


def _schemathesis(api: str, key: str, *selection: str, workdir: Path) -> None:
    command = [
        str(Path(sys.executable).with_name("st")), "run", f"{api}/openapi.json",
        "-H", f"Authorization: Bearer {key}",
        "--checks", "not_a_server_error,status_code_conformance,negative_data_rejection",
        "--max-examples", EXAMPLES, "--seed", "20261124", "--workers", "1",
        "--phases", "coverage,fuzzing",
        *selection,
    ]  # fmt: skip
    run = subprocess.run(
        command, capture_output=True, text=True, check=False, cwd=workdir, timeout=600,
        env={**os.environ, "NO_COLOR": "1"},
    )  # fmt: skip
    (workdir / "schemathesis.log").write_text(run.stdout + run.stderr)
    # The failures come before the (long) warnings: show them first.
    failures = run.stdout.split("Warnings:")[0][-8000:]
    assert run.returncode == 0, failures + run.stderr[-2000:]


def test_no_generated_request_gets_a_server_error(processes: Processes, tmp_path: Path) -> None:
    request = urllib.request.Request(
        f"{processes.api}/v1/tenants",
        data=json.dumps({"name": "Fuzzed"}).encode(),
        headers={"Authorization": f"Bearer {OPERATOR}", "Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        admin = json.load(response)["admin_key"]
    # The tenant's admin key for everything but creating tenants, the operator key for that.
    _schemathesis(processes.api, admin, "--exclude-path", "/v1/tenants", workdir=tmp_path)
    _schemathesis(processes.api, OPERATOR, "--include-path", "/v1/tenants", workdir=tmp_path)
