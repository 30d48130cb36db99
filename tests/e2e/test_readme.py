"""The README's shell examples (and those of the docs pages it links for reference), pasted
into bash against `tollgate up` as a reader would: every block that talks to the API or the
gateway runs, in order, in one shell, and each line that documents its answer
(``# allow, grace``, ``# "98.00"``) answers that."""

from __future__ import annotations

import json
import os
import re
import subprocess
from pathlib import Path

import pytest

from tests.e2e.conftest import start_up, stop_up

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "README.md"
#: The README, then the pages its reference moved to, in this order (their examples use the
#: variables the README's set).
PAGES = (
    README,
    *(ROOT / "docs" / page for page in ("payments.md", "production.md", "benchmark.md")),
)
MARK = "@@@ tollgate readme step @@@"


def _blocks() -> list[str]:
    """The ``sh`` blocks that call the running services (``$API`` or ``$GW``), page by page."""
    blocks = [
        block
        for page in PAGES
        for block in re.findall(r"^```sh\n(.*?)^```", page.read_text(), re.M | re.S)
    ]
    return [b for b in blocks if "$API" in b or "$GW" in b]


def _commands(block: str) -> list[tuple[str, str]]:
    """Each command (continuation lines joined) and the comment documenting its answer."""
    joined = re.sub(r"\\\n\s*", " ", block)
    commands, pending = [], ""
    for line in joined.splitlines():
        if not pending and (not line.strip() or line.lstrip().startswith("#")):
            continue
        pending = f"{pending}\n{line}" if pending else line
        if pending.count("'") % 2:  # inside a quoted argument that spans lines
            continue
        code, _, note = pending.rpartition("  #") if "  #" in pending else (pending, "", "")
        commands.append((code.rstrip(), note.strip()))
        pending = ""
    return commands


def _check(command: str, note: str, output: str) -> None:
    where = f"{command}\n  -> {output!r}"
    assert '"status":5' not in output.replace(" ", ""), where  # never a server error
    if note.startswith(("allow", "deny")):
        answer = json.loads(output)
        expected, _, detail = note.partition(", ")
        assert answer["allow"] is (expected == "allow"), where
        assert detail in (answer["standing"], answer["reason"]), where
    elif re.fullmatch(r'"[^"]*"', note):
        assert output.strip() == note, where


def test_the_readme_examples_work_when_pasted(tmp_path: Path) -> None:
    up, banner = start_up(tmp_path / ".tollgate")
    try:
        api = re.search(r"management API\s+(http://\S+)", banner)
        gateway = re.search(r"gateway\s+(http://\S+)", banner)
        assert api
        assert gateway
        steps = [step for block in _blocks() for step in _commands(block)]
        # Pasted at a reader's pace: a gateway answer documented after a change is read a
        # moment later, as a person pasting the next line would (the change reaches the
        # gateways in milliseconds, not in the microseconds between two commands of a script).
        script = "\n".join(
            f"{'sleep 0.5; ' if note.startswith(('allow', 'deny')) else ''}{command}\necho '{MARK}'"
            for command, note in steps
        )
        # The README's ports are the defaults; this test's are free ones.
        script = script.replace("http://127.0.0.1:8081", api.group(1))
        script = script.replace("http://127.0.0.1:8080", gateway.group(1))
        env = {k: v for k, v in os.environ.items() if not k.startswith("TOLLGATE_")}
        run = subprocess.run(
            ["bash", "-c", script], cwd=tmp_path, env=env, capture_output=True, text=True,
            timeout=300, check=False,
        )  # fmt: skip
        assert run.returncode == 0, run.stderr
        outputs = run.stdout.split(MARK + "\n")
        assert len(outputs) == len(steps) + 1, run.stdout
        checked = 0
        for (command, note), output in zip(steps, outputs, strict=False):
            _check(command, note, output)
            checked += bool(note)
        assert checked >= 6, steps  # the documented answers were really looked at
    finally:
        stop_up(up)
