"""The scenario format names every problem in a file by its path, all at once."""

from __future__ import annotations

from pathlib import Path

import pytest

from tollgate.simulate.scenario import ScenarioError, load_scenario, parse_scenario


def test_every_problem_is_named_by_its_path() -> None:
    document = {
        "name": "broken",
        "start": "not a date",
        "colour": "blue",
        "accounts": {"ann": {"users": ["ann"], "planet": "mars"}, "kid": {"parent": "nobody"}},
        "steps": [
            {"on": "2027-01-01", "do": "subscribe", "account": "ann"},
            {"on": "2027-01-02", "do": "teleport"},
            {"on": "2027-01-03", "do": "pay", "account": "ann", "amount": 31.0},
            {"on": "2027-01-04", "expect": {"weather": "sunny"}},
            {"on": "2027-01-04", "expect": {"invoices": [{"total": 31.0}]}},
            {"do": "uncancel", "subscription": "main"},
        ],
    }
    with pytest.raises(ScenarioError) as raised:
        parse_scenario(document, "broken.yaml")
    problems = raised.value.problems
    assert "colour: unknown key" in problems
    assert any(p.startswith("start: required") for p in problems)
    assert "accounts.ann.planet: unknown key" in problems
    assert "accounts.kid.parent: no account 'nobody' in this scenario" in problems
    assert "steps[0].plan: required by subscribe" in problems
    assert any(p.startswith("steps[1].do: unknown action 'teleport'") for p in problems)
    assert any(p.startswith("steps[2].amount: a quoted decimal") for p in problems)
    assert any(p.startswith("steps[3].expect.weather: unknown expectation") for p in problems)
    assert any(p.startswith("steps[4].expect.invoices[0].total: a float") for p in problems)
    assert any(p.startswith("steps[5].on: required") for p in problems)


def test_steps_go_forward_in_time() -> None:
    document = {
        "name": "backwards",
        "start": "2027-01-10",
        "accounts": {"ann": {}},
        "steps": [{"on": "2027-01-09"}],
    }
    with pytest.raises(ScenarioError, match=r"steps\[0\].on: 2027-01-09 12:00 is before"):
        parse_scenario(document, "backwards.yaml")


def test_a_bare_on_key_and_an_included_catalog_are_read(tmp_path: Path) -> None:
    (tmp_path / "catalog.yaml").write_text("effective_date: 2027-01-01\ncurrencies: [USD]\n")
    scenario_file = tmp_path / "s.yaml"
    scenario_file.write_text(
        "name: s\nstart: 2027-01-01\ncatalog: catalog.yaml\naccounts: {ann: {users: [ann]}}\n"
        "steps:\n  - on: 2027-01-02\n    do: pay\n    account: ann\n    amount: balance\n"
    )
    scenario = load_scenario(scenario_file)
    assert scenario.catalog == {"effective_date": scenario.start.date(), "currencies": ["USD"]}
    assert scenario.steps[0].day.isoformat() == "2027-01-02"
    assert scenario.accounts["ann"].users == ("ann",)
