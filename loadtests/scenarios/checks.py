"""Response checks shared by the scenarios: every answer is verified, not just counted."""

from __future__ import annotations

from typing import Any

from locust.contrib.fasthttp import ResponseContextManager


def expect_decision(
    response: ResponseContextManager, allow: bool, reasons: tuple[str, ...] = ()
) -> dict[str, Any] | None:
    """A 200 decision with the expected ``allow`` (and reason); marks the response."""
    if response.status_code != 200:
        response.failure(f"status {response.status_code}: {response.text[:200]}")
        return None
    body: dict[str, Any] = response.json()
    if body.get("allow") is not allow:
        response.failure(f"expected allow={allow}, got {body}")
    elif reasons and body.get("reason") not in reasons:
        response.failure(f"expected reason in {reasons}, got {body.get('reason')}")
    else:
        response.success()
        return body
    return None


def expect_status(response: ResponseContextManager, *statuses: int) -> bool:
    if response.status_code in statuses:
        response.success()
        return True
    response.failure(f"expected {statuses}, got {response.status_code}: {response.text[:200]}")
    return False
