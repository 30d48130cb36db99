"""The README names what the code can answer."""

from __future__ import annotations

from pathlib import Path

from shared.states import REASONS, Reason

README = Path(__file__).resolve().parents[3] / "README.md"


def test_the_readme_lists_every_reason_the_gateway_can_give() -> None:
    text = README.read_text()
    assert set(REASONS) == set(Reason)  # every reason has a meaning
    missing = [r.value for r in Reason if f"| `{r.value}` | {REASONS[r]} |" not in text]
    assert missing == [], f"README's reason table lacks {missing}"
