"""Boundaries the import-linter contracts cannot express, read from the source itself."""

from __future__ import annotations

import re
from pathlib import Path

WORKER = Path(__file__).parents[3] / "billing_worker"


def _sources(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(WORKER.parent)): p.read_text() for p in folder.rglob("*.py")}


def test_only_the_unit_of_work_hooks_the_life_of_a_session() -> None:
    hooked = {
        path
        for path, text in _sources(WORKER).items()
        if re.search(r"listens_for\(\w*Session\b", text)
    }
    assert hooked == {"billing_worker/db/unit_of_work.py"}


def test_the_api_and_the_console_query_through_the_services_not_sql_of_their_own() -> None:
    querying = {path for path, text in _sources(WORKER / "api").items() if "select(" in text}
    assert querying == set()
