"""The scenario format names every problem in a file by its path, all at once."""

from __future__ import annotations

from pathlib import Path

import pytest

from tollgate.simulate.scenario import (
    ScenarioError,
    load_scenario,
    parse_scenario,
    read_inline_scenario,
)


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


SECRET = 'password: "hunter2-and-more-of-the-operator-key"\n'
SCENARIO = (
    "name: s\nstart: 2027-01-01\naccounts: {ann: {users: [ann]}}\n"
    "steps:\n  - on: 2027-01-02\n    do: upload_catalog\n    catalog: {name}\n"
)


def _problems(scenario_file: Path, *, inline_only: bool = False) -> list[str]:
    read = read_inline_scenario if inline_only else load_scenario
    with pytest.raises(ScenarioError) as raised:
        read(scenario_file)
    text = str(raised.value)
    assert "hunter2" not in text  # nothing the file holds
    assert "password" not in text
    return raised.value.problems


@pytest.mark.parametrize(
    "name", ["../outside/secret.yaml", "{outside}/secret.yaml", "escape/secret.yaml"]
)
def test_an_included_file_outside_the_scenarios_folder_is_refused_unread(
    tmp_path: Path, name: str
) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.yaml").write_text(SECRET)
    folder = tmp_path / "scenarios"
    folder.mkdir()
    (folder / "escape").symlink_to(outside)  # a link inside that points out
    scenario_file = folder / "s.yaml"
    scenario_file.write_text(SCENARIO.replace("{name}", name.replace("{outside}", str(outside))))
    [problem] = _problems(scenario_file)
    assert problem.startswith("steps[0].catalog: ")
    assert "outside the scenario's folder" in problem
    # allowed on purpose, it is read
    scenario = load_scenario(scenario_file, include_root=tmp_path)
    assert scenario.steps[0].args["catalog"] == {"password": "hunter2-and-more-of-the-operator-key"}


def test_a_file_that_cannot_be_read_is_named_as_written_without_where_it_resolved(
    tmp_path: Path,
) -> None:
    scenario_file = tmp_path / "s.yaml"
    scenario_file.write_text(SCENARIO.replace("{name}", "missing.yaml"))
    [problem] = _problems(scenario_file)
    assert problem == "steps[0].catalog: cannot read 'missing.yaml' (no such file or directory)"
    assert str(tmp_path) not in problem


def test_a_broken_included_file_says_where_it_breaks_but_not_what_it_holds(
    tmp_path: Path,
) -> None:
    (tmp_path / "env.yaml").write_text("x: 1\n" + SECRET.replace(": ", ": : "))
    scenario_file = tmp_path / "s.yaml"
    scenario_file.write_text(SCENARIO.replace("{name}", "env.yaml"))
    [problem] = _problems(scenario_file)
    assert problem.startswith("steps[0].catalog: 'env.yaml' is not valid YAML (line 2, column")


def test_a_scenario_from_the_console_names_no_file_at_all(tmp_path: Path) -> None:
    (tmp_path / "catalog.yaml").write_text("effective_date: 2027-01-01\ncurrencies: [USD]\n")
    scenario_file = tmp_path / "s.yaml"
    scenario_file.write_text(SCENARIO.replace("{name}", "catalog.yaml") + "catalog: catalog.yaml\n")
    problems = _problems(scenario_file, inline_only=True)
    assert problems == [
        "catalog: name no file here; write the catalog inline (a mapping)",
        "steps[0].catalog: name no file here; write the catalog inline (a mapping)",
    ]


def test_an_upload_step_takes_a_catalog_document_only() -> None:
    document = {
        "name": "s",
        "start": "2027-01-01",
        "accounts": {"ann": {}},
        "steps": [{"on": "2027-01-02", "do": "upload_catalog", "catalog": 42}],
    }
    with pytest.raises(ScenarioError, match=r"steps\[0\]\.catalog: a catalog document"):
        parse_scenario(document, "s.yaml")
