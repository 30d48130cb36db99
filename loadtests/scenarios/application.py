"""A SaaS application asking the gateway whether its users may log in."""

from __future__ import annotations

import random
from typing import Any

from locust import task
from locust.contrib.fasthttp import FastHttpUser

from loadtests.config import LoadConfig, load_config


class ApplicationUser(FastHttpUser):
    """Authorize checks for paid-up, suspended and unknown users, each answer verified."""

    abstract = False
    config: LoadConfig

    def on_start(self) -> None:
        self.config = load_config()
        self.headers = {"Authorization": f"Bearer {self.config.gateway_key}"}

    def _authorize(
        self, user: str, name: str, expect_allow: bool, expect_reason: str | None
    ) -> None:
        with self.client.post(
            "/v1/authorize",
            json={"user": user},
            headers=self.headers,
            name=name,
            catch_response=True,
        ) as response:
            if response.status_code != 200:
                response.failure(f"status {response.status_code}")
                return
            body: dict[str, Any] = response.json()
            if body.get("allow") is not expect_allow:
                response.failure(f"expected allow={expect_allow}, got {body}")
            elif expect_reason and body.get("reason") != expect_reason:
                response.failure(f"expected reason {expect_reason}, got {body.get('reason')}")
            else:
                response.success()

    @task(8)
    def paid_up_user(self) -> None:
        self._authorize(random.choice(self.config.allowed_users), "authorize: allowed", True, None)

    @task(1)
    def suspended_user(self) -> None:
        self._authorize(
            random.choice(self.config.denied_users),
            "authorize: suspended",
            False,
            "payment_overdue",
        )

    @task(1)
    def unknown_user(self) -> None:
        self._authorize(
            random.choice(self.config.unknown_users), "authorize: unknown", False, "unknown_user"
        )
